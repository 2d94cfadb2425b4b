/**
 * PostgreSQL's text form of a `timestamptz`, read without a regular expression: the typed SQL of
 * hot reads returns a few dates per row, and pg's general parser (postgres-date) allocated a
 * match array and several strings for each, a tenth of what a 20-row list allocated. The common
 * form (`2026-11-30 17:52:11.123+00`, any offset in whole minutes) is read here; anything else
 * (BC, infinity, a year past 9999, an offset with seconds) goes to pg's own parser.
 */
import pg from 'pg';

const TIMESTAMPTZ = 1184;
const general = pg.types.getTypeParser(TIMESTAMPTZ, 'text') as (text: string) => Date | number | null;

/** The value of `count` decimal digits at `at`, or -1 if one of them is not a digit. */
function digits(text: string, at: number, count: number): number {
  let value = 0;
  for (let i = at; i < at + count; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

export function parseTimestamptz(text: string): Date | number | null {
  // YYYY-MM-DD HH:MM:SS, then an optional fraction, then ±HH and an optional :MM.
  if (text.length < 22 || text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45 || text.charCodeAt(10) !== 32) return general(text);
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 2);
  const day = digits(text, 8, 2);
  const hour = digits(text, 11, 2);
  const minute = digits(text, 14, 2);
  const second = digits(text, 17, 2);
  if (year < 100 || month < 1 || day < 1 || hour < 0 || minute < 0 || second < 0) return general(text);
  let at = 19;
  let ms = 0;
  if (text.charCodeAt(at) === 46) {
    // Up to microseconds: the first three digits are the milliseconds (a Date holds no less).
    let count = 0;
    for (at += 1; at < text.length && text.charCodeAt(at) >= 48 && text.charCodeAt(at) <= 57; at++, count++) {
      if (count < 3) ms = ms * 10 + (text.charCodeAt(at) - 48);
    }
    if (count === 0 || count > 6) return general(text);
    for (let pad = count; pad < 3; pad++) ms *= 10;
  }
  const sign = text.charCodeAt(at);
  if (sign !== 43 && sign !== 45) return general(text);
  const offsetHours = digits(text, at + 1, 2);
  let offsetMinutes = 0;
  if (text.length === at + 6 && text.charCodeAt(at + 3) === 58) offsetMinutes = digits(text, at + 4, 2);
  else if (text.length !== at + 3) return general(text);
  if (offsetHours < 0 || offsetMinutes < 0) return general(text);
  const offsetMs = (sign === 43 ? 1 : -1) * (offsetHours * 60 + offsetMinutes) * 60_000;
  return new Date(Date.UTC(year, month - 1, day, hour, minute, second, ms) - offsetMs);
}

/** pg's per-query type parsers, with the fast `timestamptz` reader above. */
export const fastTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === TIMESTAMPTZ && format !== 'binary'
      ? parseTimestamptz
      : pg.types.getTypeParser(oid, format ?? 'text')) as pg.CustomTypesConfig['getTypeParser'],
};
