/**
 * The machine-readable reasons of errors that are not any one feature's: an optimistic write that
 * lost to another (lib/versioned-write.ts) and the Idempotency-Key rules (lib/idempotency.ts,
 * trpc/init.ts). Each feature declares its own beside its code (`modules/<feature>/reasons.ts`);
 * error-reasons.ts gathers them into the union the SDK and the OpenAPI document show.
 */
export const GENERAL_REASONS = [
  /** The `version` sent is not the row's: someone changed it since it was read. */
  'STALE_VERSION',
  'INVALID_IDEMPOTENCY_KEY',
  'IDEMPOTENCY_KEY_REUSED',
  'IDEMPOTENCY_KEY_IN_PROGRESS',
  'IDEMPOTENCY_NOT_SUPPORTED',
] as const;
export type GeneralReason = (typeof GENERAL_REASONS)[number];
