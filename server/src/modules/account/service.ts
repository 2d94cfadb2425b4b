/**
 * Account deletion and export. A deletion removes the account's rows in one transaction (tasks,
 * projects, sessions and their refresh tokens, mailed tokens, the second factor, stored
 * Idempotency-Key answers), so every refresh token dies with it; the owner is mailed in the same
 * transaction. The last active admin cannot be deleted (the check runs under the lock every admin
 * change takes: users/service.ts). Audit lines name the account by its id only.
 */
import type { z } from 'zod';
import type { Config } from '../../config.js';
import type { Db, PrismaClient } from '../../db/client.js';
import { AppError } from '../../lib/errors.js';
import { verifyPassword } from '../../lib/password.js';
import type { Log } from '../../logger.js';
import { enqueueMail } from '../../mail/outbox.js';
import { withPasswordWork } from '../auth/account-rules.js';
import { audit } from '../auth/audit.js';
import type { RateLimits } from '../auth/rate-limits.js';
import type { SessionCache } from '../auth/sessions.js';
import type { TwoFactorService } from '../auth/two-factor/service.js';
import type { AuthUser, ClientInfo } from '../auth/types.js';
import { ADMIN_CHANGES_LOCK, adminUserSelect } from '../users/service.js';
import type { AccountExport, deleteAccountInput } from './schemas.js';

export interface AccountServiceDeps {
  db: PrismaClient;
  config: Config;
  rateLimits: RateLimits;
  sessionCache: SessionCache;
  twoFactor: Pick<TwoFactorService, 'confirmCode'>;
  mailQueued: () => void;
  now: () => Date;
}

export type AccountService = ReturnType<typeof createAccountService>;

/** Users seen verified by this process (bounded): verification is never undone, so they need no lookup again. */
const VERIFIED_MEMO_SIZE = 50_000;

