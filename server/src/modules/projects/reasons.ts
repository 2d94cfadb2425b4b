/** Why a project (or its tasks) refused a change, for programs (`error.data.reason`). */
export const PROJECT_REASONS = [
  /** The project is archived: neither it nor its tasks change any more. */
  'ARCHIVED',
] as const;
export type ProjectReason = (typeof PROJECT_REASONS)[number];
