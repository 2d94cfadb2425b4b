import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createCallerFactory, publicProcedure, router } from '../../server/src/trpc/init.js';
import { contextOf } from '../support/caller.js';
import { useTestDatabase } from '../support/database.js';
import { startTestServer } from '../support/http.js';

const db = await useTestDatabase();
const deps = db.deps();

let runs = 0;
const counting = router({
  slow: publicProcedure.input(z.object({ n: z.number() })).query(async ({ input }) => {
    runs++;
    await new Promise((resolve) => setImmediate(resolve));
    return { n: input.n, run: runs };
  }),
  bump: publicProcedure.input(z.object({ n: z.number() })).mutation(() => {
    runs++;
    return { run: runs };
  }),
});
// The context of a request carrying several calls (a batch): only such calls share.
const caller = () => createCallerFactory(counting)(contextOf(deps, { calls: 3 }));

describe('identical concurrent queries in one request', () => {
  it('run once and share the answer; other inputs and later calls run again', async () => {
    runs = 0;
    const c = caller();
    const [a, b, other] = await Promise.all([c.slow({ n: 1 }), c.slow({ n: 1 }), c.slow({ n: 2 })]);
    expect(a).toEqual(b);
    expect(other.n).toBe(2);
    expect(runs).toBe(2);
    await c.slow({ n: 1 });
    expect(runs).toBe(3);
  });

  it('never share mutations', async () => {
    runs = 0;
    const c = caller();
    await Promise.all([c.bump({ n: 1 }), c.bump({ n: 1 })]);
    expect(runs).toBe(2);
  });

  it('share within one HTTP batch, while different inputs of the batch each get their own answer', async () => {
    runs = 0;
    const server = await startTestServer(deps, { router: counting });
    const input = encodeURIComponent(JSON.stringify({ 0: { json: { n: 7 } }, 1: { json: { n: 7 } }, 2: { json: { n: 8 } } }));
    const response = await fetch(`${server.url}/trpc/slow,slow,slow?batch=1&input=${input}`);
    const body = (await response.json()) as { result: { data: { json: { n: number } } } }[];
    expect(body.map((entry) => entry.result.data.json.n)).toEqual([7, 7, 8]);
    expect(runs).toBe(2);
  });
});
