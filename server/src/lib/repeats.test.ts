import { describe, expect, it } from 'vitest';
import { RepeatedLines, Repeats } from './repeats.js';

function setUp(maxKeys?: number) {
  let now = 1_000;
  const written: { key: string; repeated: number; first: number; last: number }[] = [];
  const repeats = new Repeats({ windowMs: 10_000, maxKeys, now: () => now });
  const occur = (key: string) => repeats.occur(key, (repeated, window) => written.push({ key, repeated, ...window }));
  return { repeats, written, occur, advance: (ms: number) => (now += ms) };
}

describe('repeated lines', () => {
  it('writes the first of a window, counts the rest, and sums them up once the window ends', () => {
    const { repeats, written, occur, advance } = setUp();
    expect(occur('a')).toBe(true);
    advance(1_000);
    expect(occur('a')).toBe(false);
    advance(2_000);
    expect(occur('a')).toBe(false);
    expect(occur('b')).toBe(true); // another key has its own window
    repeats.flush();
    expect(written).toEqual([]); // nothing has ended yet

    advance(7_000);
    repeats.flush();
    expect(written).toEqual([{ key: 'a', repeated: 2, first: 1_000, last: 4_000 }]);
    expect(repeats.size).toBe(1); // b opened later and is still open
    advance(3_000);
    repeats.flush();
    expect(repeats.size).toBe(0);
    expect(written).toHaveLength(1); // b ended with nothing repeated: no line
  });

  it('closes a key’s window when the key comes back after it, and opens a new one', () => {
    const { written, occur, advance } = setUp();
    occur('a');
    occur('a');
    advance(10_000);
    expect(occur('a')).toBe(true);
    expect(written).toEqual([{ key: 'a', repeated: 1, first: 1_000, last: 1_000 }]);
  });

  it('keeps at most maxKeys windows: the oldest is summed up and dropped first', () => {
    const { repeats, written, occur } = setUp(2);
    occur('a');
    occur('a');
    occur('b');
    occur('c');
    expect(repeats.size).toBe(2);
    expect(written).toEqual([{ key: 'a', repeated: 1, first: 1_000, last: 1_000 }]);
  });

  it('sums up every open window on flush(true)', () => {
    const { repeats, written, occur } = setUp();
    occur('a');
    occur('a');
    occur('a');
    repeats.flush(true);
    expect(written).toEqual([{ key: 'a', repeated: 2, first: 1_000, last: 1_000 }]);
    expect(occur('a')).toBe(true);
  });
});

describe('repeated log lines', () => {
  it('logs the first line of a key in full, counts the rest, and writes the count as one line on flush', () => {
    const lines: { level: string; fields: Record<string, unknown>; message: string }[] = [];
    const sink = {
      info: (fields: Record<string, unknown>, message: string) => lines.push({ level: 'info', fields, message }),
      warn: (fields: Record<string, unknown>, message: string) => lines.push({ level: 'warn', fields, message }),
    };
    const repeated = new RepeatedLines(10_000);
    for (let i = 0; i < 3; i++) repeated.write(sink, 'info', 'a', { ip: '192.0.2.1' }, 'refused');
    repeated.write(sink, 'warn', 'b', { ip: '192.0.2.2' }, 'refused');
    expect(lines).toEqual([
      { level: 'info', fields: { ip: '192.0.2.1' }, message: 'refused' },
      { level: 'warn', fields: { ip: '192.0.2.2' }, message: 'refused' },
    ]);
    repeated.flush();
    expect(lines.slice(2)).toEqual([
      {
        level: 'info',
        fields: { ip: '192.0.2.1', repeated: 2, since: expect.any(String), until: expect.any(String) },
        message: 'refused (repeated)',
      },
    ]);
  });
});
