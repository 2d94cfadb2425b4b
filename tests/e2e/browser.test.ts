/**
 * The SDK in a real browser: headless Chromium (Debian's, driven by playwright-core) loads a page
 * bundled with the SDK from one loopback origin and talks to the API on another, in cookie mode,
 * over CORS with credentials. The refresh token stays in the HttpOnly cookie; an access token that
 * expires (the server's clock moves) is refreshed through that cookie without the page noticing.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { build } from 'esbuild';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/chromium.js';
import { movableClock } from '../support/clock.js';
import { useTestDatabase } from '../support/database.js';
import { startTestServer } from '../support/http.js';
import { REPO_ROOT } from '../support/process.js';

const TTL_SECONDS = 60;
const BROWSER_TIMEOUT_MS = 60_000;

// -------------------------------------------------------------------------------------------------
// The page: bundled from tests/e2e/fixtures/browser/page.ts, served by a tiny static server on its
// own port, so the API sees a cross-origin browser.

const bundle = await build({
  entryPoints: [join(REPO_ROOT, 'tests/e2e/fixtures/browser/page.ts')],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  write: false,
  logLevel: 'error',
});
const pageScript = bundle.outputFiles[0]?.text ?? '';
const HTML =
  '<!doctype html><html><head><meta charset="utf-8"><title>loading</title></head><body><script type="module" src="/page.js"></script></body></html>';

const staticServer: Server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?', 1)[0];
  if (path === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(HTML);
  else if (path === '/page.js') res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(pageScript);
  else res.writeHead(404).end();
});
await new Promise<void>((resolve) => staticServer.listen(0, '127.0.0.1', resolve));
const PAGE_ORIGIN = `http://127.0.0.1:${(staticServer.address() as AddressInfo).port}`;
afterAll(() => new Promise<void>((resolve) => staticServer.close(() => resolve())));

// -------------------------------------------------------------------------------------------------
// The API: the real HTTP host, allowing the page's origin, with a clock the test moves.

const db = await useTestDatabase();
const clock = movableClock();
const deps = db.deps({
  config: { CORS_ORIGINS: PAGE_ORIGIN, ACCESS_TOKEN_TTL_SECONDS: String(TTL_SECONDS) },
  now: clock.now,
});
const api = await startTestServer(deps);
/** Past the access token's lifetime and the server's 30 s clock tolerance. */
const expireAccessTokens = () => {
  clock.advance(TTL_SECONDS + 31);
};

let browser: Promise<Browser> | undefined;
let context: BrowserContext | undefined;

/** Started by the first test; a missing Chromium fails each test with how to install it (never a skip). */
function launchBrowser(): Promise<Browser> {
  browser ??= launchChromium(BROWSER_TIMEOUT_MS);
  return browser;
}
afterAll(async () => {
  await (await browser?.catch(() => undefined))?.close();
});
afterEach(async () => {
  await context?.close();
  context = undefined;
});

/** A fresh browser profile (no cookies) with the page loaded and ready. */
async function openPage(): Promise<Page> {
  context = await (await launchBrowser()).newContext();
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await loadPage(page);
  expect(errors).toEqual([]);
  return page;
}

async function loadPage(page: Page): Promise<void> {
  await page.goto(`${PAGE_ORIGIN}/?api=${encodeURIComponent(api.url)}`);
  await page.waitForFunction(() => document.title === 'keel sdk ready');
}

let counter = 0;
const newEmail = () => `browser-${++counter}-${Date.now()}@example.test`;
const PASSWORD = 'a sturdy passphrase';
const refreshUrl = `${api.url}/trpc/auth.refresh`;

describe('the SDK in headless Chromium, cookie mode', () => {
  it(
    'registers, signs in, calls procedures, and survives an access-token expiry through the refresh cookie',
    async () => {
      const page = await openPage();
      const email = newEmail();

      const registered = await page.evaluate(([e, p]) => window.keelPage.register(e, p), [email, PASSWORD] as const);
      expect(registered).toMatchObject({ hasRefreshToken: false, createdAtIsDate: true });
      const loggedIn = await page.evaluate(([e, p]) => window.keelPage.login(e, p), [email, PASSWORD] as const);
      expect(loggedIn).toEqual({ userId: registered.userId, hasRefreshToken: false });

      await page.evaluate(() => window.keelPage.createProject('Made in Chromium'));
      expect(await page.evaluate(() => window.keelPage.projectNames())).toEqual({ ok: true, email, names: ['Made in Chromium'] });

      // The refresh token is in an HttpOnly cookie: not in the client's storage, not in document.cookie.
      const signedIn = await page.evaluate(() => window.keelPage.state());
      expect(signedIn).toMatchObject({ hasAccessToken: true, refreshTokenVisible: false, cookies: '' });
      const [cookie] = (await context?.cookies(refreshUrl)) ?? [];
      expect(cookie).toMatchObject({ name: 'keel_refresh', httpOnly: true, sameSite: 'Strict', path: '/trpc/auth.refresh', secure: false });

      expireAccessTokens();
      expect(await page.evaluate(() => window.keelPage.projectNames())).toEqual({ ok: true, email, names: ['Made in Chromium'] });
      const after = await page.evaluate(() => window.keelPage.state());
      const newRequests = after.requests.slice(signedIn.requests.length);
      // The batch failed (UNAUTHORIZED), one unbatched refresh through the cookie, the batch again.
      expect(newRequests.filter((url) => url === refreshUrl)).toHaveLength(1);
      expect(newRequests.filter((url) => url.includes('auth.me'))).toHaveLength(2);
      expect(after.sessionsExpired).toBe(0);
      const [rotated] = (await context?.cookies(refreshUrl)) ?? [];
      expect(rotated?.value).not.toBe(cookie?.value);
    },
    BROWSER_TIMEOUT_MS,
  );

  it(
    'a reloaded page picks up the session from the cookie; after logout the session is over',
    async () => {
      const page = await openPage();
      const email = newEmail();
      await page.evaluate(([e, p]) => window.keelPage.register(e, p), [email, PASSWORD] as const);

      // A reload forgets the access token (memory storage); the cookie brings the session back.
      await loadPage(page);
      expect(await page.evaluate(() => window.keelPage.state())).toMatchObject({ hasAccessToken: false });
      expect(await page.evaluate(() => window.keelPage.refresh())).toBe(true);
      expect(await page.evaluate(() => window.keelPage.projectNames())).toMatchObject({ ok: true, email });

      await page.evaluate(() => window.keelPage.logout());
      expect(await context?.cookies(refreshUrl)).toEqual([]);
      const signedOut = await page.evaluate(() => window.keelPage.state());
      expect(await page.evaluate(() => window.keelPage.projectNames())).toMatchObject({ ok: false, code: 'UNAUTHORIZED' });
      // Signed out on purpose: no refresh attempt, and not a session that "expired".
      const after = await page.evaluate(() => window.keelPage.state());
      expect(after.requests.slice(signedOut.requests.length).filter((url) => url === refreshUrl)).toEqual([]);
      expect(after).toMatchObject({ hasAccessToken: false, sessionsExpired: 0 });
    },
    BROWSER_TIMEOUT_MS,
  );
});
