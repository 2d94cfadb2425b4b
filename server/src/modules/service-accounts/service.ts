/**
 * Service accounts: an internal service's identity for the OAuth 2.0 client-credentials grant.
 * Admins create, list, change, rotate and revoke them (router.ts); the token endpoint
 * (http/oauth-token.ts) authenticates clients here. Secrets are shown once and stored only as a
 * keyed hash (secrets.ts).
 */
import type { z } from 'zod';
import type { Config } from '../../config.js';
import type { PrismaClient } from '../../db/client.js';
import { AppError } from '../../lib/errors.js';
import { type Page, paginate, rowsAfter } from '../../lib/pagination.js';
import type { Log } from '../../logger.js';
import { auditService } from './audit.js';
import type {
  createServiceAccountInput,
  IssuedCredentials,
  listServiceAccountsInput,
  ServiceAccount,
  updateServiceAccountInput,
} from './schemas.js';
import { isScope, type Scope } from './scopes.js';
import { DUMMY_HASH, hashSecret, newClientId, newClientSecret, secretMatches } from './secrets.js';

const accountSelect = {
  id: true,
  clientId: true,
  name: true,
  scopes: true,
  previousSecretExpiresAt: true,
  revokedAt: true,
  lastUsedAt: true,
  createdAt: true,
  updatedAt: true,
} as const;

type Row = Omit<ServiceAccount, 'scopes'> & { scopes: string[] };

/** Stored scopes that left the list (a code change) grant nothing: they are dropped, not trusted. */
const toAccount = (row: Row): ServiceAccount => ({ ...row, scopes: row.scopes.filter(isScope) });

/** Who made a change, for its audit line. */
export interface Actor {
  userId: string;
  ip: string | undefined;
  log: Log;
}

/** A client that presented a valid secret: what its token may carry. */
export interface AuthenticatedClient {
  id: string;
  clientId: string;
  scopes: Scope[];
}

const notFound = () => new AppError('NOT_FOUND', 'Service account not found.');

