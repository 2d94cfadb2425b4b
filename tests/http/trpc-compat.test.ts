/**
 * Keel's tRPC route (server/src/http/trpc-route.ts) against tRPC's own Fastify adapter
 * (TRPC_ADAPTER=standard): the same corpus of requests, raw and through every link of
 * `@trpc/client` 11, must get the same status, the same body byte for byte and the same headers,
 * on two servers over one database. Values that are random by nature (ids, times, tokens) are
 * replaced by placeholders before comparing; each server gets its own, identically made fixtures.
 *
 * The differences that are fixes (the route's header comment lists them) are named per case.
 */
import { createTRPCClient, httpBatchLink, httpBatchStreamLink, httpLink, type TRPCClientError, type TRPCLink } from '@trpc/client';
import superjson from 'superjson';
import { describe, expect, it } from 'vitest';
import type { AppRouter } from '../../server/src/router.js';
import { signIn } from '../support/caller.js';
import { useTestDatabase } from '../support/database.js';
import { createUser } from '../support/factories.js';
import { startTestServer } from '../support/http.js';
import { productionEnv } from './fixtures.js';

const ORIGIN = 'https://app.example.com';
const db = await useTestDatabase();
const config = { ...productionEnv(), CORS_ORIGINS: ORIGIN, RATE_LIMIT_ENABLED: 'false' };
const servers = {
  keel: await startTestServer(db.deps({ config: { ...config, TRPC_ADAPTER: 'keel' } })),
  standard: await startTestServer(db.deps({ config: { ...config, TRPC_ADAPTER: 'standard' } })),
};
const deps = db.deps();

/** What each server's corpus runs with: the same kind of users and rows, made the same way. */
interface Fixture {
  user: string;
  admin: string;
  project: string;
  othersProject: string;
}

async function fixture(): Promise<Fixture> {
  const user = await createUser(deps);
  const admin = await createUser(deps, { role: 'ADMIN' });
  const other = await createUser(deps);
  const project = await deps.database.prisma.project.create({ data: { ownerId: user.id, name: 'Mine' }, select: { id: true } });
  const othersProject = await deps.database.prisma.project.create({ data: { ownerId: other.id, name: 'Theirs' }, select: { id: true } });
  return {
    user: `Bearer ${(await signIn(deps, user)).accessToken}`,
    admin: `Bearer ${(await signIn(deps, admin)).accessToken}`,
    project: project.id,
    othersProject: othersProject.id,
  };
}
const fixtures = { keel: await fixture(), standard: await fixture() };

/** Placeholders for what is random by nature; everything else must match byte for byte. */
function normalize(text: string): string {
  return text
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uuid>')
    .replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/g, '<time>')
    .replace(/eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g, '<jwt>')
    .replace(/"uptimeSeconds":\d+/g, '"uptimeSeconds":<n>')
    .replace(/"(nextCursor|refreshToken)":"[A-Za-z0-9_-]+"/g, '"$1":"<opaque>"');
}

interface Exchange {
  status: number;
  body: string;
  headers: Record<string, string>;
}

/** Headers that say how bytes travel, not what the answer is. */
const TRANSPORT_HEADERS = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding', 'content-length']);

async function exchange(url: string, init: RequestInit): Promise<Exchange> {
  const response = await fetch(url, init);
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    if (!TRANSPORT_HEADERS.has(name)) headers[name] = normalize(value);
  });
  return { status: response.status, body: normalize(await response.text()), headers };
}

type Difference = 'content-type';

interface Case {
  name: string;
  method?: string;
  /** Path and query under /trpc/. */
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** Where Keel's answer deliberately differs from tRPC's (a fix). */
  differs?: Difference[];
}

const input = (value: unknown) => encodeURIComponent(JSON.stringify(superjson.serialize(value)));
const batch = (...values: unknown[]) =>
  encodeURIComponent(JSON.stringify(Object.fromEntries(values.map((v, i) => [i, superjson.serialize(v)]))));
const body = (value: unknown) => JSON.stringify(superjson.serialize(value));
const json = { 'content-type': 'application/json' };

/** tRPC's early errors (before any call) carried no content type, so fetch saw text/plain. */
const EARLY_ERROR: Difference[] = ['content-type'];

