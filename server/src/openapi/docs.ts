/**
 * GET /docs: Swagger UI, from the swagger-ui-dist package and served by Keel itself (no CDN, so it
 * works offline). The page runs no inline script, so its Content-Security-Policy needs no nonce:
 * only inline styles (Swagger UI's React components set style attributes) and data: images (its
 * icons) beyond 'self'. That policy applies to these routes only; the rest of the host keeps helmet's.
 */
import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
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

export const DOCS_CSP = {
  useDefaults: false,
  directives: {
    defaultSrc: ["'none'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'", "'unsafe-inline'"],
    imgSrc: ["'self'", 'data:'],
    fontSrc: ["'self'"],
    // The document and "Try it out" requests: same origin only.
    connectSrc: ["'self'"],
    baseUri: ["'none'"],
    formAction: ["'none'"],
    frameAncestors: ["'none'"],
    objectSrc: ["'none'"],
  },
};

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
  const helmet = { contentSecurityPolicy: DOCS_CSP };
  const html = page(specUrl);
  app.get(DOCS_PATH, { helmet }, async (_req, reply) =>
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(html),
  );
  app.get(`${DOCS_PATH}/`, { helmet }, async (_req, reply) => reply.redirect(DOCS_PATH));
  app.get(`${DOCS_PATH}/init.js`, { helmet }, async (_req, reply) =>
    reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(INIT_SCRIPT),
  );
  for (const [file, type] of Object.entries(ASSETS)) {
    app.get(`${DOCS_PATH}/${file}`, { helmet }, async (_req, reply) =>
      reply
        .type(type)
        .header('cache-control', 'public, max-age=3600')
        .send(createReadStream(join(DIST, file))),
    );
  }
}
