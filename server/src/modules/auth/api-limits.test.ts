import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../logger.js';
import { type ApiLimiterOptions, createApiLimiter } from './api-limits.js';

const log = createLogger({ env: 'test', log: { level: 'silent', pretty: false } });
/** 10 s into a one-minute window. */
const START = 1_000 * 60_000 + 10_000;

/**
 * `api_rate_limits` in memory, answering the limiter's two statements as PostgreSQL would;
 * `others` adds calls as another instance would.
 */
function fakeStore() {
  const rows = new Map<string, number>();
  const statements: string[] = [];
  let down = false;
  const pool = {
    async query(sql: string, params: unknown[]) {
      statements.push(sql.trim().split(/\s+/)[0] ?? '');
      if (down) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
      if (sql.includes('DELETE')) return { rows: [] };
      const [windowStart, keys, counts] = params as [Date, string[], number[]];
      return {
        rows: keys.map((key, i) => {
          const id = `${key}@${windowStart.getTime()}`;
          rows.set(id, (rows.get(id) ?? 0) + (counts[i] ?? 0));
          return { key, count: rows.get(id) };
        }),
      };
    },
  };
  return {
    pool: pool as unknown as pg.Pool,
    statements,
    total: (key: string, at = START) => rows.get(`${key}@${Math.floor(at / 60_000) * 60_000}`) ?? 0,
    others: (key: string, calls: number, at = START) => {
      const id = `${key}@${Math.floor(at / 60_000) * 60_000}`;
      rows.set(id, (rows.get(id) ?? 0) + calls);
    },
    setDown: (value: boolean) => {
      down = value;
    },
  };
}

function limiter(overrides: Partial<ApiLimiterOptions> = {}) {
  const store = fakeStore();
  const clock = { now: START };
  const api = createApiLimiter({ pool: store.pool, perIp: 3, perUser: 2, syncMs: 60_000, now: () => clock.now, log, ...overrides });
  return { api, store, clock };
}

const codes = (decisions: { allowed: boolean }[]) => decisions.map((d) => (d.allowed ? 'ok' : 'refused'));

describe('the general limit, in memory', () => {
  it('admits the limit per key and window, then refuses with the seconds left in the window', () => {
    const { api, clock } = limiter();
    const calls = Array.from({ length: 4 }, () => api.check({ ip: '192.0.2.1' }));
    expect(codes(calls)).toEqual(['ok', 'ok', 'ok', 'refused']);
    expect(calls[3]).toEqual({ allowed: false, limit: 'ip', retryAfterSeconds: 50 });
    expect(api.check({ ip: '192.0.2.2' }).allowed).toBe(true);
    clock.now += 50_000;
    expect(api.check({ ip: '192.0.2.1' }).allowed).toBe(true);
  });

  it('counts an IPv6 client by its /64', () => {
    const { api } = limiter();
    expect(codes(['2001:db8::1', '2001:db8::2', '2001:db8:0:0:ffff::3', '2001:db8::4'].map((ip) => api.check({ ip })))).toEqual([
      'ok',
      'ok',
      'ok',
      'refused',
    ]);
  });

  it('refuses a call when either its address or its user is spent, and then counts neither', async () => {
    const { api, store } = limiter();
    expect(codes([api.check({ userId: 'u1' }), api.check({ userId: 'u1' })])).toEqual(['ok', 'ok']);
    expect(api.check({ ip: '192.0.2.9', userId: 'u1' })).toMatchObject({ allowed: false, limit: 'user' });
    await api.sync();
    expect(store.total('ip:192.0.2.9')).toBe(0);
    expect(store.total('user:u1')).toBe(2);
  });

  it('shares only new calls, one statement per sync, and decides on the totals it reads back', async () => {
    const { api, store } = limiter({ perIp: 10 });
    for (let i = 0; i < 2; i += 1) api.check({ ip: '192.0.2.1' });
    await api.sync();
    await api.sync(); // nothing new: no statement
    expect(store.statements).toEqual(['INSERT', 'DELETE']);
    expect(store.total('ip:192.0.2.1')).toBe(2);

    store.others('ip:192.0.2.1', 6); // another instance's calls, now 8 in all
    expect(api.check({ ip: '192.0.2.1' }).allowed).toBe(true); // it does not know them yet: 3 as far as it knows
    await api.sync();
    expect(store.total('ip:192.0.2.1')).toBe(9);
    expect(codes([api.check({ ip: '192.0.2.1' }), api.check({ ip: '192.0.2.1' })])).toEqual(['ok', 'refused']);
  });

  it('keeps limiting on its own counts while the database is away, and sends them when it is back', async () => {
    const { api, store } = limiter();
    api.check({ ip: '192.0.2.1' });
    store.setDown(true);
    await api.sync();
    expect(codes([api.check({ ip: '192.0.2.1' }), api.check({ ip: '192.0.2.1' }), api.check({ ip: '192.0.2.1' })])).toEqual([
      'ok',
      'ok',
      'refused',
    ]);
    store.setDown(false);
    await api.sync();
    expect(store.total('ip:192.0.2.1')).toBe(3);
  });

  it('drops the calls of a window that has ended instead of sending them', async () => {
    const { api, store, clock } = limiter();
    api.check({ ip: '192.0.2.1' });
    clock.now += 60_000;
    await api.sync();
    expect(store.statements).toEqual([]);
    expect(api.check({ ip: '192.0.2.1' }).allowed).toBe(true);
  });

  it('keeps at most maxKeys keys: the oldest is forgotten (its count restarts from the shared total)', async () => {
    const { api } = limiter({ perIp: 1, maxKeys: 2 });
    expect(codes([api.check({ ip: '192.0.2.1' }), api.check({ ip: '192.0.2.1' })])).toEqual(['ok', 'refused']);
    api.check({ ip: '192.0.2.2' });
    api.check({ ip: '192.0.2.3' });
    // 192.0.2.1 was evicted: known again only after the next sync.
    expect(api.check({ ip: '192.0.2.1' }).allowed).toBe(true);
    await api.sync();
    expect(api.check({ ip: '192.0.2.1' }).allowed).toBe(false);
  });

  it('lets in-process calls (no address, no user) through uncounted, and stop() sends the last counts', async () => {
    const { api, store } = limiter({ perIp: 1 });
    expect(codes([api.check({}), api.check({}), api.check({ ip: '192.0.2.1' })])).toEqual(['ok', 'ok', 'ok']);
    await api.stop();
    expect(store.total('ip:192.0.2.1')).toBe(1);
  });
});
