/**
 * The `serviceAccounts` router, admin only: credentials shown once and stored as a keyed hash,
 * cursor pages, scope changes from the closed list, rotation with an overlap, revocation, and one
 * audit line per change.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createAppDeps } from '../../../server/src/deps.js';
import { createLogger } from '../../../server/src/logger.js';
import { callerFor } from '../../support/caller.js';
import { movableClock } from '../../support/clock.js';
import { testConfig, useTestDatabase } from '../../support/database.js';
import { codeOf } from '../../support/errors.js';
import { createUser } from '../../support/factories.js';
import { captureLogs } from '../../support/log-capture.js';

const db = await useTestDatabase();
const clock = movableClock();
const logs = captureLogs();
const config = testConfig(db.url, { LOG_LEVEL: 'info', SERVICE_SECRET_OVERLAP_SECONDS: '3600' });
const deps = createAppDeps({ config, database: db.database, logger: createLogger(config, logs.stream), keys: db.keys, now: clock.now });
const admin = await createUser(deps, { role: 'ADMIN' });
const asAdmin = await callerFor(deps, admin);
const accounts = deps.services.serviceAccounts;

describe('serviceAccounts', () => {
  it('create shows a 256-bit secret once and stores only its HMAC under SERVICE_SECRET_HASH_KEY', async () => {
    const created = await asAdmin.serviceAccounts.create({ name: 'billing', scopes: ['users:read', 'projects:read', 'users:read'] });
    expect(created.clientSecret).toMatch(/^keel_sk_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(created.clientSecret.slice('keel_sk_'.length), 'base64url')).toHaveLength(32);
    expect(created.account).toMatchObject({ name: 'billing', scopes: ['projects:read', 'users:read'], revokedAt: null, lastUsedAt: null });
    const row = await deps.database.prisma.serviceAccount.findUniqueOrThrow({ where: { id: created.id } });
    const expected = createHmac('sha256', config.serviceAccounts.secretHashKey).update(created.clientSecret).digest('hex');
    expect(row.secretHash).toBe(expected);
    expect(JSON.stringify(row)).not.toContain(created.clientSecret.slice(8));
    expect(await asAdmin.serviceAccounts.get({ id: created.id })).not.toHaveProperty('clientSecret');
    await logs.waitFor((l) => l.audit === 'service_account.created' && l.serviceAccountId === created.id && l.userId === admin.id);
  });

  it('refuses a scope outside the closed list with BAD_REQUEST, on create and on update', async () => {
    expect(await codeOf(asAdmin.serviceAccounts.create({ name: 'x', scopes: ['projects:admin' as 'projects:read'] }))).toBe('BAD_REQUEST');
    const created = await asAdmin.serviceAccounts.create({ name: 'y', scopes: ['users:read'] });
    expect(await codeOf(asAdmin.serviceAccounts.update({ id: created.id, scopes: ['root' as 'users:read'] }))).toBe('BAD_REQUEST');
    const updated = await asAdmin.serviceAccounts.update({ id: created.id, scopes: ['projects:write'], name: 'y2' });
    expect(updated).toMatchObject({ name: 'y2', scopes: ['projects:write'] });
    await logs.waitFor((l) => l.audit === 'service_account.updated' && l.serviceAccountId === created.id);
  });

  it('lists in cursor pages, newest first, without revoked accounts unless asked', async () => {
    const names = ['p1', 'p2', 'p3'];
    for (const name of names) {
      clock.advance(1);
      await asAdmin.serviceAccounts.create({ name, scopes: ['users:read'] });
    }
    const first = await asAdmin.serviceAccounts.list({ limit: 2, includeRevoked: false });
    expect(first.items.map((a) => a.name)).toEqual(['p3', 'p2']);
    const second = await asAdmin.serviceAccounts.list({ limit: 2, includeRevoked: false, cursor: first.nextCursor ?? '' });
    expect(second.items[0]?.name).toBe('p1');
    const p3 = first.items[0];
    if (!p3) throw new Error('no page');
    await asAdmin.serviceAccounts.revoke({ id: p3.id });
    expect((await asAdmin.serviceAccounts.list({ limit: 100, includeRevoked: false })).items.map((a) => a.id)).not.toContain(p3.id);
    expect((await asAdmin.serviceAccounts.list({ limit: 100, includeRevoked: true })).items.map((a) => a.id)).toContain(p3.id);
  });

  it('rotateSecret: the old secret works for the overlap, then dies; the new one works', async () => {
    const created = await asAdmin.serviceAccounts.create({ name: 'rotating', scopes: ['users:read'] });
    const before = clock.now().getTime();
    const rotated = await asAdmin.serviceAccounts.rotateSecret({ id: created.id });
    expect(rotated.clientSecret).not.toBe(created.clientSecret);
    const overlapEnds = rotated.account.previousSecretExpiresAt?.getTime() ?? 0;
    expect(overlapEnds - before).toBeGreaterThanOrEqual(3_600_000);
    expect(overlapEnds - clock.now().getTime()).toBeLessThanOrEqual(3_600_000);
    expect(await accounts.authenticateClient(created.clientId, created.clientSecret)).toMatchObject({ id: created.id });
    expect(await accounts.authenticateClient(created.clientId, rotated.clientSecret)).toMatchObject({ id: created.id });
    clock.advance(3_601);
    try {
      expect(await accounts.authenticateClient(created.clientId, created.clientSecret)).toBeNull();
      expect(await accounts.authenticateClient(created.clientId, rotated.clientSecret)).toMatchObject({ id: created.id });
    } finally {
      clock.advance(-3_601); // the admin's access token lives 15 minutes
    }
    await logs.waitFor((l) => l.audit === 'service_account.secret_rotated' && l.serviceAccountId === created.id);
  });

  it('a second rotation kills the first secret at once: at most two are ever valid', async () => {
    const created = await asAdmin.serviceAccounts.create({ name: 'twice', scopes: ['users:read'] });
    const second = await asAdmin.serviceAccounts.rotateSecret({ id: created.id });
    await asAdmin.serviceAccounts.rotateSecret({ id: created.id });
    expect(await accounts.authenticateClient(created.clientId, created.clientSecret)).toBeNull();
    expect(await accounts.authenticateClient(created.clientId, second.clientSecret)).not.toBeNull();
  });

  it('revoke: no secret authenticates any more, and a revoked account cannot change (CONFLICT)', async () => {
    const created = await asAdmin.serviceAccounts.create({ name: 'revoked', scopes: ['users:read'] });
    const revoked = await asAdmin.serviceAccounts.revoke({ id: created.id });
    expect(revoked.revokedAt).toBeInstanceOf(Date);
    expect(await accounts.authenticateClient(created.clientId, created.clientSecret)).toBeNull();
    expect(await codeOf(asAdmin.serviceAccounts.rotateSecret({ id: created.id }))).toBe('CONFLICT');
    expect(await codeOf(asAdmin.serviceAccounts.update({ id: created.id, name: 'back' }))).toBe('CONFLICT');
    await logs.waitFor((l) => l.audit === 'service_account.revoked' && l.serviceAccountId === created.id);
  });

  it('answers NOT_FOUND for an unknown id, and refuses an Idempotency-Key on calls that return a secret', async () => {
    expect(await codeOf(asAdmin.serviceAccounts.get({ id: '00000000-0000-4000-8000-000000000000' }))).toBe('NOT_FOUND');
    const keyed = await callerFor(deps, admin, { idempotencyKey: 'create-once-1234' });
    expect(await codeOf(keyed.serviceAccounts.create({ name: 'keyed', scopes: ['users:read'] }))).toBe('BAD_REQUEST');
  });

  it('never logs a client secret', () => {
    expect(logs.text()).not.toMatch(/keel_sk_/);
  });
});
