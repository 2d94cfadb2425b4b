/** Why an administration change was refused, for programs (`error.data.reason`). */
export const USER_REASONS = [
  /** The change would leave no active admin. */
  'LAST_ADMIN',
] as const;
export type UserReason = (typeof USER_REASONS)[number];
