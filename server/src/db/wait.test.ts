import { describe, expect, it } from 'vitest';
import { redactUrl } from './wait.js';

describe('redactUrl (the database URL as logs show it)', () => {
  it('hides the password, in the user part or as a query parameter', () => {
    expect(redactUrl('postgresql://app:s3cret@db.internal:5432/app')).toBe('postgresql://app:***@db.internal:5432/app');
    expect(redactUrl('postgresql://app@db.internal/app?password=s3cret&sslmode=require')).toBe(
      'postgresql://app@db.internal/app?password=***&sslmode=require',
    );
    expect(redactUrl('not a url')).toBe('(unparseable database URL)');
  });
});
