/**
 * The OpenAPI document: valid OpenAPI 3.1 (checked by a maintained parser, offline), identical to
 * the committed snapshot, with the generated client types up to date, and complete: every
 * procedure is on the REST surface, protected exactly when its middleware demands a token.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { compileErrors, validate } from '@readme/openapi-parser';
import type { AnyRouter } from '@trpc/server';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DOCUMENT_SNAPSHOT_FILE, renderDocument, renderTypes, TYPES_FILE } from '../../server/src/openapi/artifacts.js';
import { openApiDocument, REQUEST_EXAMPLES, restErrorSchema, restProcedures } from '../../server/src/openapi/document.js';
import { restMeta } from '../../server/src/openapi/meta.js';
import { appRouter } from '../../server/src/router.js';
import { publicProcedure, router } from '../../server/src/trpc/init.js';

const STALE = 'is out of date: run `pnpm openapi:generate` and review the diff';

type Operation = {
  security?: Record<string, string[]>[];
  requestBody?: { content: Record<string, { example?: unknown }> };
  responses: Record<string, unknown>;
};

/** The operations of the REST surface under /api (the token endpoint, at the root, is checked on its own). */
function operations(document: ReturnType<typeof openApiDocument>): [string, Operation][] {
  return Object.entries(document.paths ?? {})
    .filter(([path]) => path !== '/oauth/token')
    .flatMap(([path, item]) =>
      Object.entries(item as Record<string, Operation>).map(
        ([method, operation]) => [`${method.toUpperCase()} ${path}`, operation] as [string, Operation],
      ),
    );
}

/** Every query and mutation; subscriptions are SSE streams with no REST twin (docs/decisions/0022-live-updates.md). */
const procedures = (router: AnyRouter) =>
  Object.entries(router._def.procedures as Record<string, { _def: { type: string } }>)
    .filter(([, procedure]) => procedure._def.type !== 'subscription')
    .map(([path]) => path);

