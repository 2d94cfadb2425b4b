/** The error reasons of service accounts (gathered in server/src/error-reasons.ts). */
export const SERVICE_ACCOUNT_REASONS = [
  /** A service token without the scope the procedure needs (or a procedure closed to services). */
  'INSUFFICIENT_SCOPE',
  /** A change to a revoked service account. */
  'REVOKED',
] as const;
