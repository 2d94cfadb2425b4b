import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary } from '@zxcvbn-ts/language-common';
import { z } from 'zod';
import { wellFormed } from '../../lib/text.js';

let common: Set<string> | undefined;

/** One of ~49,000 common passwords (zxcvbn-ts' maintained list), case-insensitively. */
export function isCommonPassword(password: string): boolean {
  common ??= new Set(dictionary['passwords-common']);
  return common.has(password.toLowerCase());
}

/** Length per OWASP ASVS: at least 8, and long passphrases allowed (128); any character that is one. */
export const passwordSchema = wellFormed(
  z.string().min(8, { message: 'must be at least 8 characters' }).max(128, { message: 'must be at most 128 characters' }),
);

/**
 * The estimator runs on the event loop, and its time grows steeply with length and with symbols it
 * could read as l33t (600 ms for some 128-character inputs). The first 64 characters, with at most
 * 10 l33t substitutions, keep the worst case under ~10 ms; a password whose first 64 characters
 * are easy to guess is refused whatever follows.
 */
const ESTIMATED_LENGTH = 64;
let estimator: ZxcvbnFactory | undefined;

/** Why zxcvbn found a password weak, by its warning key, in words a user can act on. */
const WHY: Record<string, string> = {
  straightRow: 'it is a row of keys on the keyboard',
  keyPattern: 'it is a pattern of keys on the keyboard',
  simpleRepeat: 'it repeats a character',
  extendedRepeat: 'it repeats a short pattern',
  sequences: 'it is a sequence such as abc or 123',
  recentYears: 'it contains a recent year',
  dates: 'it contains a date',
  topTen: 'it is one of the most used passwords',
  topHundred: 'it is one of the most used passwords',
  common: 'it is a commonly used password',
  similarToCommon: 'it is close to a commonly used password',
  wordByItself: 'it is a single word',
  namesByThemselves: 'it is a name',
  commonNames: 'it is a common name',
  userInputs: 'it contains your email address',
};

/**
 * How hard `password` is to guess, as zxcvbn scores it (0 = trivial .. 4 = strong), and why when
 * it is weak. Patterns (keyboard walks, repeats, sequences, dates, common passwords and variants)
 * count, not the classes of characters: no composition rules, as NIST SP 800-63B and ASVS 5 advise.
 */
export function passwordStrength(password: string, userInputs: string[]): { score: number; why: string | undefined } {
  estimator ??= new ZxcvbnFactory({ dictionary, graphs: adjacencyGraphs, maxLength: ESTIMATED_LENGTH, l33tMaxSubstitutions: 10 });
  const result = estimator.check(password, userInputs);
  const warning = result.feedback.warning;
  return { score: result.score, why: warning ? WHY[warning] : undefined };
}

/**
 * The rules that need more than the password itself. Messages are per-field, for the client.
 * `minScore` is the least zxcvbn score accepted (`PASSWORD_MIN_SCORE`).
 */
export function passwordProblems(password: string, email: string, minScore: number): string[] {
  const address = email.trim().toLowerCase();
  if (password.trim().toLowerCase() === address) return ['must not be your email address'];
  if (isCommonPassword(password)) return ['is too common; choose a less guessable password'];
  const { score, why } = passwordStrength(password, [address, address.split('@')[0] ?? '']);
  if (score >= minScore) return [];
  return [`is too easy to guess${why ? ` (${why})` : ''}; a few unrelated words make a strong password`];
}
