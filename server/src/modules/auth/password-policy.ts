import { dictionary } from '@zxcvbn-ts/language-common';
import { z } from 'zod';

let common: Set<string> | undefined;

/** One of ~49,000 common passwords (zxcvbn-ts' maintained list), case-insensitively. */
export function isCommonPassword(password: string): boolean {
  common ??= new Set(dictionary['passwords-common']);
  return common.has(password.toLowerCase());
}

/** Length per OWASP ASVS: at least 8, and long passphrases allowed (128). */
export const passwordSchema = z
  .string()
  .min(8, { message: 'must be at least 8 characters' })
  .max(128, { message: 'must be at most 128 characters' });

/** The rules that need more than the password itself. Messages are per-field, for the client. */
export function passwordProblems(password: string, email: string): string[] {
  const problems: string[] = [];
  if (password.trim().toLowerCase() === email.trim().toLowerCase()) problems.push('must not be your email address');
  if (isCommonPassword(password)) problems.push('is too common; choose a less guessable password');
  return problems;
}
