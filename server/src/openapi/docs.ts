/**
 * GET /docs: Swagger UI, from the swagger-ui-dist package and served by Keel itself (no CDN, so it
 * works offline). The page runs no inline script, so its Content-Security-Policy needs no nonce:
 * only inline styles (Swagger UI's React components set style attributes) and data: images (its
 * icons) beyond 'self'. That policy applies to these routes only; the rest of the host allows nothing.
 */
import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyReply } from 'fastify';
import { cspOf } from '../http/security-headers.js';
import type { Host } from './rest.js';

export const DOCS_PATH = '/docs';

const DIST = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/** The package files the page loads: an allowlist, so no request can name another file. */
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
  'favicon-16x16.png': 'image/png',
};

export const DOCS_CSP = cspOf({
  'default-src': ["'none'"],
  'script-src': ["'self'"],
  'style-src': ["'self'", "'unsafe-inline'"],
  'img-src': ["'self'", 'data:'],
  'font-src': ["'self'"],
  // The document and "Try it out" requests: same origin only.
  'connect-src': ["'self'"],
  'base-uri': ["'none'"],
  'form-action': ["'none'"],
  'frame-ancestors': ["'none'"],
  'object-src': ["'none'"],
});

const page = (specUrl: string) => `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Keel API</title>
    <link rel="stylesheet" href="${DOCS_PATH}/swagger-ui.css">
    <link rel="icon" type="image/png" sizes="32x32" href="${DOCS_PATH}/favicon-32x32.png">
    <link rel="icon" type="image/png" sizes="16x16" href="${DOCS_PATH}/favicon-16x16.png">
  </head>
  <body data-spec-url="${specUrl}">
    <div id="swagger-ui"></div>
    <script src="${DOCS_PATH}/swagger-ui-bundle.js"></script>
    <script src="${DOCS_PATH}/init.js"></script>
  </body>
</html>
`;

// "Authorize" takes the bearer token (the document's security scheme); it stays in memory only.
const INIT_SCRIPT = `window.ui = SwaggerUIBundle({
  url: document.body.dataset.specUrl,
  dom_id: '#swagger-ui',
  deepLinking: true,
  displayRequestDuration: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
});
`;

export function registerDocs(app: Host, specUrl: string): void {
  const html = page(specUrl);
  // The page's own policy replaces the host's (which allows nothing) on these routes.
  const onRequest = (_req: unknown, reply: FastifyReply, done: () => void) => {
    reply.header('content-security-policy', DOCS_CSP);
    done();
  };
  app.get(DOCS_PATH, { onRequest }, async (_req, reply) =>
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(html),
  );
  app.get(`${DOCS_PATH}/`, { onRequest }, async (_req, reply) => reply.redirect(DOCS_PATH));
  app.get(`${DOCS_PATH}/init.js`, { onRequest }, async (_req, reply) =>
    reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(INIT_SCRIPT),
  );
  for (const [file, type] of Object.entries(ASSETS)) {
    app.get(`${DOCS_PATH}/${file}`, { onRequest }, async (_req, reply) =>
      reply
        .type(type)
        .header('cache-control', 'public, max-age=3600')
        .send(createReadStream(join(DIST, file))),
    );
  }
}
