import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ConfigError, directDatabaseUrl, envSchema, parseConfig } from './config.js';

/** A valid private JWK set: JWT_KEYS is parsed with the rest of the configuration. */
const KEYS = JSON.stringify({
  keys: [{ ...generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }), kid: 'config-test', alg: 'EdDSA' }],
});

function problemsOf(env: Record<string, string>): string[] {
  try {
    parseConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('uses development defaults when nothing is set', () => {
    const config = parseConfig({});
    expect(config.env).toBe('development');
    expect(config.port).toBe(3000);
    expect(config.database.url).toBeUndefined();
    expect(config.http.bodyLimitBytes).toBe(1024 * 1024);
    expect(config.http.maxBatchSize).toBe(50);
    expect(config.http.corsOrigins).toContain('http://localhost:5173');
    expect(config.log.pretty).toBe(true);
  });

  it('keeps a core free of password hashing by default, and queues 8 password operations per hashing slot', () => {
    const { passwords } = parseConfig({});
    expect(passwords.concurrency).toBe(Math.max(1, availableParallelism() - 1));
    expect(passwords.queue).toBe(8 * passwords.concurrency);
    expect(parseConfig({ PASSWORD_HASH_CONCURRENCY: '3', PASSWORD_HASH_QUEUE: '0' }).passwords).toMatchObject({ concurrency: 3, queue: 0 });
    expect(parseConfig({ PASSWORD_HASH_CONCURRENCY: '3' }).passwords.queue).toBe(24);
  });

  it("derives Prisma's transaction wait and timeout from the pool's connect timeout and the statement timeout", () => {
    const defaults = parseConfig({}).database;
    expect(defaults.transactionMaxWaitMs).toBe(3_000);
    expect(defaults.transactionTimeoutMs).toBe(12_000);
    const derived = parseConfig({ DATABASE_CONNECT_TIMEOUT_MS: '1500', DATABASE_STATEMENT_TIMEOUT_MS: '30000' }).database;
    expect(derived.transactionMaxWaitMs).toBe(1_500);
    expect(derived.transactionTimeoutMs).toBe(32_000);
    const explicit = parseConfig({ DATABASE_TRANSACTION_MAX_WAIT_MS: '250', DATABASE_TRANSACTION_TIMEOUT_MS: '60000' }).database;
    expect(explicit).toMatchObject({ transactionMaxWaitMs: 250, transactionTimeoutMs: 60_000 });
    expect(problemsOf({ DATABASE_TRANSACTION_TIMEOUT_MS: '0' })[0]).toMatch(/^DATABASE_TRANSACTION_TIMEOUT_MS: expected an integer/);
  });

  it('drains for 5 s on SIGTERM in production and not at all elsewhere, unless SHUTDOWN_DRAIN_MS says otherwise', () => {
    expect(parseConfig({}).http.shutdownDrainMs).toBe(0);
    expect(parseConfig({ NODE_ENV: 'test' }).http.shutdownDrainMs).toBe(0);
    expect(parseConfig({ SHUTDOWN_DRAIN_MS: '1500' }).http.shutdownDrainMs).toBe(1_500);
    const production = {
      NODE_ENV: 'production',
      DATABASE_URL: 'postgresql://app@db.internal/app',
      CORS_ORIGINS: 'none',
      JWT_KEYS: KEYS,
      MAIL_TRANSPORT: 'smtp',
      SMTP_URL: 'smtp://relay.internal:587',
      SERVICE_SECRET_HASH_KEY: 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8',
      APP_URL: 'https://app.example.com',
      TWO_FACTOR_ENCRYPTION_KEYS: Buffer.alloc(32, 1).toString('base64'),
    };
    expect(parseConfig(production).http.shutdownDrainMs).toBe(5_000);
    expect(parseConfig({ ...production, SHUTDOWN_DRAIN_MS: '0' }).http.shutdownDrainMs).toBe(0);
  });

  it('routes session-bound work through DIRECT_DATABASE_URL, and refuses it without DATABASE_URL', () => {
    const pooled = 'postgresql://app@pgbouncer.internal:6432/app';
    const direct = 'postgresql://app@db.internal:5432/app';
    const both = parseConfig({ DATABASE_URL: pooled, DIRECT_DATABASE_URL: direct }).database;
    expect(both).toMatchObject({ url: pooled, directUrl: direct });
    expect(directDatabaseUrl(both, pooled)).toBe(direct);
    const one = parseConfig({ DATABASE_URL: direct }).database;
    expect(directDatabaseUrl(one, direct)).toBe(direct);
    expect(problemsOf({ DIRECT_DATABASE_URL: direct })[0]).toMatch(/^DIRECT_DATABASE_URL: set it only with DATABASE_URL/);
    expect(problemsOf({ DATABASE_URL: pooled, DIRECT_DATABASE_URL: 'db.internal' })[0]).toMatch(
      /^DIRECT_DATABASE_URL: expected a postgresql:\/\/ connection URL \(value not shown/,
    );
  });

  it('rejects a non-numeric PORT with a message naming the variable and the value', () => {
    const problems = problemsOf({ PORT: 'abc' });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^PORT: expected an integer from 0 to 65535 \(got "abc"\)/);
  });

  it('never repeats the value of a variable that may hold a secret', () => {
    const problems = problemsOf({
      DATABASE_URL: 'postgresql://app:S3cretPassw0rd@db.internal/app ',
      SMTP_URL: 'mail.example.com:S3cret',
      ADMIN_PASSWORD: 'short',
      JWT_KEYS: '{"keys": "S3cret"}',
    });
    expect(problems.length).toBeGreaterThanOrEqual(3);
    for (const problem of problems) expect(problem).not.toMatch(/S3cret|short/);
    expect(problems.find((p) => p.startsWith('DATABASE_URL'))).toMatch(/\(value not shown: it may hold a secret\)$/);
  });

  it('parses JWT_KEYS with the rest, so a bad key set stops the start before any side effect', () => {
    expect(problemsOf({ JWT_KEYS: 'nope' })).toEqual([
      'JWT_KEYS: is not valid JSON: expected {"keys":[...]} (generate a set with `pnpm keys:generate`)',
    ]);
    expect(problemsOf({ JWT_KEYS: '{"keys":[]}' })[0]).toMatch(/^JWT_KEYS: is not a valid JWK set: keys: /);
    const publicOnly = JSON.stringify({ keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'abc', kid: 'k1' }] });
    expect(problemsOf({ JWT_KEYS: publicOnly })[0]).toMatch(/^JWT_KEYS: has no private key/);
    expect(() => parseConfig({ JWT_KEYS: KEYS })).not.toThrow();
  });

  it('lists every bad variable in one error', () => {
    const problems = problemsOf({ PORT: '70000', LOG_LEVEL: 'loud', DATABASE_URL: 'mysql://x', TRUST_PROXY: 'maybe' });
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(['DATABASE_URL', 'LOG_LEVEL', 'PORT', 'TRUST_PROXY']);
    expect(() => parseConfig({ PORT: '70000' })).toThrow(/Invalid configuration.*\n {2}- PORT/);
  });

  it('trusts X-Forwarded-For only from named proxies, never from every hop', () => {
    expect(parseConfig({}).http.trustProxy).toBe(false);
    expect(parseConfig({ TRUST_PROXY: 'loopback, 10.0.0.0/8, fd00::/8, 192.0.2.7' }).http.trustProxy).toBe(
      'loopback,10.0.0.0/8,fd00::/8,192.0.2.7',
    );
    expect(problemsOf({ TRUST_PROXY: 'true' })[0]).toMatch(
      /^TRUST_PROXY: true would trust every hop, letting clients pick their own address/,
    );
    for (const bad of ['1', '10.0.0.0/33', 'proxy.internal', '10.0.0.1/8/1']) {
      expect(problemsOf({ TRUST_PROXY: bad })[0]).toMatch(/^TRUST_PROXY: expected false, or the addresses\/CIDR ranges of the proxies/);
    }
  });

  it('refuses development-only defaults in production', () => {
    const problems = problemsOf({ NODE_ENV: 'production', ADMIN_EMAIL: 'root@example.com' });
    expect(problems.join('\n')).toMatch(/DATABASE_URL: required in production/);
    expect(problems.join('\n')).toMatch(/CORS_ORIGINS: required in production/);
    expect(problems.join('\n')).toMatch(/SERVICE_SECRET_HASH_KEY: required in production/);
    expect(problems.join('\n')).toMatch(/ADMIN_PASSWORD: required in production/);
    expect(problems.join('\n')).toMatch(/TWO_FACTOR_ENCRYPTION_KEYS: required in production/);
    expect(problems.join('\n')).toMatch(/JWT_KEYS: required in production/);
    expect(problems.join('\n')).toMatch(/MAIL_TRANSPORT: must be smtp in production/);
    expect(problems.join('\n')).toMatch(/APP_URL: required in production/);
  });

  it('accepts a complete production environment and logs JSON there', () => {
    const config = parseConfig({
      NODE_ENV: 'production',
      DATABASE_URL: 'postgresql://u@db/keel',
      CORS_ORIGINS: 'none',
      JWT_KEYS: KEYS,
      MAIL_TRANSPORT: 'smtp',
      SMTP_URL: 'smtp://mail.example.com:587',
      SERVICE_SECRET_HASH_KEY: 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8',
      APP_URL: 'https://app.example.com',
      TWO_FACTOR_ENCRYPTION_KEYS: Buffer.alloc(32, 1).toString('base64'),
    });
    expect(config.isProduction).toBe(true);
    expect(config.http.corsOrigins).toEqual([]);
    expect(config.log.pretty).toBe(false);
    expect(config.seed.demoData).toBe(false);
    expect(config.auth.secureCookies).toBe(true);
  });

  it('treats an empty variable as unset and parses lists and booleans', () => {
    const config = parseConfig({ PORT: '', CORS_ORIGINS: 'https://a.example, https://b.example', TRUST_PROXY: 'no', LOG_PRETTY: 'false' });
    expect(config.port).toBe(3000);
    expect(config.http.corsOrigins).toEqual(['https://a.example', 'https://b.example']);
    expect(config.http.trustProxy).toBe(false);
    expect(config.log.pretty).toBe(false);
  });

  it('resolves relative paths from the project root, whatever the working directory', () => {
    const config = parseConfig({ EMBEDDED_PG_DIR: '.data/pg', JWT_KEYS_FILE: 'keys/dev.json' });
    const root = new URL('../../', import.meta.url).pathname;
    expect(config.database.embeddedDir).toBe(`${root}.data/pg`);
    expect(config.auth.keysFile).toBe(`${root}keys/dev.json`);
    expect(parseConfig({ EMBEDDED_PG_DIR: '/var/lib/keel/pg' }).database.embeddedDir).toBe('/var/lib/keel/pg');
  });

  it('is documented: .env.example and the README configuration table name every variable', () => {
    const variables = Object.keys(envSchema.shape);
    const example = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    expect(variables.filter((name) => !new RegExp(`^#? ?${name}=`, 'm').test(example))).toEqual([]);
    expect(variables.filter((name) => !readme.includes(`\`${name}\``))).toEqual([]);
  });
});

