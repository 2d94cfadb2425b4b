import { describe, expect, it } from 'vitest';
import { passwordProblems, passwordStrength } from './password-policy.js';

describe('password policy', () => {
  it('refuses a keyboard walk the common-password list does not hold, saying why', () => {
    expect(passwordProblems('qwertyuiopas', 'ann@example.test', 3)).toEqual([
      'is too easy to guess (it is close to a commonly used password); a few unrelated words make a strong password',
    ]);
  });

  it('keeps the earlier rules: not the email, not a common password (one message each)', () => {
    expect(passwordProblems(' ANN@example.test', 'ann@example.test', 3)).toEqual(['must not be your email address']);
    expect(passwordProblems('password1', 'ann@example.test', 3)).toEqual(['is too common; choose a less guessable password']);
  });

  it('counts the email as something an attacker knows', () => {
    expect(passwordStrength('annsmith2026', ['annsmith@example.test', 'annsmith']).score).toBeLessThan(
      passwordStrength('annsmith2026', []).score,
    );
  });

  it('scores patterns, not character classes: a passphrase of plain words passes, Password1! does not', () => {
    expect(passwordProblems('lantern orbit pickle drum', 'ann@example.test', 3)).toEqual([]);
    expect(passwordProblems('correct-horse-battery-staple', 'ann@example.test', 4)).toEqual([]);
    expect(passwordProblems('Password1!', 'ann@example.test', 3)).not.toEqual([]);
  });

  it('takes the floor from the configuration', () => {
    expect(passwordProblems('qwertyuiopas', 'ann@example.test', 1)).toEqual([]);
    expect(passwordProblems('qwertyuiopas', 'ann@example.test', 0)).toEqual([]);
  });

  it('estimates long inputs on their first 64 characters: a repeated weak pattern stays weak', () => {
    expect(passwordProblems('passw0rd'.repeat(16), 'ann@example.test', 3)).not.toEqual([]);
    expect(passwordProblems(`${'lantern orbit pickle drum '.repeat(4)}x`, 'ann@example.test', 3)).toEqual([]);
  });
});
