/**
 * Sessions and their refresh-token chains. A session is one sign-in; every refresh exchanges the
 * current token for its successor. Presenting a token that was already exchanged is reuse (a
 * stolen token, or a copy), except for the immediate predecessor inside a short grace window (a
 * retry after a lost response, two tabs): that caller gets the successor already issued.
 */

import { LRUCache } from 'lru-cache';
import type { Config } from '../../config.js';
import type { Db, PrismaClient } from '../../db/client.js';
import { MAX_PAGE_SIZE, type Page, paginate, rowsAfter } from '../../lib/pagination.js';
import { hashToken, newOpaqueToken, successorToken } from './opaque-tokens.js';

export type SessionPolicy = Pick<Config['auth'], 'sessionIdleSeconds' | 'sessionMaxSeconds' | 'reuseGraceSeconds'>;

export interface IssuedRefreshToken {
  userId: string;
  sessionId: string;
  refreshToken: string;
  refreshTokenExpiresAt: Date;
}

export type RotationResult =
  | ({ kind: 'rotated' } & IssuedRefreshToken)
  | { kind: 'invalid' }
  | { kind: 'reuse'; userId: string; sessionId: string };

interface SessionTimes {
  lastUsedAt: Date;
  expiresAt: Date;
  revokedAt: Date | null;
}

const addSeconds = (date: Date, seconds: number) => new Date(date.getTime() + seconds * 1000);

/** When the session's refresh token stops working: idle timeout or absolute end, whichever is first. */
export function refreshExpiry(session: Pick<SessionTimes, 'lastUsedAt' | 'expiresAt'>, policy: SessionPolicy): Date {
  return new Date(Math.min(session.lastUsedAt.getTime() + policy.sessionIdleSeconds * 1000, session.expiresAt.getTime()));
}

export function isSessionLive(session: SessionTimes, policy: SessionPolicy, now: Date): boolean {
  return session.revokedAt === null && refreshExpiry(session, policy) > now;
}

export async function createSession(
  db: Db,
  input: {
    userId: string;
    userAgent: string | undefined;
    ip: string | undefined;
    now: Date;
    policy: SessionPolicy;
    /** How the sign-in was proven (two-factor/schemas.ts `factorSchema`); a password alone by default. */
    factors?: string[];
  },
): Promise<IssuedRefreshToken> {
  const refreshToken = newOpaqueToken();
  const session = await db.session.create({
    data: {
      userId: input.userId,
      userAgent: input.userAgent ?? null,
      ip: input.ip ?? null,
      factors: input.factors ?? ['password'],
      createdAt: input.now,
      lastUsedAt: input.now,
      expiresAt: addSeconds(input.now, input.policy.sessionMaxSeconds),
      refreshTokens: { create: { tokenHash: hashToken(refreshToken), createdAt: input.now } },
    },
    select: { id: true, lastUsedAt: true, expiresAt: true },
  });
  return { userId: input.userId, sessionId: session.id, refreshToken, refreshTokenExpiresAt: refreshExpiry(session, input.policy) };
}

/**
 * Exchanges a refresh token under a row lock on its session, so concurrent refreshes with one
 * token serialise: the first rotates, the others (inside the grace window) receive the same
 * successor, and no session ever has two live tokens. A detected reuse revokes the session and
 * commits that before the caller is told.
 */
export async function rotateRefreshToken(
  db: PrismaClient,
  input: { token: string; secrets: Buffer[]; policy: SessionPolicy; now: Date },
): Promise<RotationResult> {
  const tokenHash = hashToken(input.token);
  const found = await db.refreshToken.findUnique({ where: { tokenHash }, select: { sessionId: true } });
  if (!found) return { kind: 'invalid' };
  const { now, policy } = input;

  return db.$transaction(async (tx) => {
    await tx.$queryRaw`SELECT id FROM sessions WHERE id = ${found.sessionId}::uuid FOR UPDATE`;
    const session = await tx.session.findUnique({
      where: { id: found.sessionId },
      select: { id: true, userId: true, lastUsedAt: true, expiresAt: true, revokedAt: true },
    });
    const token = await tx.refreshToken.findUnique({ where: { tokenHash }, select: { id: true, rotatedAt: true, replacedById: true } });
    if (!session || !token || !isSessionLive(session, policy, now)) return { kind: 'invalid' } as const;

    if (token.rotatedAt === null) {
      const successor = successorToken(input.secrets[0] as Buffer, input.token);
      const next = await tx.refreshToken.create({
        data: { sessionId: session.id, tokenHash: hashToken(successor), createdAt: now },
        select: { id: true },
      });
      await tx.refreshToken.update({ where: { id: token.id }, data: { rotatedAt: now, replacedById: next.id } });
      const updated = await tx.session.update({
        where: { id: session.id },
        data: { lastUsedAt: now },
        select: { lastUsedAt: true, expiresAt: true },
      });
      return {
        kind: 'rotated',
        userId: session.userId,
        sessionId: session.id,
        refreshToken: successor,
        refreshTokenExpiresAt: refreshExpiry(updated, policy),
      } as const;
    }

    const withinGrace = policy.reuseGraceSeconds > 0 && now.getTime() - token.rotatedAt.getTime() <= policy.reuseGraceSeconds * 1000;
    if (withinGrace && token.replacedById) {
      const next = await tx.refreshToken.findUnique({ where: { id: token.replacedById }, select: { rotatedAt: true, tokenHash: true } });
      // Only the immediate predecessor of the live token qualifies; older ancestors are reuse.
      if (next && next.rotatedAt === null) {
        const successor = input.secrets.map((secret) => successorToken(secret, input.token)).find((t) => hashToken(t) === next.tokenHash);
        if (!successor) {
          // Derived with a key this instance does not hold (mid-rotation): refuse, but it is not reuse.
          return { kind: 'invalid' } as const;
        }
        return {
          kind: 'rotated',
          userId: session.userId,
          sessionId: session.id,
          refreshToken: successor,
          refreshTokenExpiresAt: refreshExpiry(session, policy),
        } as const;
      }
    }
    await tx.session.update({ where: { id: session.id }, data: { revokedAt: now, revokedReason: 'refresh_token_reuse' } });
    return { kind: 'reuse', userId: session.userId, sessionId: session.id } as const;
  });
}

