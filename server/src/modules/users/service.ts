/**
 * Admin user management. The last active admin can be neither demoted nor deactivated: the check
 * and the change run under one transaction-scoped advisory lock, so two admins demoting each
 * other at once cannot leave the system with none.
 */
import type { z } from 'zod';
import type { Db, PrismaClient } from '../../db/client.js';
import { AppError, notFound } from '../../lib/errors.js';
import { type Page, paginate, rowsAfter } from '../../lib/pagination.js';
import type { Role } from '../auth/schemas.js';
import { revokeUserSessions, type SessionCache } from '../auth/sessions.js';
import type { UserReason } from './reasons.js';
import type { AdminUser, listUsersInput } from './schemas.js';

/** The columns of a user an admin sees (and the account export starts from). */
export const adminUserSelect = {
  id: true,
  email: true,
  name: true,
  role: true,
  emailVerified: true,
  active: true,
  createdAt: true,
  updatedAt: true,
} as const;

/** Any constant works: it only has to be the same for every transaction that changes admins. */
export const ADMIN_CHANGES_LOCK = 4_802_911;

/**
 * Prisma passes `contains` and `startsWith` to LIKE as they are: `%` and `_` would match anything
 * (a search for `_` lists every user). Escaped with PostgreSQL's default LIKE escape, `\`.
 */
const likeLiteral = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

async function assertNotLastAdmin(tx: Db, userId: string, action: string): Promise<void> {
  const others = await tx.user.count({ where: { role: 'ADMIN', active: true, id: { not: userId } } });
  if (others === 0)
    throw new AppError('CONFLICT', `The last active admin cannot be ${action}. Make another user admin first.`, {
      reason: 'LAST_ADMIN' satisfies UserReason,
    });
}

export function createUserService(db: PrismaClient, sessionCache: SessionCache, now: () => Date) {
  /** Runs `change` on a user, serialised with every other admin-set change. */
  async function changeUser(id: string, change: (tx: Db, user: { role: Role; active: boolean }) => Promise<void>): Promise<AdminUser> {
    const changed = await db.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${ADMIN_CHANGES_LOCK})`;
      const user = await tx.user.findUnique({ where: { id }, select: { role: true, active: true } });
      if (!user) throw notFound('User');
      await change(tx, user);
      return tx.user.findUniqueOrThrow({ where: { id }, select: adminUserSelect });
    });
    // After the commit: cleared earlier, a request in between could cache the old state again.
    sessionCache.clear();
    return changed;
  }

  return {
    async list(input: z.infer<typeof listUsersInput>): Promise<Page<AdminUser>> {
      return paginate(
        input,
        'date',
        (u) => ({ key: u.createdAt, id: u.id }),
        ({ after, take }) =>
          db.user.findMany({
            where: {
              ...(input.role ? { role: input.role } : {}),
              ...(input.active === undefined ? {} : { active: input.active }),
              ...(input.search
                ? {
                    OR: [
                      { email: { startsWith: likeLiteral(input.search.toLowerCase()) } },
                      { name: { contains: likeLiteral(input.search), mode: 'insensitive' as const } },
                    ],
                  }
                : {}),
              // AND keeps the cursor's OR apart from the search's OR.
              AND: [rowsAfter('createdAt', after, 'desc') ?? {}],
            },
            orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
            take,
            select: adminUserSelect,
          }),
      );
    },

    async byId(id: string): Promise<AdminUser> {
      const user = await db.user.findUnique({ where: { id }, select: adminUserSelect });
      if (!user) throw notFound('User');
      return user;
    },

    /** A demotion also ends the user's sessions: their access tokens still say ADMIN. */
    setRole(id: string, role: Role): Promise<AdminUser> {
      return changeUser(id, async (tx, user) => {
        if (user.role === role) return;
        if (user.role === 'ADMIN' && user.active) await assertNotLastAdmin(tx, id, 'demoted');
        await tx.user.update({ where: { id }, data: { role } });
        if (role === 'USER') {
          await revokeUserSessions(tx, { userId: id, reason: 'role_changed', now: now() });
        }
      });
    },

    /** Deactivating ends every session of the user at once. */
    setActive(id: string, active: boolean): Promise<AdminUser> {
      return changeUser(id, async (tx, user) => {
        if (user.active === active) return;
        if (!active && user.role === 'ADMIN') await assertNotLastAdmin(tx, id, 'deactivated');
        await tx.user.update({ where: { id }, data: { active } });
        if (!active) {
          await revokeUserSessions(tx, { userId: id, reason: 'account_deactivated', now: now() });
        }
      });
    },
  };
}

export type UserService = ReturnType<typeof createUserService>;
