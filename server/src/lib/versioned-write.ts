/**
 * Optimistic writes: an update names the `version` it read and matches no row when the row moved
 * on. Then a second read says why, in the order a caller can act on: not there (or not visible)
 * -> NOT_FOUND; visible but someone else's -> FORBIDDEN; the caller's own at another version ->
 * CONFLICT with reason STALE_VERSION.
 */
import { z } from 'zod';
import { AppError, notFound } from './errors.js';

/**
 * The `version` a client names in an update: a positive PostgreSQL `integer`. Unbounded, a larger
 * number reached the database, which refused it (22003) and the call answered 500.
 */
export const versionInput = z.number().int().min(1).max(2_147_483_647);

/** What the second read saw of the row: undefined when it is not there for the caller. */
export interface SeenRow {
  ownedByCaller: boolean;
  version: number;
}

/** The error of a write at a version that matched no row, from what a fresh read saw. */
export function explainStaleWrite(noun: string, seen: SeenRow | null | undefined): AppError {
  if (!seen) return notFound(noun.charAt(0).toUpperCase() + noun.slice(1));
  if (!seen.ownedByCaller) return new AppError('FORBIDDEN', `Only the owner can change this ${noun}.`);
  return new AppError('CONFLICT', `This ${noun} was changed meanwhile (now version ${seen.version}). Reload it and try again.`, {
    reason: 'STALE_VERSION',
    fieldErrors: { version: ['is stale'] },
  });
}

/** Runs a write at a version; when it matched no row, throws what `explain` finds. */
export async function writeAtVersion(write: Promise<{ count: number }>, explain: () => Promise<AppError>): Promise<void> {
  const { count } = await write;
  if (count === 0) throw await explain();
}
