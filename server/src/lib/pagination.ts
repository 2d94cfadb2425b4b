/**
 * Keyset ("cursor") pagination: a stable order on (sort key, id), a cursor that encodes the last
 * row's key, and `limit + 1` rows read to know whether another page exists. Rows inserted between
 * two pages neither repeat a row nor skip one, unlike OFFSET.
 */
import { z } from 'zod';
import { AppError } from './errors.js';

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

export const pageInput = {
  /** Opaque: the `nextCursor` of the previous page. */
  cursor: z.string().max(200).optional(),
  limit: z.number().int().min(1).max(MAX_PAGE_SIZE).default(DEFAULT_PAGE_SIZE),
};

export const pageOf = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), nextCursor: z.string().nullable() });

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** The position of a row in a (sort key, id) order. */
export interface CursorKey<K extends Date | number = Date | number> {
  key: K;
  id: string;
}

/** Keys the database can compare: a 32-bit position, or a timestamp in years 1..9999. */
const cursorSchema = z.tuple([
  z.union([
    z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1),
    z.iso.datetime().refine((v) => {
      const year = new Date(v).getUTCFullYear();
      return year >= 1 && year <= 9999;
    }),
  ]),
  z.uuid(),
]);

export function encodeCursor({ key, id }: CursorKey): string {
  return Buffer.from(JSON.stringify([key instanceof Date ? key.toISOString() : key, id])).toString('base64url');
}

export function decodeCursor(cursor: string, kind: 'date'): CursorKey<Date>;
export function decodeCursor(cursor: string, kind: 'number'): CursorKey<number>;
export function decodeCursor(cursor: string, kind: 'date' | 'number'): CursorKey {
  let parsed: z.infer<typeof cursorSchema> | undefined;
  try {
    parsed = cursorSchema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
  } catch {
    parsed = undefined;
  }
  const [key, id] = parsed ?? [];
  if (id === undefined || (kind === 'date' ? typeof key !== 'string' : typeof key !== 'number')) {
    throw new AppError('BAD_REQUEST', 'Invalid cursor.', { fieldErrors: { cursor: ['is not a cursor from this list'] } });
  }
  return { key: kind === 'date' ? new Date(key as string) : (key as number), id };
}

/** Turns `limit + 1` fetched rows into a page and the cursor of its last row. */
function toPage<Row>(rows: Row[], limit: number, keyOf: (row: Row) => CursorKey): Page<Row> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > limit && last !== undefined ? encodeCursor(keyOf(last)) : null };
}

type KeyKinds = { date: Date; number: number };

/**
 * One page of a keyset list: decodes the input's cursor (BAD_REQUEST when it is not one of this
 * list's), has `fetch` read `take` (= limit + 1) rows after it in the (key, id) order, and answers
 * the first `limit` with the cursor of the last. `fetch` builds its own `where` (`rowsAfter` for
 * Prisma, or typed SQL).
 */
export async function paginate<Row, Kind extends keyof KeyKinds>(
  input: { cursor?: string | undefined; limit: number },
  kind: Kind,
  keyOf: (row: Row) => CursorKey<KeyKinds[Kind]>,
  fetch: (page: { after: CursorKey<KeyKinds[Kind]> | undefined; take: number }) => Promise<Row[]>,
): Promise<Page<Row>> {
  // An empty cursor is no cursor (the first page), as a query string `?cursor=` sends it.
  const after = input.cursor ? (decodeCursor(input.cursor, kind as 'date') as CursorKey<KeyKinds[Kind]>) : undefined;
  const rows = await fetch({ after, take: input.limit + 1 });
  return toPage(rows, input.limit, keyOf);
}

type After<T> = { lt: T } | { gt: T };

/**
 * The Prisma `where` for "rows after this cursor" in an order on (`field`, id), ascending or
 * descending; undefined when there is no cursor (the first page).
 */
export function rowsAfter<F extends string, K extends Date | number>(
  field: F,
  cursor: CursorKey<K> | undefined,
  direction: 'asc' | 'desc',
): { OR: [Record<F, After<K>>, Record<F, K> & { id: After<string> }] } | undefined {
  if (!cursor) return undefined;
  const after = <T>(value: T): After<T> => (direction === 'asc' ? { gt: value } : { lt: value });
  return {
    OR: [
      { [field]: after(cursor.key) } as Record<F, After<K>>,
      { [field]: cursor.key, id: after(cursor.id) } as Record<F, K> & { id: After<string> },
    ],
  };
}
