/**
 * examples/internal-service run as a real process against a live Keel: it verifies a user's Keel
 * token with the SDK's verifier and reads that user's projects with its own service account
 * (the SDK's service client). In the middle Keel's signing key is replaced (the old one dropped):
 * the service's cached service token is then refused once and renewed, and a user token signed by
 * the new key is verified after one refetch of the JWKS.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../server/src/http/app.js';
import { generateJwkSet, importKeySet } from '../../server/src/modules/auth/keys.js';
import { signIn } from '../support/caller.js';
import { useTestDatabase } from '../support/database.js';
import { createUser } from '../support/factories.js';
import { REPO_ROOT, spawnTsx, stopAllProcesses } from '../support/process.js';
import { createServiceAccount } from '../support/service-accounts.js';

const EXAMPLE = join(REPO_ROOT, 'examples/internal-service');

const db = await useTestDatabase();
afterAll(() => stopAllProcesses());

describe('examples/internal-service against a live Keel', () => {
  it('serves a report from a user token, before and after a signing-key rotation', async () => {
    const oldKeys = await importKeySet(JSON.stringify(await generateJwkSet('EdDSA')));
    const before = db.deps({ keys: oldKeys });
    const keelBefore = await buildApp(before);
    const keelUrl = await keelBefore.listen({ host: '127.0.0.1', port: 0 });
    const port = Number(new URL(keelUrl).port);

    const account = await createServiceAccount(before, ['projects:read', 'users:read'], 'project-reports');
    const user = await createUser(before);
    const asUser = { id: user.id, role: 'USER' as const, sessionId: user.id };
    await before.services.projects.create(asUser, { name: 'Alpha' });
    await before.services.projects.create(asUser, { name: 'Beta' });

    const service = spawnTsx(join(EXAMPLE, 'src/main.ts'), [], {
      name: 'internal-service',
      cwd: EXAMPLE,
      env: {
        KEEL_URL: keelUrl,
        KEEL_CLIENT_ID: account.clientId,
        KEEL_CLIENT_SECRET: account.clientSecret,
        KEEL_JWKS_COOLDOWN_SECONDS: '0',
      },
    });
    const line = await service.waitForLine(/listening on http:\/\/127\.0\.0\.1:\d+/, 30_000);
    const serviceUrl = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(line)?.[1] ?? '';

    const reportFor = async (token: string) => {
      const response = await fetch(`${serviceUrl}/report`, { headers: { authorization: `Bearer ${token}` } });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };

    const first = await reportFor((await signIn(before, user)).accessToken);
    expect(first).toEqual({ status: 200, body: { userId: user.id, role: 'USER', projectCount: 2, projects: ['Beta', 'Alpha'] } });
    expect((await reportFor('not.a.token')).status).toBe(401);

    // The rotation: Keel restarts on the same address with a new key only.
    await keelBefore.close();
    const newKeys = await importKeySet(JSON.stringify(await generateJwkSet('EdDSA')));
    const after = db.deps({ keys: newKeys });
    const keelAfter = await buildApp(after);
    await keelAfter.listen({ host: '127.0.0.1', port });
    try {
      await after.services.projects.create(asUser, { name: 'Gamma' });
      const second = await reportFor((await signIn(after, user)).accessToken);
      expect(second).toEqual({
        status: 200,
        body: { userId: user.id, role: 'USER', projectCount: 3, projects: ['Gamma', 'Beta', 'Alpha'] },
      });
      // A user token of the dropped key is refused by the service as it is by Keel.
      expect((await reportFor((await signIn(before, user)).accessToken)).status).toBe(401);
      // The service got two tokens: its first, and one more after Keel refused the first (old key).
      const issued = await db.database.prisma.rateLimit.findUniqueOrThrow({ where: { key: `oauth-client:${account.clientId}` } });
      expect(issued.points).toBe(2);
      expect(service.output()).not.toContain(account.clientSecret);
    } finally {
      await keelAfter.close();
    }
  });
});