describe('accounts settings', () => {
  it('reads TWO_FACTOR_ENCRYPTION_KEYS as 32-byte keys (first seals), refuses other lengths without repeating the value', () => {
    const a = Buffer.alloc(32, 1);
    const b = Buffer.alloc(32, 2);
    const keys = parseConfig({ TWO_FACTOR_ENCRYPTION_KEYS: `${a.toString('base64')}, ${b.toString('base64url')}` }).accounts.twoFactorKeys;
    expect(keys?.map((k) => k.equals(a) || k.equals(b))).toEqual([true, true]);
    expect(keys?.[0]?.equals(a)).toBe(true);
    const short = Buffer.alloc(16, 3).toString('base64');
    const problems = problemsOf({ TWO_FACTOR_ENCRYPTION_KEYS: short });
    expect(problems.join('\n')).toMatch(/TWO_FACTOR_ENCRYPTION_KEYS: expected comma-separated base64 keys of 32 bytes/);
    expect(problems.join('\n')).not.toContain(short);
  });

  it('leaves REQUIRE_VERIFIED_EMAIL off unless set', () => {
    expect(parseConfig({}).accounts.requireVerifiedEmail).toBe(false);
    expect(parseConfig({ REQUIRE_VERIFIED_EMAIL: 'true' }).accounts.requireVerifiedEmail).toBe(true);
  });
});
