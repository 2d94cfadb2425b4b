import { describe, expect, it } from 'vitest';
import { afterLatest } from './engine.js';

describe('afterLatest (migration folder names stay in apply order)', () => {
  it('keeps a name that already sorts after the latest migration', () => {
    expect(afterLatest('20261126120001_b', '20261126120000_a')).toBe('20261126120001_b');
    expect(afterLatest('20261126120001_b', undefined)).toBe('20261126120001_b');
  });

  it('keeps a name of the same second whose suffix already sorts after', () => {
    expect(afterLatest('20261126120000_b', '20261126120000_a')).toBe('20261126120000_b');
  });

  it('moves a name that would sort first (same second, or a clock behind) to one second after the latest', () => {
    expect(afterLatest('20261126120000_a', '20261126120000_b')).toBe('20261126120001_a');
    expect(afterLatest('20261126115958_z', '20261126120000_a')).toBe('20261126120001_z');
  });

  it('carries over minutes, hours, days, months and years', () => {
    expect(afterLatest('20261231235959_a', '20261231235959_b')).toBe('20270101000000_a');
    expect(afterLatest('20240228235959_a', '20240228235959_b')).toBe('20240229000000_a');
  });

  it('leaves names without a timestamp alone', () => {
    expect(afterLatest('init', '20261126120000_a')).toBe('init');
  });
});
