/**
 * The REST surface of the procedures: routes under /api, their OpenAPI document at /openapi.json
 * and Swagger UI at /docs. One call from the HTTP host: `await registerOpenApi(app, deps, router)`.
 */
import type { AnyRouter } from '@trpc/server';
import type { AppDeps } from '../deps.js';
import { registerDocs } from './docs.js';
import { openApiDocument, REST_PREFIX } from './document.js';
import { type Host, registerRestRoutes } from './rest.js';

export const OPENAPI_PATH = '/openapi.json';

export async function registerOpenApi(app: Host, deps: AppDeps, router: AnyRouter): Promise<void> {
  // Built before any route: a bad `meta.openapi` fails the start, not a request.
  const document = servedDocument(openApiDocument(router), deps.config.publicUrl);
  await app.register(async (api) => registerRestRoutes(api, deps, router), { prefix: REST_PREFIX });
  app.get(OPENAPI_PATH, async (_req, reply) => reply.header('cache-control', 'no-cache').send(document));
  registerDocs(app, OPENAPI_PATH);
}

/**
 * The document as this server serves it: with PUBLIC_URL set, `servers` names the absolute REST
 * base (`https://api.example.com/api`), so clients generated from the served document and Swagger
 * UI behind a proxy call the right host; without it, the relative `/api` of the committed artifact.
 */
export function servedDocument<T extends { servers?: { url: string }[] }>(document: T, publicUrl: string | undefined): T {
  if (!publicUrl) return document;
  return { ...document, servers: [{ url: `${publicUrl.replace(/\/+$/, '')}${REST_PREFIX}`, description: 'PUBLIC_URL' }] };
}