describe('the OpenAPI document', () => {
  const document = openApiDocument(appRouter);

  it('is a valid OpenAPI 3.1 document', async () => {
    const result = await validate(JSON.parse(renderDocument()), { resolve: { external: false } });
    expect(result.valid, result.valid ? '' : compileErrors(result)).toBe(true);
    expect(result.warnings).toEqual([]);
    expect(document.openapi).toBe('3.1.0');
  });

  it('matches the committed snapshot', () => {
    expect(readFileSync(DOCUMENT_SNAPSHOT_FILE, 'utf8'), `${DOCUMENT_SNAPSHOT_FILE} ${STALE}`).toBe(renderDocument());
  });

  it('matches the committed client types generated from it', async () => {
    expect(readFileSync(TYPES_FILE, 'utf8'), `${TYPES_FILE} ${STALE}`).toBe(await renderTypes(renderDocument()));
  });

  it('puts every procedure of the app router on the REST surface', () => {
    const documented = restProcedures(appRouter).map((procedure) => procedure.path);
    const missing = procedures(appRouter).filter((path) => !documented.includes(path));
    expect(
      missing,
      `${missing.join(', ')} not on the REST surface. Give each procedure a REST route in its router: ` +
        "`.meta(rest('GET', '/widgets/{id}', 'One widget'))` before `.input()`, with `const rest = restMeta('widgets')` " +
        '(server/src/openapi/meta.ts; path parameters name input fields; `{ public: true }` for procedures callable without a token). ' +
        'Then run `pnpm openapi:generate` and commit the updated snapshot and types.',
    ).toEqual([]);
    expect(documented.sort()).toEqual(procedures(appRouter).sort());
    expect(operations(document)).toHaveLength(documented.length);
  });

  it('declares bearer authentication, required by exactly the authenticated procedures', () => {
    expect(document.components?.securitySchemes).toEqual({
      bearerAuth: expect.objectContaining({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }),
      oauth2: expect.objectContaining({
        type: 'oauth2',
        flows: {
          clientCredentials: { tokenUrl: '/oauth/token', scopes: expect.objectContaining({ 'projects:read': expect.any(String) }) },
        },
      }),
    });
    const open = operations(document)
      .filter(([, operation]) => !operation.security)
      .map(([name]) => name)
      .sort();
    expect(open).toEqual(
      [
        'GET /health',
        'POST /auth/register',
        'POST /auth/login',
        'POST /auth/refresh',
        'POST /auth/password-reset/request',
        'POST /auth/password-reset/confirm',
        'POST /auth/email-verification/confirm',
        'POST /auth/two-factor/verify',
        'GET /auth/oidc/providers',
        'POST /auth/oidc/start',
        'POST /auth/oidc/finish',
      ].sort(),
    );
    const scopes = new Map(restProcedures(appRouter).map((p) => [`${p.openapi.method} ${p.openapi.path}`, p.scope]));
    for (const [name, operation] of operations(document)) {
      const scope = scopes.get(name);
      if (!operation.security) continue;
      // A service token is the alternative exactly where the procedure declares a scope.
      expect(operation.security, name).toEqual(scope ? [{ bearerAuth: [] }, { oauth2: [scope] }] : [{ bearerAuth: [] }]);
    }
    expect(scopes.get('GET /projects')).toBe('projects:read');
  });

  it('documents POST /oauth/token at the root with the RFC 6749 answers', () => {
    const item = document.paths?.['/oauth/token'] as {
      servers: { url: string }[];
      post: { responses: Record<string, unknown>; requestBody: { content: Record<string, unknown> } };
    };
    expect(item.servers).toEqual([{ url: '/' }]);
    expect(Object.keys(item.post.responses).sort()).toEqual(['200', '400', '401', '429']);
    expect(Object.keys(item.post.requestBody.content)).toEqual(['application/x-www-form-urlencoded']);
  });

  it('describes every error with the shared Error schema and an example that conforms to it', () => {
    const responses: Record<string, { content: { 'application/json': { schema: unknown; example: unknown } } }> = JSON.parse(
      renderDocument(),
    ).components.responses;
    expect(Object.keys(responses).sort()).toEqual(
      [
        'BadRequest',
        'Conflict',
        'Forbidden',
        'GatewayTimeout',
        'InternalServerError',
        'NotFound',
        'ServiceUnavailable',
        'TooManyRequests',
        'Unauthorized',
      ].sort(),
    );
    for (const response of Object.values(responses)) {
      expect(response.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' });
      expect(restErrorSchema.safeParse(response.content['application/json'].example).success).toBe(true);
    }
    for (const [name, operation] of operations(document)) {
      expect(Object.keys(operation.responses), name).toContain('500');
      for (const [status, response] of Object.entries(operation.responses)) {
        if (!status.startsWith('2'))
          expect(response, `${name} ${status}`).toEqual({ $ref: expect.stringMatching(/^#\/components\/responses\//) });
      }
    }
  });

  it('documents the library-free error body, not trpc-to-openapi own error schemas', () => {
    expect(Object.keys(document.components?.schemas ?? {})).toEqual(['Error']);
    expect(renderDocument()).not.toMatch(/"issues"/);
  });

  it('shows dates as ISO 8601 date-time strings', () => {
    const json = JSON.parse(renderDocument());
    const created = json.paths['/projects'].post.responses['201'].content['application/json'].schema.properties.createdAt;
    expect(created).toEqual({ type: 'string', format: 'date-time', examples: ['2026-01-15T09:30:00.000Z'] });
  });

  it('gives request examples that its own input schemas accept', async () => {
    const byPath = new Map(restProcedures(appRouter).map((procedure) => [procedure.path, procedure]));
    for (const [path, example] of Object.entries(REQUEST_EXAMPLES)) {
      const procedure = byPath.get(path);
      if (!procedure) throw new Error(`REQUEST_EXAMPLES names ${path}, which is not on the REST surface`);
      const params = Object.fromEntries([...procedure.openapi.path.matchAll(/\{(\w+)\}/g)].map(([, name]) => [name, randomUUID()]));
      const result = await z.safeParseAsync(procedure.inputParser, { ...example, ...params });
      expect(result.success, `${path}: ${JSON.stringify(result.error?.issues)}`).toBe(true);
    }
  });

  it('marks dates as date-time wherever they sit in a schema', () => {
    const nested = router({
      dates: publicProcedure
        .meta(restMeta('test')('GET', '/dates', 'Dates everywhere', { public: true }))
        .output(
          z.object({
            union: z.union([z.date(), z.number()]),
            record: z.record(z.string(), z.date()),
            tuple: z.tuple([z.date()], z.date()),
            lazy: z.lazy(() => z.date()),
            both: z.intersection(z.object({ at: z.date() }), z.object({ n: z.number() })),
            piped: z.date().pipe(z.date()),
            list: z.array(z.date().nullable().optional()).readonly(),
          }),
        )
        .query(() => {
          throw new Error('not called');
        }),
    });
    const text = JSON.stringify(openApiDocument(nested).paths);
    expect(text.match(/"format":"date-time"/g)).toHaveLength(8);
  });

  it('fails to build when a procedure declares an error status it has no response for', () => {
    const teapot = router({
      brew: publicProcedure
        .meta(restMeta('test')('POST', '/brew', 'Brews', { public: true, errors: [418] }))
        .output(z.object({ ok: z.boolean() }))
        .mutation(() => ({ ok: true })),
    });
    expect(() => openApiDocument(teapot)).toThrow(/brew declares status 418/);
  });
});