function corpus(f: Fixture): Case[] {
  const user = { authorization: f.user };
  const admin = { authorization: f.admin };
  return [
    { name: 'a public query', path: 'system.health' },
    { name: 'an authenticated list', path: `projects.list?input=${input({ limit: 5 })}`, headers: user },
    { name: 'a list without input (defaults)', path: 'projects.list', headers: user },
    { name: 'a query without a token: 401 with WWW-Authenticate', path: 'projects.list', headers: {} },
    { name: 'a query with a bad token', path: 'projects.list', headers: { authorization: 'Bearer nope' } },
    { name: "another user's row: 404", path: `projects.byId?input=${input({ id: f.othersProject })}`, headers: user },
    { name: 'invalid input: 400 with field errors', path: `projects.byId?input=${input({ id: 'not-a-uuid', extra: 1 })}`, headers: user },
    { name: 'an invalid cursor: a domain BAD_REQUEST', path: `projects.list?input=${input({ cursor: 'garbage' })}`, headers: user },
    { name: 'a role the caller lacks: 403', path: 'users.list', headers: user },
    { name: 'an admin list', path: `users.list?input=${input({ limit: 2 })}`, headers: admin },
    { name: 'an unknown procedure: 404', path: 'nope.nothing' },
    { name: 'a malformed ?input=', path: 'projects.list?input=%7Bnope', headers: user },
    { name: 'a query over POST: 405 with Allow', method: 'POST', path: 'projects.list', headers: { ...user, ...json }, body: body({}) },
    { name: 'a mutation over GET: 405 with Allow', path: 'projects.create', headers: user },
    { name: 'a mutation', method: 'POST', path: 'projects.create', headers: { ...user, ...json }, body: body({ name: 'Created' }) },
    {
      name: 'a conflicting mutation: 409',
      method: 'POST',
      path: 'projects.create',
      headers: { ...user, ...json },
      body: body({ name: 'Mine' }),
    },
    {
      name: 'a stale version: 409 with a field error',
      method: 'POST',
      path: 'projects.update',
      headers: { ...user, ...json },
      body: body({ id: f.project, version: 7, name: 'x' }),
    },
    { name: 'a malformed body', method: 'POST', path: 'projects.create', headers: { ...user, ...json }, body: '{nope' },
    { name: 'an empty body on a mutation with input', method: 'POST', path: 'projects.create', headers: { ...user, ...json }, body: '' },
    {
      name: 'a batch, every call answered',
      path: `projects.list,system.health?batch=1&input=${batch({ limit: 1 }, undefined)}`,
      headers: user,
    },
    {
      name: 'a batch with mixed outcomes: 207',
      path: `projects.list,projects.byId,nope?batch=1&input=${batch({ limit: 1 }, { id: f.othersProject }, undefined)}`,
      headers: user,
    },
    {
      name: 'a batch of mutations with one conflict: 207',
      method: 'POST',
      path: 'projects.create,projects.create?batch=1',
      headers: { ...user, ...json },
      body: JSON.stringify({ 0: superjson.serialize({ name: 'Batched' }), 1: superjson.serialize({ name: 'Mine' }) }),
    },
    {
      name: 'a batch mixing queries and mutations',
      path: `projects.list,projects.create?batch=1&input=${batch({}, {})}`,
      headers: user,
      differs: EARLY_ERROR,
    },
    {
      name: 'a batch over the limit',
      path: `${Array.from({ length: 51 }, () => 'system.health').join(',')}?batch=1`,
      differs: EARLY_ERROR,
    },
    {
      name: 'a batch whose input is not an object',
      path: `system.health,projects.list?batch=1&input=${encodeURIComponent('[1]')}`,
      headers: user,
    },
    { name: 'a batch of one', path: `projects.list?batch=1&input=${batch({ limit: 1 })}`, headers: user },
    {
      name: 'a streaming request that is not a batch',
      path: 'system.health',
      headers: { 'trpc-accept': 'application/jsonl' },
      differs: EARLY_ERROR,
    },
    {
      name: 'a text/plain body: 415',
      method: 'POST',
      path: 'projects.create',
      headers: { ...user, 'content-type': 'text/plain' },
      body: 'x',
      differs: EARLY_ERROR,
    },
    { name: 'no content type on a POST: 415', method: 'POST', path: 'auth.logout', headers: user, differs: EARLY_ERROR },
    {
      name: 'PUT with JSON: 405 per call',
      method: 'PUT',
      path: 'projects.create',
      headers: { ...user, ...json },
      body: body({ name: 'x' }),
    },
    { name: 'HEAD: 204', method: 'HEAD', path: 'system.health' },
    { name: 'a percent-encoded path', path: 'system%2Ehealth' },
    {
      name: 'a percent-encoded procedure path that is not UTF-8 after the router decoded it',
      path: 'system.health%25E0%25A4%25A',
      differs: EARLY_ERROR,
    },
    {
      name: 'superjson meta naming an unknown class',
      method: 'POST',
      path: 'auth.login',
      headers: json,
      body: '{"json":{"email":"a@b.c","password":"x"},"meta":{"values":{"email":["class","Nope"]}}}',
    },
    {
      name: 'an input nested too deeply',
      method: 'POST',
      path: 'auth.login',
      headers: json,
      body: `{"json":{"email":${'['.repeat(40)}${']'.repeat(40)}}}`,
    },
    { name: 'an allowed browser origin', path: 'system.health', headers: { origin: ORIGIN } },
    { name: 'a foreign browser origin', path: 'system.health', headers: { origin: 'https://evil.example' } },
    {
      name: 'a cookie-mode refresh without a cookie',
      method: 'POST',
      path: 'auth.refresh',
      headers: { ...json, origin: ORIGIN, 'x-keel-auth': 'cookie' },
      body: body(undefined),
    },
  ];
}

/** The same requests on both servers, each with its own fixtures and the same request ids. */
async function both(make: (f: Fixture) => Case[]) {
  const keel = make(fixtures.keel);
  const standard = make(fixtures.standard);
  return keel.map((c, i) => ({ keel: c, standard: standard[i] as Case }));
}