export function createServiceAccountService(db: PrismaClient, config: Config['serviceAccounts'], now: () => Date) {
  const key = config.secretHashKey;

  async function change(id: string, data: Record<string, unknown>): Promise<ServiceAccount> {
    const { count } = await db.serviceAccount.updateMany({ where: { id, revokedAt: null }, data });
    if (count === 0) {
      const exists = await db.serviceAccount.findUnique({ where: { id }, select: { revokedAt: true } });
      if (!exists) throw notFound();
      throw new AppError('CONFLICT', 'This service account is revoked: it cannot change. Create a new one.', { reason: 'REVOKED' });
    }
    return toAccount(await db.serviceAccount.findUniqueOrThrow({ where: { id }, select: accountSelect }));
  }

  return {
    async create(input: z.infer<typeof createServiceAccountInput>, actor: Actor): Promise<IssuedCredentials> {
      const clientSecret = newClientSecret();
      const row = await db.serviceAccount.create({
        data: {
          clientId: newClientId(),
          name: input.name,
          scopes: input.scopes,
          secretHash: hashSecret(key, clientSecret),
          createdById: actor.userId,
          createdAt: now(),
        },
        select: accountSelect,
      });
      auditService(actor.log, 'service_account.created', {
        userId: actor.userId,
        ip: actor.ip,
        serviceAccountId: row.id,
        scopes: row.scopes,
      });
      return { id: row.id, clientId: row.clientId, clientSecret, account: toAccount(row) };
    },

    async list(input: z.infer<typeof listServiceAccountsInput>): Promise<Page<ServiceAccount>> {
      const page = await paginate(
        input,
        'date',
        (r: Row) => ({ key: r.createdAt, id: r.id }),
        ({ after, take }) =>
          db.serviceAccount.findMany({
            where: { ...(input.includeRevoked ? {} : { revokedAt: null }), ...rowsAfter('createdAt', after, 'desc') },
            orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
            take,
            select: accountSelect,
          }),
      );
      return { items: page.items.map(toAccount), nextCursor: page.nextCursor };
    },

    async get(id: string): Promise<ServiceAccount> {
      const row = await db.serviceAccount.findUnique({ where: { id }, select: accountSelect });
      if (!row) throw notFound();
      return toAccount(row);
    },

    async update(input: z.infer<typeof updateServiceAccountInput>, actor: Actor): Promise<ServiceAccount> {
      const account = await change(input.id, {
        ...(input.name === undefined ? {} : { name: input.name }),
        ...(input.scopes === undefined ? {} : { scopes: input.scopes }),
      });
      auditService(actor.log, 'service_account.updated', {
        userId: actor.userId,
        ip: actor.ip,
        serviceAccountId: account.id,
        changed: Object.keys(input).filter((k) => k !== 'id'),
        scopes: account.scopes,
      });
      return account;
    },

    /**
     * A new secret; the current one keeps working for SERVICE_SECRET_OVERLAP_SECONDS so the
     * service can be redeployed with the new one. A secret older than that (an earlier rotation's)
     * dies now: at most two secrets are ever valid.
     */
    async rotateSecret(id: string, actor: Actor): Promise<IssuedCredentials> {
      const clientSecret = newClientSecret();
      const overlapEnds = new Date(now().getTime() + config.secretOverlapSeconds * 1000);
      const account = await db.$transaction(async (tx) => {
        const rows = await tx.$queryRaw<{ secret_hash: string; revoked_at: Date | null }[]>`
          SELECT secret_hash, revoked_at FROM service_accounts WHERE id = ${id}::uuid FOR UPDATE`;
        const current = rows[0];
        if (!current) throw notFound();
        if (current.revoked_at) throw new AppError('CONFLICT', 'This service account is revoked: create a new one.', { reason: 'REVOKED' });
        return tx.serviceAccount.update({
          where: { id },
          data: {
            secretHash: hashSecret(key, clientSecret),
            previousSecretHash: config.secretOverlapSeconds > 0 ? current.secret_hash : null,
            previousSecretExpiresAt: config.secretOverlapSeconds > 0 ? overlapEnds : null,
          },
          select: accountSelect,
        });
      });
      auditService(actor.log, 'service_account.secret_rotated', {
        userId: actor.userId,
        ip: actor.ip,
        serviceAccountId: id,
        previousSecretExpiresAt: account.previousSecretExpiresAt?.toISOString() ?? null,
      });
      return { id: account.id, clientId: account.clientId, clientSecret, account: toAccount(account) };
    },

    /** No token is issued from now on; issued ones stop at once in strict mode, at their expiry otherwise. */
    async revoke(id: string, actor: Actor): Promise<ServiceAccount> {
      const account = await change(id, { revokedAt: now(), previousSecretHash: null, previousSecretExpiresAt: null });
      auditService(actor.log, 'service_account.revoked', { userId: actor.userId, ip: actor.ip, serviceAccountId: id });
      return account;
    },

    /**
     * The client whose id and secret these are, or null (unknown id, wrong or expired secret,
     * revoked): one answer for all, in about the same time. Sets `lastUsedAt` on success.
     */
    async authenticateClient(clientId: string, secret: string): Promise<AuthenticatedClient | null> {
      const row = await db.serviceAccount.findUnique({
        where: { clientId },
        select: {
          id: true,
          clientId: true,
          scopes: true,
          secretHash: true,
          previousSecretHash: true,
          previousSecretExpiresAt: true,
          revokedAt: true,
        },
      });
      const at = now();
      const previousValid = row?.previousSecretExpiresAt != null && row.previousSecretExpiresAt > at;
      // Both comparisons always run, so the timing says nothing about which secret (or none) matched.
      const current = secretMatches(key, secret, row?.secretHash ?? DUMMY_HASH);
      const previous = secretMatches(key, secret, previousValid ? (row?.previousSecretHash ?? DUMMY_HASH) : DUMMY_HASH);
      if (!row || row.revokedAt !== null || !(current || (previous && previousValid))) return null;
      await db.serviceAccount.update({ where: { id: row.id }, data: { lastUsedAt: at } });
      return { id: row.id, clientId: row.clientId, scopes: row.scopes.filter(isScope) };
    },

    /** Strict mode: is the account behind a token still live (not revoked, not deleted)? */
    async isActive(id: string): Promise<boolean> {
      const row = await db.serviceAccount.findUnique({ where: { id }, select: { revokedAt: true } });
      return row !== null && row.revokedAt === null;
    },
  };
}

export type ServiceAccountService = ReturnType<typeof createServiceAccountService>;
