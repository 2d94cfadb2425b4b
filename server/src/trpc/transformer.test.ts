import superjson from 'superjson';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { serialize } from './transformer.js';

/** The same bytes superjson writes, and superjson reads back the same value. */
function expectSuperjsonWire(value: unknown): void {
  const ours = serialize(value);
  expect(JSON.stringify(ours)).toBe(JSON.stringify(superjson.serialize(value)));
  const overTheWire = (result: ReturnType<typeof superjson.serialize>) => superjson.deserialize(JSON.parse(JSON.stringify(result)));
  expect(overTheWire(ours)).toEqual(overTheWire(superjson.serialize(value)));
}

const day = (n: number) => new Date(Date.UTC(2026, 0, n, 12, 30, 15, 250));
const projectRow = (n: number) => ({
  id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
  ownerId: '11111111-1111-4111-8111-111111111111',
  name: `Project ${n}`,
  description: n % 2 === 0 ? null : 'text with "quotes", a \\ and a .',
  archivedAt: n % 3 === 0 ? day(n) : null,
  version: n,
  createdAt: day(n),
  updatedAt: day(n + 1),
});

/** A small seeded generator of JSON-with-dates values (and, at `exotic`, values only superjson handles). */
function randomValue(seed: number, exotic: boolean) {
  let state = seed;
  const next = () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state / 0x7fffffff;
  };
  const keys = ['a', 'b.c', 'd\\e', 'items', '0', 'x y', 'ü'];
  const leaf = (): unknown => {
    const choice = Math.floor(next() * (exotic ? 12 : 6));
    switch (choice) {
      case 0:
        return Math.round(next() * 1000) - 500;
      case 1:
        return `s${Math.round(next() * 100)}`;
      case 2:
        return next() > 0.5;
      case 3:
        return null;
      case 4:
      case 5:
        return new Date(Math.round(next() * 2e12));
      case 6:
        return undefined;
      case 7:
        return BigInt(Math.round(next() * 1000));
      case 8:
        return new Map([['k', 1]]);
      case 9:
        return new Set([1, 2]);
      case 10:
        return Number.NaN;
      default:
        return -0;
    }
  };
  const build = (depth: number): unknown => {
    if (depth > 3 || next() < 0.3) return leaf();
    if (next() < 0.5) return Array.from({ length: Math.floor(next() * 4) }, () => build(depth + 1));
    const out: Record<string, unknown> = {};
    for (let i = Math.floor(next() * 4); i > 0; i--) out[keys[Math.floor(next() * keys.length)] as string] = build(depth + 1);
    return out;
  };
  return build(0);
}

describe('the tRPC output transformer', () => {
  afterEach(() => vi.restoreAllMocks());

  it('writes a page of rows with dates as superjson does, without calling superjson', () => {
    const spy = vi.spyOn(superjson, 'serialize');
    const page = { items: Array.from({ length: 20 }, (_, i) => projectRow(i + 1)), nextCursor: 'opaque' };
    const ours = serialize(page);
    expect(spy).not.toHaveBeenCalled();
    spy.mockRestore();
    expect(JSON.stringify(ours)).toBe(JSON.stringify(superjson.serialize(page)));
    expect(superjson.deserialize(ours)).toEqual(page);
  });

  it('matches superjson on roots, empty containers, escaped keys and plain JSON', () => {
    for (const value of [
      day(1),
      [day(1), day(2)],
      'text',
      0,
      -12.5,
      true,
      null,
      [],
      {},
      { nested: { deeper: [{ at: day(3) }] } },
      { 'a.b': day(1), 'c\\d': day(2), 'e\\.f': [day(3)] },
      Object.assign(Object.create(null) as Record<string, unknown>, { at: day(4) }),
      { items: [], nextCursor: null },
    ]) {
      expectSuperjsonWire(value);
    }
  });

  it('hands everything else to superjson: undefined, BigInt, Map, Set, NaN, -0, invalid dates, shared objects, sparse arrays, arrays with named keys', () => {
    const shared = { at: day(1) };
    const sparse: unknown[] = [1];
    sparse[2] = 3;
    class Point {
      constructor(readonly x: number) {}
    }
    for (const value of [
      { a: undefined },
      undefined,
      { n: 10n },
      new Map([['k', day(1)]]),
      { s: new Set([1]) },
      { n: Number.NaN, i: Number.POSITIVE_INFINITY, z: -0 },
      { bad: new Date(Number.NaN) },
      { one: shared, two: shared },
      { d: day(5), again: [day(5)] },
      sparse,
      { match: 'abc'.match(/b/) },
      Object.assign([day(1)], { named: day(2) }),
      { p: new Point(1) },
      { '': day(1) },
    ]) {
      expectSuperjsonWire(value);
    }
  });

  it('refuses prototype-polluting keys exactly as superjson does', () => {
    const polluted = JSON.parse('{"__proto__": {"x": 1}}') as unknown;
    expect(() => serialize(polluted)).toThrow(/prototype pollution/);
    expect(() => serialize({ constructor: 1 })).toThrow(/prototype pollution/);
  });

  it('matches superjson on 500 generated values, with and without exotic leaves', () => {
    for (let seed = 1; seed <= 250; seed++) {
      expectSuperjsonWire(randomValue(seed, false));
      expectSuperjsonWire(randomValue(seed, true));
    }
  });
});