/** Revokes one live session (of `userId`, when given). True when something was revoked. */
export async function revokeSession(db: Db, input: { sessionId: string; userId?: string; reason: string; now: Date }): Promise<boolean> {
  const { count } = await db.session.updateMany({
    where: { id: input.sessionId, revokedAt: null, ...(input.userId ? { userId: input.userId } : {}) },
    data: { revokedAt: input.now, revokedReason: input.reason },
  });
  return count > 0;
}

/** Revokes every live session of a user, except `exceptSessionId`; returns how many. */
export async function revokeUserSessions(
  db: Db,
  input: { userId: string; reason: string; now: Date; exceptSessionId?: string },
): Promise<number> {
  const { count } = await db.session.updateMany({
    where: { userId: input.userId, revokedAt: null, ...(input.exceptSessionId ? { id: { not: input.exceptSessionId } } : {}) },
    data: { revokedAt: input.now, revokedReason: input.reason },
  });
  return count;
}

/** A live session as its owner sees it listed. */
export interface LiveSession {
  id: string;
  createdAt: Date;
  lastUsedAt: Date;
  userAgent: string | null;
  ip: string | null;
  factors: string[];
}

/** One page of the user's live sessions, most recently used first (pagination.ts: keyset on lastUsedAt, id). */
export function listLiveSessions(
  db: Db,
  userId: string,
  policy: SessionPolicy,
  now: Date,
  page: { cursor?: string | undefined; limit: number } = { limit: MAX_PAGE_SIZE },
): Promise<Page<LiveSession>> {
  return paginate(
    page,
    'date',
    (row) => ({ key: row.lastUsedAt, id: row.id }),
    ({ after, take }) =>
      db.session.findMany({
        where: {
          userId,
          revokedAt: null,
          expiresAt: { gt: now },
          lastUsedAt: { gt: addSeconds(now, -policy.sessionIdleSeconds) },
          ...(rowsAfter('lastUsedAt', after, 'desc') ?? {}),
        },
        orderBy: [{ lastUsedAt: 'desc' }, { id: 'desc' }],
        select: { id: true, createdAt: true, lastUsedAt: true, userAgent: true, ip: true, factors: true },
        take,
      }),
  );
}

export async function isSessionActive(db: Db, sessionId: string, policy: SessionPolicy, now: Date): Promise<boolean> {
  const session = await db.session.findUnique({ where: { id: sessionId }, select: { lastUsedAt: true, expiresAt: true, revokedAt: true } });
  return session !== null && isSessionLive(session, policy, now);
}

/**
 * Strict mode's memory of recent session checks: a revoked session is refused at most
 * `ttlSeconds` after another instance revoked it (at once on the instance that revoked it).
 */
export class SessionCache {
  /** Bounded: the least recently checked sessions go first; each answer also expires by time. */
  private readonly entries: LRUCache<string, { active: boolean; until: number }>;

  constructor(
    private readonly ttlSeconds: number,
    maxEntries = 10_000,
  ) {
    this.entries = new LRUCache({ max: maxEntries });
  }

  async isActive(sessionId: string, now: Date, check: () => Promise<boolean>): Promise<boolean> {
    const hit = this.entries.get(sessionId);
    if (hit && hit.until > now.getTime()) return hit.active;
    const active = await check();
    this.entries.set(sessionId, { active, until: now.getTime() + this.ttlSeconds * 1000 });
    return active;
  }

  forget(sessionId: string): void {
    this.entries.delete(sessionId);
  }

  clear(): void {
    this.entries.clear();
  }
}
