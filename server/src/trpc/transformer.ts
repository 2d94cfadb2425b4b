import { TRPCError } from '@trpc/server';
import superjson from 'superjson';

type SuperJSONResult = ReturnType<typeof superjson.serialize>;
type DateAnnotation = ['Date'];

/** Every date's annotation: one shared array (the meta is only ever written out, never changed). */
const DATE: DateAnnotation = ['Date'];

/** Thrown inside the fast walk when a value needs superjson's general machinery. */
const NEEDS_SUPERJSON = Symbol('needs superjson');

/** A key JavaScript enumerates before the others: a canonical array index (below 2^32 - 1). */
function isArrayIndex(key: string): boolean {
  const first = key.charCodeAt(0);
  if (first < 48 || first > 57) return false; // not a digit: the common case, decided without a regex
  return /^(?:0|[1-9]\d*)$/.test(key) && Number(key) < 4_294_967_295;
}

/** superjson's path escaping: `\` -> `\\`, `.` -> `\.`. */
const escapeKey = (key: string): string => (/[.\\]/.test(key) ? key.replace(/\\/g, '\\\\').replace(/\./g, '\\.') : key);

const isPlainObject = (value: object): value is Record<string, unknown> => {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
};

/**
 * What procedures answer is JSON plus `Date`s (rows, zod outputs). superjson's general walk
 * (identity tracking, path arrays and annotation objects for every node) was 16% of the server's
 * CPU on a 20-row `projects.list`. For exactly that subset this walk only checks the value and
 * lists its dates' paths (superjson's `meta`); the value itself is the `json` part, because
 * JSON.stringify writes a Date as superjson does (`toJSON` is `toISOString`), so nothing is
 * copied. Everything else goes to superjson: Map, Set, BigInt, undefined, NaN/±Infinity/-0,
 * invalid dates, class instances, sparse arrays or arrays with named properties, a value met
 * twice (superjson records referential equality), and the keys superjson refuses (__proto__,
 * constructor, prototype). The bytes are superjson's (server/src/trpc/transformer.test.ts), so
 * any superjson client reads them.
 */
function dateAnnotations(root: unknown): Record<string, DateAnnotation> | undefined | typeof NEEDS_SUPERJSON {
  const seen = new Set<object>();
  // Every date's path, flat, in superjson's order. Paths are written once, with the escaped prefix
  // of their container, instead of being re-keyed at each level on the way up.
  let values: Record<string, DateAnnotation> | undefined;
  const annotate = (path: string) => {
    values ??= {};
    values[path] = DATE;
  };
  /** A date child: checked, remembered (superjson tracks dates' identity too) and annotated unless done. */
  const date = (value: Date, path: string, annotated: boolean) => {
    if (seen.has(value) || Number.isNaN(value.getTime())) throw NEEDS_SUPERJSON;
    seen.add(value);
    if (!annotated) annotate(path);
  };
  /**
   * superjson builds one annotation object per container, where JavaScript lists integer-like
   * keys first: a date directly under an array index (or a key like "7") comes before every path
   * into the container's other children. Those dates are annotated first, then the walk goes on.
   */
  const annotateIndexedDates = (container: Record<string, unknown> | unknown[], keys: readonly string[], prefix: string) => {
    for (const key of keys) {
      if (!isArrayIndex(key)) break; // integer-like keys come first in Object.keys
      const child = (container as Record<string, unknown>)[key];
      if (child instanceof Date && !Number.isNaN(child.getTime())) annotate(`${prefix}${key}`);
    }
  };

  /** A leaf that is not an object is JSON as it is, or superjson's business. */
  const checkPrimitive = (value: unknown): void => {
    switch (typeof value) {
      case 'string':
      case 'boolean':
        return;
      case 'number':
        if (!Number.isFinite(value) || Object.is(value, -0)) throw NEEDS_SUPERJSON;
        return;
      default:
        throw NEEDS_SUPERJSON; // undefined, bigint, symbol, function
    }
  };

  /** `prefix`: the escaped path of the container plus the separator (leaves need no path of their own). */
  const walk = (value: object, prefix: string): void => {
    if (seen.has(value)) throw NEEDS_SUPERJSON;
    seen.add(value);
    if (Array.isArray(value)) {
      // superjson walks an array's own keys: named ones (a RegExp match's `groups`) too.
      const keys = Object.keys(value);
      if (keys.length !== value.length) throw NEEDS_SUPERJSON;
      annotateIndexedDates(value, keys, prefix);
      for (let i = 0; i < value.length; i++) {
        if (!(i in value)) throw NEEDS_SUPERJSON;
        const child: unknown = value[i];
        if (child instanceof Date) date(child, '', true);
        else if (typeof child === 'object' && child !== null) walk(child, `${prefix}${i}.`);
        else if (child !== null) checkPrimitive(child);
      }
      return;
    }
    if (!isPlainObject(value)) throw NEEDS_SUPERJSON;
    const keys = Object.keys(value);
    annotateIndexedDates(value, keys, prefix);
    for (const key of keys) {
      if (key === '__proto__' || key === 'constructor' || key === 'prototype') throw NEEDS_SUPERJSON;
      const child = value[key];
      if (child instanceof Date) date(child, `${prefix}${escapeKey(key)}`, isArrayIndex(key));
      else if (typeof child === 'object' && child !== null) walk(child, `${prefix}${escapeKey(key)}.`);
      else if (child !== null) checkPrimitive(child);
    }
  };

  try {
    if (root instanceof Date) date(root, '', false);
    else if (typeof root === 'object' && root !== null) walk(root, '');
    else if (root !== null) checkPrimitive(root);
  } catch (error) {
    if (error === NEEDS_SUPERJSON) return NEEDS_SUPERJSON;
    throw error;
  }
  return values;
}

