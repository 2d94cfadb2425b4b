/**
 * What a call failed with, for tests that assert on errors: the rejection itself (which must be of
 * the expected class), or the code of a TRPCError as a string that also says "it succeeded".
 */
import { inspect } from 'node:util';
import { TRPCError } from '@trpc/server';

/** A class of errors, abstract or not, whatever its constructor takes. */
type ErrorClass<E extends Error> = abstract new (...args: never[]) => E;

/** An error as `String(error)` does (`Name: message`); any other value as `inspect` shows it. */
const describeValue = (value: unknown): string =>
  value instanceof Error ? String(value) : inspect(value, { depth: 2, breakLength: Number.POSITIVE_INFINITY });

/**
 * The error `promise` rejects with, which must be an instance of `type`. Throws (so the test
 * fails) when the promise resolves, or rejects with anything else.
 */
export async function rejectionOf<E extends Error>(promise: Promise<unknown>, type: ErrorClass<E>): Promise<E> {
  let value: unknown;
  try {
    value = await promise;
  } catch (error) {
    if (error instanceof type) return error;
    throw new Error(`expected the call to reject with a ${type.name}, but it rejected with ${describeValue(error)}`, { cause: error });
  }
  throw new Error(`expected the call to reject with a ${type.name}, but it resolved with ${describeValue(value)}`);
}

/** The TRPCError `promise` rejects with; throws (so the test fails) on a success or any other error. */
export function trpcErrorOf(promise: Promise<unknown>): Promise<TRPCError> {
  return rejectionOf(promise, TRPCError);
}

/** What `codeOf` answers: a TRPCError's code, `OK` for a success, `unexpected …` for any other error. */
export type CallOutcome = TRPCError['code'] | 'OK' | `unexpected ${string}`;

/**
 * `'OK'` when `promise` resolves, the code when it rejects with a TRPCError, and `unexpected <error>`
 * otherwise. Compare it with the expected code: a success or a foreign error never equals one.
 */
export function codeOf(promise: Promise<unknown>): Promise<CallOutcome> {
  return promise.then(
    (): CallOutcome => 'OK',
    (error: unknown): CallOutcome => (error instanceof TRPCError ? error.code : `unexpected ${describeValue(error)}`),
  );
}
