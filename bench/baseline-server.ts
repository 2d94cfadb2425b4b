/**
 * The floor no framework beats on this machine: node:http + pg + jose + JSON.stringify answering
 * what `projects.list` answers (first page of 20, newest first) for the bearer of an access token.
 * No router, no validation, no transformer, no logging: only the work that cannot be skipped.
 *
 * Started by bench/run.ts as a child process with DATABASE_URL, JWT_KEYS, JWT_ISSUER, JWT_AUDIENCE
 * and PORT (bench code reads its own environment; the server's config module is not involved).
 */
import { createServer } from 'node:http';
import { createLocalJWKSet, jwtVerify } from 'jose';
import pg from 'pg';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`baseline server: ${name} is required`);
  return value;
};

const keys = (JSON.parse(env('JWT_KEYS')) as { keys: Record<string, unknown>[] }).keys.map(({ d: _private, ...publicPart }) => publicPart);
const jwks = createLocalJWKSet({ keys });
const issuer = env('JWT_ISSUER');
const audience = env('JWT_AUDIENCE');
const pool = new pg.Pool({ connectionString: env('DATABASE_URL'), max: Number(process.env.POOL_SIZE ?? 10) });

// The SQL Prisma sends for projects.list (limit + 1 rows to know whether a next page exists).
const LIST = `SELECT id, owner_id, name, description, archived_at, version, created_at, updated_at
  FROM projects WHERE owner_id = $1 AND archived_at IS NULL
  ORDER BY created_at DESC, id DESC LIMIT 21`;

const server = createServer(async (req, res) => {
  try {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!token) {
      res.writeHead(401).end();
      return;
    }
    const { payload } = await jwtVerify(token, jwks, { issuer, audience, typ: 'at+jwt', algorithms: ['EdDSA', 'ES256'] });
    const { rows } = await pool.query(LIST, [payload.sub]);
    const items = rows.slice(0, 20).map((r) => ({
      id: r.id,
      ownerId: r.owner_id,
      name: r.name,
      description: r.description,
      archivedAt: r.archived_at,
      version: r.version,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    }));
    const body = JSON.stringify({ items, nextCursor: rows.length > 20 ? 'more' : null });
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  } catch {
    res.writeHead(500).end();
  }
});

server.keepAliveTimeout = 5_000;
server.listen(Number(env('PORT')), '127.0.0.1', () => process.stdout.write('baseline ready\n'));
process.once('SIGTERM', () => {
  server.close();
  void pool.end().then(() => process.exit(0));
});
