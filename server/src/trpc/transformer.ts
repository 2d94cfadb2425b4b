import superjson from 'superjson';

type SuperJSONResult = ReturnType<typeof superjson.serialize>;
type DateAnnotation = ['Date'];
type Annotations = DateAnnotation | Record<string, DateAnnotation>;
type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Thrown inside the fast walk when a value needs superjson's general machinery. */
const NEEDS_SUPERJSON = Symbol('needs superjson');

/** superjson's path escaping: `\` -> `\\`, `.` -> `\.`. */
const escapeKey = (key: string): string => (/[.\\]/.test(key) ? key.replace(/\\/g, '\\\\').replace(/\./g, '\\.') : key);

const isPlainObject = (value: object): value is Record<string, unknown> => {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
};

/**
 * What procedures answer is JSON plus `Date`s (Prisma rows, zod outputs). superjson's general
 * walk (identity tracking, path arrays and annotation objects for every node) was 16% of the
 * server's CPU on a 20-row `projects.list`; this walk writes the same wire format for exactly
 * that subset, and hands everything else to superjson: Map, Set, BigInt, undefined,
 * NaN/±Infinity/-0, invalid dates, class instances, sparse arrays or arrays with named
 * properties, a value met twice (superjson records referential equality), and the keys superjson
 * refuses (__proto__, constructor, prototype). The output is byte-for-byte superjson's
 * (server/src/trpc/transformer.test.ts), so any superjson client reads it.
 */
function serializeFast(root: unknown): SuperJSONResult | typeof NEEDS_SUPERJSON {
  const seen = new Set<object>();
  // The annotations of the value `walk` returned last: ['Date'] for a date, a flat path map for a
  // container holding dates (built like superjson's, so keys come out in the same order).
  let annotations: Annotations | undefined;

  /** Adds a child's annotations under its key, as superjson nests them. */
  const nest = (inner: Record<string, DateAnnotation> | undefined, key: string, child: Annotations) => {
    const into = inner ?? {};
    if (Array.isArray(child)) into[escapeKey(key)] = child;
    else for (const path in child) into[`${escapeKey(key)}.${path}`] = child[path] as DateAnnotation;
    return into;
  };

  const walk = (value: unknown): JsonValue => {
    annotations = undefined;
    switch (typeof value) {
      case 'string':
      case 'boolean':
        return value;
      case 'number':
        if (!Number.isFinite(value) || Object.is(value, -0)) throw NEEDS_SUPERJSON;
        return value;
      case 'object': {
        if (value === null) return null;
        if (seen.has(value)) throw NEEDS_SUPERJSON;
        seen.add(value);
        if (value instanceof Date) {
          if (Number.isNaN(value.getTime())) throw NEEDS_SUPERJSON;
          annotations = ['Date'];
          return value.toISOString();
        }
        let inner: Record<string, DateAnnotation> | undefined;
        if (Array.isArray(value)) {
          // superjson walks an array's own keys: named ones (a RegExp match's `groups`) too.
          if (Object.keys(value).length !== value.length) throw NEEDS_SUPERJSON;
          const out: JsonValue[] = new Array(value.length);
          for (let i = 0; i < value.length; i++) {
            if (!(i in value)) throw NEEDS_SUPERJSON;
            out[i] = walk(value[i]);
            if (annotations !== undefined) inner = nest(inner, String(i), annotations);
          }
          annotations = inner;
          return out;
        }
        if (!isPlainObject(value)) throw NEEDS_SUPERJSON;
        const out: Record<string, JsonValue> = {};
        for (const key of Object.keys(value)) {
          if (key === '__proto__' || key === 'constructor' || key === 'prototype') throw NEEDS_SUPERJSON;
          out[key] = walk(value[key]);
          if (annotations !== undefined) inner = nest(inner, key, annotations);
        }
        annotations = inner;
        return out;
      }
      default:
        throw NEEDS_SUPERJSON; // undefined, bigint, symbol, function
    }
  };

  let json: JsonValue;
  try {
    json = walk(root);
  } catch (error) {
    if (error === NEEDS_SUPERJSON) return NEEDS_SUPERJSON;
    throw error;
  }
  return annotations === undefined ? { json } : { json, meta: { values: annotations, v: 1 } };
}

/** superjson's `serialize`, faster for plain JSON with dates. */
export function serialize(value: unknown): SuperJSONResult {
  const fast = serializeFast(value);
  return fast === NEEDS_SUPERJSON ? superjson.serialize(value) : fast;
}

/**
 * The server's tRPC transformer: inputs are read by superjson itself; answers are written in its
 * format by `serialize` above. Clients use plain superjson for both directions.
 */
export const transformer = {
  input: superjson,
  output: { serialize, deserialize: superjson.deserialize },
};
