/**
 * Why an account procedure refused (`error.data.reason`): two-factor sign-in, sign-in with a
 * provider, the verified-email rule. LAST_ADMIN (deletion of the last admin) is the users module's.
 */
export const ACCOUNT_REASONS = [
  /** REQUIRE_VERIFIED_EMAIL is on and the email is not verified yet (FORBIDDEN). */
  'EMAIL_NOT_VERIFIED',
  /** The sign-in challenge expired, was used, or saw 5 wrong codes: sign in again (UNAUTHORIZED). */
  'TWO_FACTOR_CHALLENGE_INVALID',
  /** A wrong, reused or missing code of the authenticator app, or a used recovery code (BAD_REQUEST). */
  'INVALID_TWO_FACTOR_CODE',
  'TWO_FACTOR_ALREADY_ENABLED',
  'TWO_FACTOR_NOT_SET_UP',
  'TWO_FACTOR_NOT_ENABLED',
  /** A provider sign-in whose state is unknown, used or expired: start again (UNAUTHORIZED). */
  'OIDC_STATE_INVALID',
  /** The provider refused the code, or its ID token failed a check (UNAUTHORIZED). */
  'OIDC_EXCHANGE_FAILED',
  /** The provider's email belongs to an account: sign in to it and link the provider there (CONFLICT). */
  'OIDC_ACCOUNT_EXISTS',
  /** The provider did not verify the email, so no account is made (FORBIDDEN). */
  'OIDC_EMAIL_NOT_VERIFIED',
  /** The provider account is linked to another Keel account (CONFLICT). */
  'OIDC_IDENTITY_TAKEN',
] as const;
export type AccountReason = (typeof ACCOUNT_REASONS)[number];
