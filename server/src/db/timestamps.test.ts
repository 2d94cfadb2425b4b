import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { parseTimestamptz } from './timestamps.js';

const general = pg.types.getTypeParser(1184, 'text') as (text: string) => Date | number | null;
const pad = (n: number, width: number) => String(n).padStart(width, '0');

/** A timestamptz as PostgreSQL writes it: UTC instant `ms`, shown at an offset of `offset` minutes. */
function pgText(ms: number, offset: number, fraction: number): string {
  const shown = new Date(ms + offset * 60_000);
  const date = `${pad(shown.getUTCFullYear(), 4)}-${pad(shown.getUTCMonth() + 1, 2)}-${pad(shown.getUTCDate(), 2)}`;
  const time = `${pad(shown.getUTCHours(), 2)}:${pad(shown.getUTCMinutes(), 2)}:${pad(shown.getUTCSeconds(), 2)}`;
  const frac = fraction === 0 ? '' : `.${pad(shown.getUTCMilliseconds(), 3)}${'0'.repeat(fraction - 3)}`.replace(/0+$/, '');
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  const zone = `${sign}${pad(Math.floor(abs / 60), 2)}${abs % 60 === 0 ? '' : `:${pad(abs % 60, 2)}`}`;
  return `${date} ${time}${frac === '.' ? '' : frac}${zone}`;
}

describe('parseTimestamptz', () => {
  it('reads what PostgreSQL writes as pg does, for 20,000 instants, offsets and fractions', () => {
    let seed = 7;
    const next = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const offsets = [0, 60, -300, 330, 345, -570, 840, -720];
    for (let i = 0; i < 20_000; i++) {
      const fraction = [0, 3, 6][i % 3] as number;
      const any = Math.round(next() * 8.2e12 - 2e12); // 1906..2229
      const ms = fraction === 0 ? any - (((any % 1000) + 1000) % 1000) : any;
      const text = pgText(ms, offsets[i % offsets.length] as number, fraction);
      const ours = parseTimestamptz(text) as Date;
      expect(ours.getTime(), text).toBe((general(text) as Date).getTime());
      expect(ours.getTime(), text).toBe(ms);
    }
  });

  it('hands every other form to pg: infinity, BC, a year past 9999, an offset with seconds, garbage', () => {
    for (const text of [
      'infinity',
      '-infinity',
      '0044-03-15 12:00:00+00 BC',
      '12026-01-01 00:00:00+00',
      '1900-01-01 00:00:00+00:09:21',
      'nope',
    ]) {
      expect(parseTimestamptz(text)).toEqual(general(text));
    }
  });
});
