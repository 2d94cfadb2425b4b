/**
 * GET /docs: Swagger UI served by Keel from its npm package (nothing from a CDN), under a
 * Content-Security-Policy made for that page alone.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/database.js';
import { startTestServer } from '../support/http.js';

const db = await useTestDatabase();
const server = await startTestServer(db.deps());
const dist = dirname(createRequire(new URL('../../server/package.json', import.meta.url)).resolve('swagger-ui-dist/package.json'));

const csp = (response: Response) =>
  Object.fromEntries(
    (response.headers.get('content-security-policy') ?? '')
      .split(';')
      .map((directive) => directive.trim().split(/\s+/))
      .map(([name = '', ...values]) => [name, values]),
  );

describe('GET /docs', () => {
  it('serves a page that loads only its own scripts and styles, from Keel', async () => {
    const response = await fetch(`${server.url}/docs`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await response.text();
    const urls = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map(([, url]) => url);
    expect(urls.length).toBeGreaterThan(0);
    for (const url of urls) expect(url).toMatch(/^\/docs\//);
    expect(html).not.toMatch(/<script>|<script [^>]*>[^<\s]/);
    expect(html).toContain('data-spec-url="/openapi.json"');
  });

  it('serves the Swagger UI files of the installed swagger-ui-dist, and the page script', async () => {
    for (const [file, type] of [
      ['swagger-ui-bundle.js', 'text/javascript'],
      ['swagger-ui.css', 'text/css'],
      ['favicon-32x32.png', 'image/png'],
    ] as const) {
      const response = await fetch(`${server.url}/docs/${file}`);
      expect(response.status, file).toBe(200);
      expect(response.headers.get('content-type'), file).toMatch(new RegExp(`^${type}`));
      expect(Buffer.from(await response.arrayBuffer()).equals(readFileSync(join(dist, file))), file).toBe(true);
    }
    const init = await fetch(`${server.url}/docs/init.js`);
    expect(await init.text()).toContain('SwaggerUIBundle({');
    expect((await fetch(`${server.url}/docs/swagger-ui-bundle.js.map`)).status).toBe(404);
    expect((await fetch(`${server.url}/docs/index.js`)).status).toBe(404);
  });

  it('allows on /docs only what Swagger UI needs: own scripts, inline styles, data: images, same-origin requests', async () => {
    const policy = csp(await fetch(`${server.url}/docs`));
    expect(policy).toEqual({
      'default-src': ["'none'"],
      'script-src': ["'self'"],
      'style-src': ["'self'", "'unsafe-inline'"],
      'img-src': ["'self'", 'data:'],
      'font-src': ["'self'"],
      'connect-src': ["'self'"],
      'base-uri': ["'none'"],
      'form-action': ["'none'"],
      'frame-ancestors': ["'none'"],
      'object-src': ["'none'"],
    });
  });

  it("leaves the host's policy (load nothing, be framed by nobody) on every other route", async () => {
    const docs = csp(await fetch(`${server.url}/docs`));
    for (const path of ['/healthz', '/openapi.json', '/api/health', '/trpc/system.health']) {
      const policy = csp(await fetch(`${server.url}${path}`));
      expect(policy, path).not.toEqual(docs);
      expect(policy['default-src'], path).toEqual(["'none'"]);
      expect(policy['frame-ancestors'], path).toEqual(["'none'"]);
      expect(policy['script-src'], path).toBeUndefined();
    }
  });

  it('redirects /docs/ to /docs', async () => {
    const response = await fetch(`${server.url}/docs/`, { redirect: 'manual' });
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('/docs');
  });
});
