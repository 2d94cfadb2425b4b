/**
 * Requests that no client library writes: each gets a clear, typed answer in Keel's words, never
 * a 500, a stack trace or a library's text, on the tRPC and the REST surface alike.
 */
import { request as httpRequest, STATUS_CODES } from 'node:http';
import { connect } from 'node:net';
import superjson from 'superjson';
import { describe, expect, it } from 'vitest';
import { signIn } from '../support/caller.js';
import { useTestDatabase } from '../support/database.js';
import { createUser } from '../support/factories.js';
import { startTestServer } from '../support/http.js';
import { withCapturedLogs } from '../support/log-capture.js';
import { decodeTrpcError, type SuperJsonEnvelope } from '../support/trpc-http.js';

const ORIGIN = 'https://app.example.com';
const db = await useTestDatabase();
const main = withCapturedLogs(db.deps({ config: { CORS_ORIGINS: ORIGIN, LOG_LEVEL: 'info' } }));
const server = await startTestServer(main.deps);
const user = await createUser(main.deps);
const { accessToken } = await signIn(main.deps, user);

interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request with headers exactly as given, repeated names included (fetch would merge them). */
function rawRequest(method: string, path: string, headers: [string, string][] = [], body?: string): Promise<RawAnswer> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      // Headers as a flat list keep repeated names; Node then adds neither Host nor Content-Length.
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers: [
          ['host', url.host],
          ...(body === undefined ? [] : [['content-length', String(Buffer.byteLength(body))]]),
          ...headers,
        ].flat() as unknown as Record<string, string>,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const trpcErrorOf = (body: string) => decodeTrpcError((JSON.parse(body) as { error: SuperJsonEnvelope }).error);

