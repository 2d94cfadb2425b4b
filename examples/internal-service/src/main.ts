/**
 * "Project reports", a small internal service on Keel. A signed-in Keel user asks it for a report
 * of their projects (GET /report with their Keel access token); the service
 *  1. checks that token itself, offline, with Keel's published keys (the SDK's verifier), and
 *  2. reads the user's projects from Keel as itself: a service account holding `projects:read`,
 *     whose token the SDK's service client fetches, caches and renews.
 * It never sees the user's password and never forwards the user's token.
 *
 * Environment: KEEL_URL, KEEL_CLIENT_ID, KEEL_CLIENT_SECRET, optionally KEEL_ISSUER (keel),
 * KEEL_AUDIENCE (keel-api), KEEL_JWKS_COOLDOWN_SECONDS (30), PORT (0: any free port), HOST (127.0.0.1).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createKeelServiceClient, isKeelError } from '@keel/client-sdk';
import { createKeelTokenVerifier, KeelTokenInvalidError } from '@keel/client-sdk/verifier';

/** One line per step, as JSON: what happened, never a secret or a token. */
const log = (msg: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), msg, ...fields })}\n`);

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    log(`missing ${name}: set it (see examples/internal-service/README.md)`);
    process.exit(1);
  }
  return value;
}

const keelUrl = required('KEEL_URL').replace(/\/+$/, '');
const keel = createKeelServiceClient({
  url: keelUrl,
  clientId: required('KEEL_CLIENT_ID'),
  clientSecret: required('KEEL_CLIENT_SECRET'),
  // Least privilege: this service only ever reads projects.
  scopes: ['projects:read'],
});
const verify = createKeelTokenVerifier({
  issuer: process.env.KEEL_ISSUER || 'keel',
  audience: process.env.KEEL_AUDIENCE || 'keel-api',
  jwksUrl: `${keelUrl}/.well-known/jwks.json`,
  refetchCooldownSeconds: Number(process.env.KEEL_JWKS_COOLDOWN_SECONDS || 30),
});

const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
};

async function report(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const token = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  if (!token) return send(res, 401, { error: 'Send your Keel access token as Authorization: Bearer.' }, { 'www-authenticate': 'Bearer' });
  let principal: Awaited<ReturnType<typeof verify>>;
  try {
    principal = await verify(token);
  } catch (error) {
    if (error instanceof KeelTokenInvalidError) {
      log('refused a token', { reason: error.reason });
      return send(res, 401, { error: 'Invalid or expired Keel access token.' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
    }
    throw error;
  }
  if (principal.kind !== 'user') return send(res, 403, { error: 'Reports are for people, not services.' });
  const names: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await keel.projects.list.query({
      ownerId: principal.userId,
      includeArchived: true,
      limit: 100,
      ...(cursor ? { cursor } : {}),
    });
    names.push(...page.items.map((p) => p.name));
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  log('report served', { userId: principal.userId, projects: names.length });
  send(res, 200, { userId: principal.userId, role: principal.role, projectCount: names.length, projects: names });
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/healthz') return send(res, 200, { status: 'ok' });
  if (req.method !== 'GET' || req.url !== '/report') return send(res, 404, { error: 'Try GET /report.' });
  report(req, res).catch((error: unknown) => {
    const code = isKeelError(error) ? error.data?.code : undefined;
    log('report failed', { keelCode: code ?? null, error: error instanceof Error ? error.name : 'unknown' });
    send(res, 502, { error: 'Keel could not be read; try again.' });
  });
});

server.listen(Number(process.env.PORT || 0), process.env.HOST || '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  log(`listening on http://127.0.0.1:${port}`, { keel: keelUrl });
});
const stop = () => {
  log('stopping');
  server.close(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