export function createAccountService(deps: AccountServiceDeps) {
  const { db, config, rateLimits, now } = deps;
  const verified = new Set<string>();

  /** Deletes the user's rows; NOT_FOUND when there is no such user, CONFLICT for the last active admin. */
  async function deleteRows(tx: Db, userId: string): Promise<{ email: string }> {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(${ADMIN_CHANGES_LOCK})`;
    const user = await tx.user.findUnique({ where: { id: userId }, select: { email: true, role: true, active: true } });
    if (!user) throw new AppError('NOT_FOUND', 'User not found.');
    if (user.role === 'ADMIN' && user.active) {
      const others = await tx.user.count({ where: { role: 'ADMIN', active: true, id: { not: userId } } });
      if (others === 0)
        throw new AppError('CONFLICT', 'The last active admin cannot be deleted. Make another user admin first.', { reason: 'LAST_ADMIN' });
    }
    // Tasks restrict their project's deletion (schema.prisma): they go first, explicitly.
    await tx.task.deleteMany({ where: { project: { ownerId: userId } } });
    await tx.project.deleteMany({ where: { ownerId: userId } });
    await tx.idempotencyKey.deleteMany({ where: { scope: `user:${userId}` } });
    // Sessions, refresh tokens, mailed tokens, the second factor and its codes cascade.
    await tx.user.delete({ where: { id: userId } });
    await enqueueMail(tx, {
      to: user.email,
      subject: 'Your Keel account was deleted',
      text: `Your Keel account and everything in it (projects, tasks, sessions) were deleted, and every session was signed out.\n\nIf you did not ask for this, contact us at once: ${config.auth.appUrl}\n`,
    });
    return { email: user.email };
  }

  async function finish(userId: string, log: Log, fields: Record<string, unknown>): Promise<{ deleted: true }> {
    verified.delete(userId);
    // After the commit: strict mode forgets the sessions at once (their rows are gone).
    deps.sessionCache.clear();
    deps.mailQueued();
    audit(log, 'auth.account.deleted', { userId, ...fields });
    return { deleted: true };
  }

  return {
    /**
     * REQUIRE_VERIFIED_EMAIL (trpc/init.ts calls this for every signed-in call outside `auth.*`):
     * FORBIDDEN with reason EMAIL_NOT_VERIFIED until the account's email is verified. A verified
     * user costs one primary-key read per process, then nothing.
     */
    async assertEmailVerified(userId: string): Promise<void> {
      if (verified.has(userId)) return;
      const row = await db.user.findUnique({ where: { id: userId }, select: { emailVerified: true } });
      if (!row?.emailVerified)
        throw new AppError(
          'FORBIDDEN',
          'Verify your email address first: open the link we mailed you, or ask for a new one with auth.requestEmailVerification.',
          {
            reason: 'EMAIL_NOT_VERIFIED',
          },
        );
      if (verified.size >= VERIFIED_MEMO_SIZE) verified.clear();
      verified.add(userId);
    },

    /** The owner deletes the account: the password (and a current code when two-factor sign-in is on). */
    async deleteOwn(user: AuthUser, input: z.infer<typeof deleteAccountInput>, client: ClientInfo): Promise<{ deleted: true }> {
      return withPasswordWork(config, 'deleteAccount', client, async () => {
        const row = await db.user.findUnique({ where: { id: user.id }, select: { email: true, passwordHash: true } });
        if (!row) throw new AppError('UNAUTHORIZED', 'This account no longer exists.');
        const attempt = await rateLimits.beginPasswordAttempt(row.email);
        let problem: 'password' | 'code' | undefined;
        try {
          if (!(await verifyPassword(row.passwordHash, input.password, config.passwords))) problem = 'password';
          else if ((await deps.twoFactor.confirmCode(user.id, input.code)) === false) problem = 'code';
        } catch (error) {
          await attempt.abandoned().catch(() => {});
          throw error;
        }
        if (problem === 'password') {
          await attempt.failed();
          throw new AppError('BAD_REQUEST', 'Invalid input.', { fieldErrors: { password: ['is incorrect'] } });
        }
        if (problem === 'code') {
          await attempt.failed();
          throw new AppError('BAD_REQUEST', 'Invalid input.', {
            fieldErrors: {
              code: [
                input.code === undefined ? 'is required: two-factor sign-in is on' : 'is not the current code of your authenticator app',
              ],
            },
            reason: 'INVALID_TWO_FACTOR_CODE',
          });
        }
        await attempt.succeeded();
        await db.$transaction((tx) => deleteRows(tx, user.id));
        return finish(user.id, client.log, { by: 'self', sessionId: user.sessionId, ip: client.ip });
      });
    },

    /** An admin deletes another account (or their own, unless they are the last admin). */
    async deleteByAdmin(admin: AuthUser, userId: string, log: Log): Promise<{ deleted: true }> {
      await db.$transaction((tx) => deleteRows(tx, userId));
      return finish(userId, log, { by: 'admin', adminId: admin.id });
    },

    async exportData(user: AuthUser, client: ClientInfo): Promise<AccountExport> {
      const exportedAt = now();
      const row = await db.user.findUnique({
        where: { id: user.id },
        select: {
          ...adminUserSelect,
          passwordChangedAt: true,
          twoFactor: { select: { enabledAt: true } },
          identities: { orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], select: { provider: true, email: true, createdAt: true } },
          sessions: {
            orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
            select: {
              id: true,
              createdAt: true,
              lastUsedAt: true,
              expiresAt: true,
              revokedAt: true,
              revokedReason: true,
              userAgent: true,
              ip: true,
              factors: true,
            },
          },
          projects: {
            orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
            select: {
              id: true,
              name: true,
              description: true,
              archivedAt: true,
              createdAt: true,
              updatedAt: true,
              tasks: {
                orderBy: [{ position: 'asc' }, { id: 'asc' }],
                select: {
                  id: true,
                  title: true,
                  description: true,
                  status: true,
                  dueAt: true,
                  position: true,
                  createdAt: true,
                  updatedAt: true,
                },
              },
            },
          },
        },
      });
      if (!row) throw new AppError('UNAUTHORIZED', 'This account no longer exists.');
      const { twoFactor, sessions, identities, projects, ...profile } = row;
      audit(client.log, 'auth.account.exported', { userId: user.id, sessionId: user.sessionId, ip: client.ip });
      return {
        exportedAt,
        profile: { ...profile, twoFactorEnabled: Boolean(twoFactor?.enabledAt) },
        sessions,
        identities,
        projects,
      };
    },
  };
}