/**
 * superjson's `serialize`, faster for plain JSON with dates. Its `json` may hold Date objects:
 * every consumer writes it with JSON.stringify, which writes them as superjson's ISO strings.
 */
export function serialize(value: unknown): SuperJSONResult {
  const values = dateAnnotations(value);
  if (values === NEEDS_SUPERJSON) return superjson.serialize(value);
  const json = value as SuperJSONResult['json'];
  // A date at the root is annotated by itself, not by a path.
  return values === undefined ? { json } : { json, meta: { values: value instanceof Date ? ['Date'] : values, v: 1 } };
}

/** Deeper inputs are refused before anything walks them: no procedure takes more than a few levels. */
export const MAX_INPUT_DEPTH = 32;

/**
 * Why an input is refused before anything else walks it, or undefined: it nests objects or arrays
 * more than `maxDepth` levels deep, or has a `__proto__` key (JSON.parse makes it an own property,
 * which every later copy drops without a word: the caller would never learn that it was ignored).
 * Iterative: no stack to blow.
 */
export function inputProblem(value: unknown, maxDepth: number): string | undefined {
  const stack: [unknown, number][] = [[value, 1]];
  for (let entry = stack.pop(); entry !== undefined; entry = stack.pop()) {
    const [node, depth] = entry;
    if (typeof node !== 'object' || node === null) continue;
    if (depth > maxDepth) return `the input is nested more than ${MAX_INPUT_DEPTH} levels deep.`;
    const array = Array.isArray(node);
    if (!array && Object.hasOwn(node, '__proto__')) return 'the input has a key named __proto__, which Keel refuses.';
    for (const child of array ? node : Object.values(node)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return undefined;
}

/** A refused input, in Keel's words rather than the parser's (which may name library internals). */
export const malformedInput = (reason: string, cause?: unknown) =>
  new TRPCError({ code: 'BAD_REQUEST', message: `Malformed request: ${reason}`, ...(cause === undefined ? {} : { cause }) });

/**
 * superjson's `deserialize` for inputs, bounded: too deep an input, a `__proto__` key, or one
 * superjson refuses (an unknown class in its meta, a forbidden key), is a BAD_REQUEST that says so.
 */
export function deserializeInput(payload: unknown): unknown {
  // One more level than a procedure's input: superjson's envelope.
  const problem = inputProblem(payload, MAX_INPUT_DEPTH + 1);
  if (problem !== undefined) throw malformedInput(problem);
  try {
    return superjson.deserialize(payload as SuperJSONResult);
  } catch (cause) {
    throw malformedInput('the input is not valid superjson (send it as @trpc/client with superjson does).', cause);
  }
}

/**
 * The server's tRPC transformer: inputs are read by superjson, bounded (`deserializeInput`);
 * answers are written in its format by `serialize` above. Clients use plain superjson both ways.
 */
export const transformer = {
  input: { serialize: superjson.serialize, deserialize: deserializeInput },
  output: { serialize, deserialize: superjson.deserialize },
};
