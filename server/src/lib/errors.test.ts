import { describe, expect, it } from 'vitest';
import { AppError } from './errors.js';

describe('AppError', () => {
  it('captures no stack for a refusal the caller caused, and a full one for a fault', () => {
    const limit = Error.stackTraceLimit;
    const refusal = new AppError('TOO_MANY_REQUESTS', 'Slow down.', { retryAfterSeconds: 1 });
    expect(refusal.stack).toBe('AppError: Slow down.');
    const fault = new AppError('INTERNAL', 'Broken.');
    expect(fault.stack).toMatch(/^AppError: Broken\.\n\s+at /);
    expect(new AppError('SERVICE_UNAVAILABLE', 'Away.').stack).toContain('\n    at ');
    // The process-wide limit is left as it was, for every other error.
    expect(Error.stackTraceLimit).toBe(limit);
    expect(new Error('plain').stack).toContain('\n    at ');
  });
});
