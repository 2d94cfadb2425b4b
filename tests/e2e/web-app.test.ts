/**
 * The example app (examples/web) in headless Chromium against a real server: built with Vite as
 * `pnpm build` builds it, served from its own loopback origin, driven through its UI. Sign-up with
 * field errors, create, rename (and its rollback on CONFLICT), tasks, a change made through the API
 * by another session appearing live, and an access-token expiry survived through the refresh cookie
 * and the subscription's resume.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { promisify } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { createKeelClient } from '../../client-sdk/src/index.js';
import { launchChromium } from '../support/chromium.js';
import { movableClock } from '../support/clock.js';
import { useTestDatabase } from '../support/database.js';
import { startTestServer } from '../support/http.js';
import { REPO_ROOT } from '../support/process.js';

const TTL_SECONDS = 60;
const TEST_TIMEOUT_MS = 120_000;
const WEB = join(REPO_ROOT, 'examples/web');

// The page's origin first (the API must allow it), then the API, then the app built against it.
const files = new Map<string, Buffer>();
const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };
const staticServer: Server = createServer((req, res) => {
  const path = normalize((req.url ?? '/').split('?', 1)[0] ?? '/');
  const body = files.get(path === '/' ? '/index.html' : path);
  if (!body) return res.writeHead(404).end();
  res.writeHead(200, { 'content-type': `${TYPES[extname(path)] ?? 'text/html'}; charset=utf-8` }).end(body);
});
await new Promise<void>((resolve) => staticServer.listen(0, '127.0.0.1', resolve));
const PAGE_ORIGIN = `http://127.0.0.1:${(staticServer.address() as AddressInfo).port}`;
afterAll(() => new Promise<void>((resolve) => staticServer.close(() => resolve())));

const db = await useTestDatabase();
const clock = movableClock();
const deps = db.deps({
  config: {
    CORS_ORIGINS: PAGE_ORIGIN,
    ACCESS_TOKEN_TTL_SECONDS: String(TTL_SECONDS),
    LIVE_HEARTBEAT_SECONDS: '1',
    RATE_LIMIT_ENABLED: 'false',
  },
  now: clock.now,
});
const api = await startTestServer(deps);

const outDir = mkdtempSync(join(tmpdir(), 'keel-web-'));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));
await promisify(execFile)(
  process.execPath,
  [join(WEB, 'node_modules/vite/bin/vite.js'), 'build', '--outDir', outDir, '--emptyOutDir', '--logLevel', 'warn'],
  {
    cwd: WEB,
    env: { ...process.env, VITE_KEEL_API_URL: api.url },
  },
);
for (const name of ['index.html', ...readdirSync(join(outDir, 'assets')).map((f) => `assets/${f}`)]) {
  files.set(`/${name}`, readFileSync(join(outDir, name)));
}

let browser: Browser | undefined;
afterAll(async () => {
  await browser?.close();
});

const PASSWORD = 'a sturdy passphrase for chromium';

describe('examples/web in headless Chromium', () => {
  it(
    "signs up, creates and renames, sees another session's change live, survives an access-token expiry, revokes a session and signs out",
    async () => {
      browser = await launchChromium(TEST_TIMEOUT_MS);
      const page: Page = await (await browser.newContext({ viewport: { width: 1000, height: 760 } })).newPage();
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.goto(PAGE_ORIGIN);

      // Sign up, with a field error shown next to its input first.
      const email = `web-${Date.now()}@example.test`;
      await page.getByRole('button', { name: 'I need an account' }).click();
      await page.locator('input[name=name]').fill('Ada');
      await page.locator('input[name=email]').fill(email);
      await page.locator('input[name=password]').fill('short');
      await page.getByRole('button', { name: 'Create account' }).click();
      await expect.poll(() => page.locator('[data-field-error=password]').count()).toBeGreaterThan(0);
      await page.locator('input[name=password]').fill(PASSWORD);
      await page.getByRole('button', { name: 'Create account' }).click();
      await page.getByTestId('me').getByText('Ada').waitFor();

      // Create, and wait for the live stream to be open.
      await page.locator('input[name=project-name]').fill('Made in Chromium');
      await page.getByRole('button', { name: 'Create', exact: true }).click();
      const row = (name: string) => page.locator(`li[data-testid=project][data-name="${name}"]`);
      await row('Made in Chromium').waitFor();
      await page.getByTestId('live-status').getByText('live').waitFor();

      // Rename (optimistic).
      await row('Made in Chromium').getByRole('button', { name: 'Rename', exact: true }).click();
      await page.locator('input[name=rename]').fill('Renamed in Chromium');
      await page.getByRole('button', { name: 'Save' }).click();
      await row('Renamed in Chromium').waitFor();

      // Another session, through the API: the page shows its change without a reload.
      const other = createKeelClient({ url: api.url });
      await other.login({ email, password: PASSWORD });
      await other.projects.create.mutate({ name: 'From another session' });
      await row('From another session').waitFor();

      // A rename that loses the race (the other session renames first): rolled back, with the server's message.
      await page.route('**/trpc/projects.update**', async (route) => {
        const [project] = (await other.projects.list.query()).items.filter((p) => p.name === 'Renamed in Chromium');
        if (project) await other.projects.update.mutate({ id: project.id, version: project.version, name: 'Renamed elsewhere' });
        await route.continue();
      });
      await row('Renamed in Chromium').getByRole('button', { name: 'Rename', exact: true }).click();
      await page.locator('input[name=rename]').fill('Lost the race');
      await page.getByRole('button', { name: 'Save' }).click();
      await expect.poll(() => page.getByTestId('rename-error').textContent()).toMatch(/changed meanwhile/);
      await row('Renamed elsewhere').waitFor();
      expect(await row('Lost the race').count()).toBe(0);
      await page.unroute('**/trpc/projects.update**');

      // Tasks of a project.
      await row('Renamed elsewhere').getByRole('button', { name: 'Renamed elsewhere', exact: true }).click();
      await page.locator('input[name=task-title]').fill('First task');
      await page.getByRole('button', { name: 'Add' }).click();
      await page.getByTestId('task').getByText('First task').waitFor();

      // The access token expires: the stream ends, the SDK refreshes through the cookie and resumes.
      clock.advance(TTL_SECONDS + 31);
      await other.projects.create.mutate({ name: 'After expiry' });
      await row('After expiry').waitFor();
      await page.screenshot({ path: join(outDir, 'web-app.png') });

      // A reload keeps the session (the refresh cookie); the other session shows in the list and is revoked from here.
      await page.reload();
      await page.getByTestId('me').getByText('Ada').waitFor();
      await expect.poll(() => page.getByTestId('session').count()).toBe(2);
      await page.getByTestId('session').getByRole('button', { name: 'Revoke', exact: true }).click();
      await expect.poll(() => page.getByTestId('session').count()).toBe(1);
      // Its access token lives out its minutes (AUTH_STRICT_SESSIONS is off); its session cannot be refreshed.
      expect(await other.refresh()).toBe(false);

      // Sign out: back to the sign-in form.
      await page.getByRole('button', { name: 'Sign out', exact: true }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      // `KEEL_WEB_SCREENSHOT=docs/images/web-app.png` keeps it (the README's picture).
      if (process.env.KEEL_WEB_SCREENSHOT) copyFileSync(join(outDir, 'web-app.png'), process.env.KEEL_WEB_SCREENSHOT);
      expect(errors).toEqual([]);
    },
    TEST_TIMEOUT_MS,
  );
});
