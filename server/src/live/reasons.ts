/** Why a live stream was refused or ended, for programs (`error.data.reason`). */
export const LIVE_REASONS = [
  /** The server is shutting down, or the stream idled out: reconnect (the SDK does). */
  'LIVE_RECONNECT',
  'LIVE_IDLE',
  /** This instance has no room for another stream (LIVE_MAX_STREAMS). */
  'LIVE_STREAMS_LIMIT',
  /** The user has LIVE_MAX_STREAMS_PER_USER streams open on this instance. */
  'LIVE_STREAMS_PER_USER_LIMIT',
  /** The access token expired while streaming: refresh and reconnect with `lastEventId`. */
  'TOKEN_EXPIRED',
  /** The session was revoked or signed out: sign in again. */
  'SESSION_ENDED',
  /** The project of a `tasks.onChange` stream was deleted or handed to someone else. */
  'PROJECT_GONE',
] as const;
export type LiveReason = (typeof LIVE_REASONS)[number];