let requestCounter = 0;
async function send(server: keyof typeof servers, c: Case, requestId: string): Promise<Exchange> {
  return exchange(`${servers[server].url}/trpc/${c.path}`, {
    method: c.method ?? 'GET',
    headers: { ...c.headers, 'x-request-id': requestId },
    ...(c.body === undefined ? {} : { body: c.body }),
  });
}

/**
 * Headers compared, less those that deliberately differ, checked on their own: `Vary` (tRPC's
 * adapter replaced the CORS plugin's `Vary: Origin` with its own) and the content type (Keel
 * names the charset, as Fastify does for all its JSON; tRPC's early errors said text/plain).
 */
function comparable(headers: Record<string, string>): Record<string, string> {
  const { vary: _vary, 'content-type': _type, ...rest } = headers;
  return rest;
}

describe("Keel's tRPC route and tRPC's Fastify adapter", () => {
  it('answer the raw corpus alike: status, body bytes and headers', async () => {
    for (const pair of await both(corpus)) {
      requestCounter += 1;
      const requestId = `compat-request-${requestCounter}`;
      const keel = await send('keel', pair.keel, requestId);
      const standard = await send('standard', pair.standard, requestId);
      const name = pair.keel.name;
      expect(keel.status, name).toBe(standard.status);
      expect(keel.body, name).toBe(standard.body);
      expect(comparable(keel.headers), name).toEqual(comparable(standard.headers));
      if (keel.body !== '') {
        expect(keel.headers['content-type'], name).toBe('application/json; charset=utf-8');
        if (!pair.keel.differs?.includes('content-type')) expect(standard.headers['content-type'], name).toBe('application/json');
      }
      const tokens = (value = '') => value.split(',').map((t) => t.trim().toLowerCase());
      if (keel.status !== 204) expect(tokens(keel.headers.vary), name).toEqual(['origin', ...tokens(standard.headers.vary)]);
    }
  });

  it('answer every link of @trpc/client 11 alike, GET and POST, single and batched, successes and errors', async () => {
    type Recorded = { url: string; status: number; body: string; headers: Record<string, string> }[];
    const clientFor = (server: keyof typeof servers, link: 'httpLink' | 'httpBatchLink' | 'httpBatchStreamLink', log: Recorded) => {
      const options = {
        url: `${servers[server].url}/trpc`,
        transformer: superjson,
        headers: () => ({ authorization: fixtures[server].user, 'x-request-id': 'compat-link-request' }),
        fetch: async (url: URL | RequestInfo, init?: RequestInit) => {
          const response = await fetch(url, init);
          const text = await response.text();
          const headers: Record<string, string> = {};
          response.headers.forEach((value, name) => {
            if (!TRANSPORT_HEADERS.has(name)) headers[name] = normalize(value);
          });
          log.push({
            url: normalize(String(url).replace(servers[server].url, '')),
            status: response.status,
            body: normalize(text),
            headers,
          });
          return new Response(text, { status: response.status, headers: response.headers });
        },
      };
      const links: Record<typeof link, TRPCLink<AppRouter>> = {
        httpLink: httpLink(options),
        httpBatchLink: httpBatchLink(options),
        httpBatchStreamLink: httpBatchStreamLink(options),
      };
      return createTRPCClient<AppRouter>({ links: [links[link]] });
    };
    const outcome = (promise: Promise<unknown>) =>
      promise.then(
        (value) => ({ ok: normalize(JSON.stringify(superjson.serialize(value))) }),
        (error: TRPCClientError<AppRouter>) => ({ error: error.message, code: error.data?.code, status: error.data?.httpStatus }),
      );
    for (const link of ['httpLink', 'httpBatchLink', 'httpBatchStreamLink'] as const) {
      const results: Record<string, { outcomes: unknown[]; log: Recorded }> = {};
      for (const server of ['keel', 'standard'] as const) {
        const log: Recorded = [];
        const client = clientFor(server, link, log);
        const f = fixtures[server];
        const outcomes = [
          await outcome(client.system.health.query()),
          await outcome(client.projects.byId.query({ id: f.project })),
          await outcome(client.projects.byId.query({ id: f.othersProject })),
          await outcome(client.projects.create.mutate({ name: `Linked ${link}` })),
          await outcome(client.projects.create.mutate({ name: `Linked ${link}` })),
          // Concurrent calls: one request for the batching links, with mixed outcomes.
          ...(await Promise.all([
            outcome(client.projects.list.query({ limit: 2 })),
            outcome(client.projects.byId.query({ id: 'not-a-uuid' })),
            outcome(client.users.list.query({})),
          ])),
        ];
        results[server] = { outcomes, log };
      }
      expect(results.keel?.outcomes, link).toEqual(results.standard?.outcomes);
      expect(
        results.keel?.log.map((r) => ({ ...r, headers: comparable(r.headers) })),
        link,
      ).toEqual(results.standard?.log.map((r) => ({ ...r, headers: comparable(r.headers) })));
    }
  });
});