describe('hostile input', () => {
  it('answers TRACE (a method tRPC cannot parse) with 405 and Allow, not a 500 with a logged stack', async () => {
    const answer = await rawRequest('TRACE', '/trpc/system.health', [['x-request-id', 'hostile-trace-01']]);
    expect(answer.status).toBe(405);
    expect(answer.headers.allow).toBe('GET, POST');
    expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(trpcErrorOf(answer.body).data.code).toBe('METHOD_NOT_SUPPORTED');
    await main.logs.waitFor((l) => l.reqId === 'hostile-trace-01' && l.msg === 'request');
    expect(main.logs.lines().filter((l) => l.reqId === 'hostile-trace-01' && l.level === 'error')).toEqual([]);
  });

  it('refuses two Authorization headers with 400, over tRPC and REST, even when the first is valid', async () => {
    const twice: [string, string][] = [
      ['authorization', `Bearer ${accessToken}`],
      ['authorization', 'Bearer someone-else'],
    ];
    const trpc = await rawRequest('GET', '/trpc/auth.me', twice);
    expect(trpc.status).toBe(400);
    expect(trpcErrorOf(trpc.body)).toMatchObject({ message: 'Send one Authorization header, not several.', data: { code: 'BAD_REQUEST' } });
    const rest = await rawRequest('GET', '/api/auth/me', twice);
    expect(rest.status).toBe(400);
    expect(JSON.parse(rest.body)).toMatchObject({ code: 'BAD_REQUEST', message: 'Send one Authorization header, not several.' });
    // One header with the same token is fine.
    expect((await rawRequest('GET', '/trpc/auth.me', [twice[0] as [string, string]])).status).toBe(200);
  });

  it('accepts an access token only in canonical base64url: padding or spare bits in a last character are 401', async () => {
    const [header, payload, signature] = accessToken.split('.') as [string, string, string];
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    // The signature is 64 bytes: 86 characters, the last carrying 2 data bits and 4 spare ones.
    const last = signature.charAt(signature.length - 1);
    const spare = alphabet.charAt(alphabet.indexOf(last) | 1);
    const variants = [
      `${header}.${payload}.${signature}==`,
      `${header}.${payload}.${signature.slice(0, -1)}${spare}`,
      `${header}=.${payload}.${signature}`,
    ];
    for (const token of variants) {
      const answer = await rawRequest('GET', '/trpc/auth.me', [['authorization', `Bearer ${token}`]]);
      expect(answer.status, token.slice(-6)).toBe(401);
    }
    expect((await rawRequest('GET', '/trpc/auth.me', [['authorization', `Bearer ${accessToken}`]])).status).toBe(200);
  });

  it('answers superjson meta naming an unknown class in its own words, without the library text or its URL', async () => {
    const body = '{"json":{"email":"a@example.com","password":"x"},"meta":{"values":{"email":["class","Nope"]}}}';
    const answer = await rawRequest('POST', '/trpc/auth.login', [['content-type', 'application/json']], body);
    expect(answer.status).toBe(400);
    const error = trpcErrorOf(answer.body);
    expect(error.message).toBe('Malformed request: the input is not valid superjson (send it as @trpc/client with superjson does).');
    expect(answer.body).not.toMatch(/https?:|superjson\/issues|Maximum call stack/);
  });

  it('refuses an input nested more than 32 levels deep, over tRPC and REST, whatever the procedure', async () => {
    const deep = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
    const trpc = await rawRequest(
      'POST',
      '/trpc/auth.login',
      [['content-type', 'application/json']],
      `{"json":{"email":${deep(100_000)}}}`,
    );
    expect(trpc.status).toBe(400);
    expect(trpcErrorOf(trpc.body).message).toBe('Malformed request: the input is nested more than 32 levels deep.');
    const rest = await rawRequest('POST', '/api/auth/login', [['content-type', 'application/json']], `{"email":${deep(40)}}`);
    expect(rest.status).toBe(400);
    expect(JSON.parse(rest.body)).toMatchObject({
      code: 'BAD_REQUEST',
      message: 'Malformed request: the input is nested more than 32 levels deep.',
    });
    // 32 levels pass the bound (and fail validation as any wrong value does).
    const fine = await rawRequest('POST', '/trpc/auth.login', [['content-type', 'application/json']], `{"json":{"email":${deep(31)}}}`);
    expect(trpcErrorOf(fine.body).message).toBe('Invalid input.');
  });

  it('refuses a __proto__ key anywhere in an input with 400 saying so, over tRPC (body and query) and REST: it was dropped without a word', async () => {
    const json: [string, string][] = [
      ['authorization', `Bearer ${accessToken}`],
      ['content-type', 'application/json'],
    ];
    const refused = 'Malformed request: the input has a key named __proto__, which Keel refuses.';
    for (const body of [
      '{"json":{"name":"p","__proto__":{"ownerId":"x"}}}',
      '{"json":{"name":"p","description":null},"meta":{"__proto__":{}}}',
    ]) {
      const answer = await rawRequest('POST', '/trpc/projects.create', json, body);
      expect(answer.status, body).toBe(400);
      expect(trpcErrorOf(answer.body).message, body).toBe(refused);
    }
    const query = await rawRequest('GET', `/trpc/projects.list?input=${encodeURIComponent('{"json":{"__proto__":{"limit":1}}}')}`, json);
    expect(query.status).toBe(400);
    expect(trpcErrorOf(query.body).message).toBe(refused);
    const rest = await rawRequest('POST', '/api/projects', json, '{"name":"p","__proto__":{"ownerId":"x"}}');
    expect(rest.status).toBe(400);
    expect(JSON.parse(rest.body)).toMatchObject({ code: 'BAD_REQUEST', message: refused });
    // constructor.prototype is an ordinary own key after JSON.parse: an unknown key, as any other.
    const constructorKey = await rawRequest('POST', '/api/projects', json, '{"name":"p","constructor":{"prototype":{"a":1}}}');
    expect(constructorKey.status).toBe(400);
    expect(JSON.parse(constructorKey.body)).toMatchObject({ fieldErrors: { _: ['Unrecognized key: "constructor"'] } });
    // "__proto__" as a value, or "proto" as a key, is ordinary input.
    const named = await rawRequest('POST', '/trpc/projects.create', json, '{"json":{"name":"__proto__"}}');
    expect(named.status).toBe(200);
  });

  it('refuses a protocol query parameter sent twice (input, batch) with 400, subscriptions included: a proxy could read the other one', async () => {
    const auth: [string, string][] = [['authorization', `Bearer ${accessToken}`]];
    const input = encodeURIComponent(JSON.stringify(superjson.serialize({ limit: 1 })));
    const cases = [
      [`/trpc/projects.list?input=${input}&input=${input}`, 'input'],
      [`/trpc/projects.list?batch=1&batch=1&input=${encodeURIComponent('{}')}`, 'batch'],
      [`/trpc/projects.onChange?input=${input}&input=${input}`, 'input'],
    ] as const;
    for (const [path, name] of cases) {
      const answer = await rawRequest('GET', path, auth);
      expect(answer.status, path).toBe(400);
      expect(answer.headers['content-type'], path).toBe('application/json; charset=utf-8');
      expect(trpcErrorOf(answer.body).message, path).toBe(`Send the query parameter ${name} once, not several times.`);
    }
    expect((await rawRequest('GET', `/trpc/projects.list?input=${input}`, auth)).status).toBe(200);
  });

  it('answers every JSON error as application/json, the early ones (415, batch limits) included', async () => {
    const cases = [
      await rawRequest('POST', '/trpc/auth.login', [['content-type', 'text/plain']], '{"json":{}}'),
      await rawRequest('POST', '/trpc/auth.logout', []),
      await rawRequest('GET', `/trpc/${Array.from({ length: 51 }, () => 'system.health').join(',')}?batch=1`),
      await rawRequest('GET', '/trpc/system.health', [['trpc-accept', 'application/jsonl']]),
    ];
    expect(cases.map((c) => c.status)).toEqual([415, 415, 400, 400]);
    for (const answer of cases) expect(answer.headers['content-type'], answer.body).toBe('application/json; charset=utf-8');
  });

  it('keeps Vary: Origin on tRPC answers (beside the protocol own Vary), so caches never mix origins', async () => {
    for (const origin of [[], [['origin', ORIGIN]]] as [string, string][][]) {
      const answer = await rawRequest('GET', '/trpc/system.health', origin);
      expect(answer.headers.vary).toBe('Origin, trpc-accept, accept');
    }
  });

  it('answers a URL with a bad percent-encoding in Keel error shape with its headers, not echoing the URL', async () => {
    for (const path of ['/trpc/system.health%E0%A4%A', '/api/projects/%E0%A4%A', '/nope%zz']) {
      const answer = await rawRequest('GET', path, [['x-request-id', 'hostile-bad-url-1']]);
      expect(answer.status, path).toBe(400);
      expect(JSON.parse(answer.body), path).toEqual({
        code: 'BAD_REQUEST',
        message: 'The request URL is not valid (a malformed percent-encoding).',
        requestId: 'hostile-bad-url-1',
      });
      expect(answer.headers['x-request-id'], path).toBe('hostile-bad-url-1');
      expect(answer.headers['x-frame-options'], path).toBe('DENY');
    }
  });

  it('logs refused requests (401, 403, 429) with the client address, and others without it', async () => {
    await rawRequest('GET', '/trpc/auth.me', [['x-request-id', 'hostile-refused-1']]);
    await rawRequest('GET', '/trpc/system.health', [['x-request-id', 'hostile-accepted-1']]);
    const refused = await main.logs.waitFor((l) => l.reqId === 'hostile-refused-1' && l.msg === 'request');
    expect(refused).toMatchObject({ status: 401, ip: '127.0.0.1' });
    const accepted = await main.logs.waitFor((l) => l.reqId === 'hostile-accepted-1' && l.msg === 'request');
    expect(accepted.ip).toBeUndefined();
  });

  it('refuses a version past the column range with 400 naming the field, over tRPC and REST (it answered 500 from the database)', async () => {
    const auth: [string, string][] = [
      ['authorization', `Bearer ${accessToken}`],
      ['content-type', 'application/json'],
    ];
    const id = '00000000-0000-4000-8000-000000000000';
    for (const version of [2 ** 31, 99_999_999_999]) {
      const viaTrpc = await rawRequest(
        'POST',
        '/trpc/projects.update',
        auth,
        JSON.stringify(superjson.serialize({ id, version, name: 'x' })),
      );
      expect(viaTrpc.status).toBe(400);
      expect(trpcErrorOf(viaTrpc.body).data.fieldErrors).toEqual({ version: [expect.stringMatching(/2147483647/)] });
      const viaRest = await rawRequest('PATCH', `/api/projects/${id}`, auth, JSON.stringify({ version, name: 'x' }));
      expect(viaRest.status).toBe(400);
      expect(JSON.parse(viaRest.body)).toMatchObject({ code: 'BAD_REQUEST', fieldErrors: { version: [expect.any(String)] } });
      const task = await rawRequest('POST', '/trpc/tasks.update', auth, JSON.stringify(superjson.serialize({ id, version, title: 'x' })));
      expect(task.status).toBe(400);
      expect(trpcErrorOf(task.body).data.fieldErrors?.version).toBeDefined();
    }
  });

  it('refuses a lone surrogate in stored text and in a new password with 400 naming the field, over tRPC and REST (it was stored as U+FFFD)', async () => {
    const auth: [string, string][] = [
      ['authorization', `Bearer ${accessToken}`],
      ['content-type', 'application/json'],
    ];
    const json: [string, string][] = [['content-type', 'application/json']];
    const lone = 'a\ud800b';
    const surrogate = [expect.stringMatching(/lone surrogate/)];
    const viaTrpc = await rawRequest('POST', '/trpc/projects.create', auth, JSON.stringify(superjson.serialize({ name: lone })));
    expect(viaTrpc.status).toBe(400);
    expect(trpcErrorOf(viaTrpc.body).data.fieldErrors).toEqual({ name: surrogate });
    const viaRest = await rawRequest('POST', '/api/projects', auth, JSON.stringify({ name: 'ok', description: `x${lone}` }));
    expect(viaRest.status).toBe(400);
    expect(JSON.parse(viaRest.body)).toMatchObject({ code: 'BAD_REQUEST', fieldErrors: { description: surrogate } });
    const register = await rawRequest(
      'POST',
      '/trpc/auth.register',
      json,
      JSON.stringify(superjson.serialize({ email: 'surrogate@example.test', password: `correct horse battery ${lone}` })),
    );
    expect(register.status).toBe(400);
    expect(trpcErrorOf(register.body).data.fieldErrors).toEqual({ password: surrogate });
    // A surrogate pair is one character (an emoji): stored and answered exactly as sent.
    const emoji = 'rocket \u{1F680}';
    const created = await rawRequest('POST', '/trpc/projects.create', auth, JSON.stringify(superjson.serialize({ name: emoji })));
    expect(created.status).toBe(200);
    expect(
      superjson.deserialize<{ name: string }>((JSON.parse(created.body) as { result: { data: SuperJsonEnvelope } }).result.data).name,
    ).toBe(emoji);
  });

  it('answers a request the HTTP parser refuses (headers over the limit, a malformed header line) in Keel error shape, with its headers, then closes', async () => {
    const url = new URL(server.url);
    const exchange = (request: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(Number(url.port), url.hostname, () => socket.end(request));
        let answer = '';
        socket.setEncoding('utf8').on('data', (chunk: string) => {
          answer += chunk;
        });
        socket.on('close', () => resolve(answer)).on('error', reject);
      });
    const oversized = { request: `GET /trpc/system.health?input=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, status: 431 };
    const malformed = { request: 'GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n', status: 400 };
    // The oversized request three times: logged once, the repeats counted (as other refusals are).
    for (const { request, status } of [oversized, oversized, oversized, malformed]) {
      const answer = await exchange(request);
      const [head = '', body = ''] = answer.split('\r\n\r\n');
      expect(head.split('\r\n')[0]).toBe(`HTTP/1.1 ${status} ${STATUS_CODES[status]}`);
      expect(head).toMatch(/^content-type: application\/json; charset=utf-8$/m);
      expect(head).toMatch(/^x-content-type-options: nosniff$/m);
      expect(head).toMatch(/^connection: close$/m);
      expect(JSON.parse(body)).toEqual({ code: 'BAD_REQUEST', message: expect.any(String) });
      expect(body).not.toMatch(/statusCode|aaaa/);
    }
    const logged = main.logs
      .lines()
      .filter((line) => line.msg.startsWith('request refused by the HTTP parser') && line.repeated === undefined);
    expect(logged.map((line) => [line.status, line.parserError])).toEqual([
      [431, 'HPE_HEADER_OVERFLOW'],
      [400, 'HPE_INVALID_HEADER_TOKEN'],
    ]);
    expect(logged.every((line) => line.ip === '127.0.0.1')).toBe(true);
  });

  it('answers every OPTIONS with 204 on every route: CORS headers for an allowed origin only, never a 4xx or text/plain', async () => {
    for (const path of [
      '/trpc/projects.list',
      '/trpc/auth.login',
      '/api/projects',
      '/api/projects/00000000-0000-4000-8000-000000000000',
      '/healthz',
    ]) {
      const preflight: [string, string][] = [['access-control-request-method', 'POST']];
      const allowed = await rawRequest('OPTIONS', path, [['origin', ORIGIN], ...preflight]);
      expect({ path, status: allowed.status }).toEqual({ path, status: 204 });
      expect(allowed.headers['access-control-allow-origin'], path).toBe(ORIGIN);
      const refused = await rawRequest('OPTIONS', path, [['origin', 'https://evil.example'], ...preflight]);
      expect({ path, status: refused.status, body: refused.body }).toEqual({ path, status: 204, body: '' });
      expect(refused.headers['access-control-allow-origin'], path).toBeUndefined();
      const bare = await rawRequest('OPTIONS', path);
      expect({ path, status: bare.status, body: bare.body }).toEqual({ path, status: 204, body: '' });
      expect(bare.headers['x-request-id'], path).toBeDefined();
    }
  });

  it('answers a POST to a subscription with 405 and Allow: GET in JSON, not an event stream carrying the error', async () => {
    const answer = await rawRequest(
      'POST',
      '/trpc/projects.onChange',
      [
        ['authorization', `Bearer ${accessToken}`],
        ['content-type', 'application/json'],
      ],
      '{}',
    );
    expect(answer.status).toBe(405);
    expect(answer.headers.allow).toBe('GET');
    expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(trpcErrorOf(answer.body).data.code).toBe('METHOD_NOT_SUPPORTED');
  });

  it('answers a method a known path does not take with 405 and Allow on every route (REST, token, health), and an unknown path with 404', async () => {
    const cases: [string, string, string][] = [
      ['PUT', '/api/projects', 'GET, HEAD, POST'],
      ['TRACE', '/api/projects/00000000-0000-4000-8000-000000000000', 'DELETE, GET, HEAD, PATCH'],
      ['GET', '/oauth/token', 'POST'],
      ['POST', '/healthz', 'GET, HEAD'],
      ['DELETE', '/.well-known/jwks.json', 'GET, HEAD'],
    ];
    for (const [method, path, allow] of cases) {
      const answer = await rawRequest(method, path, [['x-request-id', 'hostile-405-0001']]);
      expect({ method, path, status: answer.status, allow: answer.headers.allow }).toEqual({ method, path, status: 405, allow });
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'METHOD_NOT_SUPPORTED', requestId: 'hostile-405-0001' });
    }
    const unknown = await rawRequest('PUT', '/api/nothing-here');
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body)).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('answers a well-formed call with superjson input normally (the bounds cost nothing to honest clients)', async () => {
    const input = encodeURIComponent(JSON.stringify(superjson.serialize({ limit: 5 })));
    const answer = await rawRequest('GET', `/trpc/projects.list?input=${input}`, [['authorization', `Bearer ${accessToken}`]]);
    expect(answer.status).toBe(200);
  });
});
