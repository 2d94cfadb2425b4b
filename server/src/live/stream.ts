/**
 * One subscription's stream: replay from `lastEventId` (or `ready`), then the hub's notices that
 * concern this stream, until the client leaves, the stream idles out, the access token expires,
 * the session is revoked, or the subscription's own rule ends it (a project gone).
 */
import { getTRPCErrorFromUnknown, type TrackedEnvelope, tracked } from '@trpc/server';
import { decodeJwt } from 'jose';
import type { Config } from '../config.js';
import { AppError } from '../lib/errors.js';
import type { Log } from '../logger.js';
import type { AuthUser } from '../modules/auth/types.js';
import { toTRPCError } from '../trpc/error-edge.js';
import type { LiveHub, LiveSubscription, Notice } from './hub.js';
import type { LiveEvent } from './schemas.js';

export interface StreamOptions<E extends LiveEvent> {
  hub: LiveHub;
  config: Config['live'];
  user: AuthUser;
  /** The request's Authorization header: the stream ends when its token expires. */
  authorization: string | undefined;
  lastEventId: string | null | undefined;
  signal: AbortSignal | undefined;
  log: Log;
  /** The event this notice means for the stream, undefined when none; throws to end the stream. */
  select(notice: Notice): E | undefined;
}

/** When the access token in `authorization` expires (ms), Infinity when it says nothing. */
function tokenExpiry(authorization: string | undefined): number {
  const token = authorization?.replace(/^Bearer\s+/i, '');
  if (!token) return Number.POSITIVE_INFINITY;
  try {
    const { exp } = decodeJwt(token);
    return typeof exp === 'number' ? exp * 1000 : Number.POSITIVE_INFINITY;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/** Ends the stream of a session that was revoked or signed out. */
export const sessionEnded = () => new AppError('UNAUTHORIZED', 'This session has ended. Sign in again.', { reason: 'SESSION_ENDED' });

function endFor(notice: Notice, user: AuthUser): void {
  if (notice.k === 's' && notice.id === user.sessionId) throw sessionEnded();
}

export async function* liveStream<E extends LiveEvent>(
  options: StreamOptions<E>,
): AsyncGenerator<TrackedEnvelope<E | Extract<LiveEvent, { type: 'ready' | 'resync' }>>> {
  const { hub, config, user, signal } = options;
  const now = () => hub.now();
  let sub: LiveSubscription | undefined;
  const expiresAt = tokenExpiry(options.authorization);
  let idleUntil = now() + config.idleTimeoutMs;
  /** The last sequence number the client has (or no longer needs). */
  let delivered = 0;
  try {
    const opened = hub.open(user);
    sub = opened;
    const select = (notice: Notice): E | undefined => {
      endFor(notice, user);
      return options.select(notice);
    };
    // A stream counts from a listening connection: opened before it, it would miss what happens meanwhile.
    if (hub.state !== 'up') await hub.whenUp(signal);
    if (signal?.aborted) return;
    if (options.lastEventId) {
      const replay = hub.since(options.lastEventId);
      if ('resync' in replay) {
        delivered = hub.seq;
        yield tracked(hub.idOf(delivered), { type: 'resync', reason: replay.resync });
      } else {
        for (const entry of replay.entries) {
          const event = select(entry.notice);
          if (event) yield tracked(hub.idOf(entry.seq), event);
        }
        delivered = replay.last;
      }
    } else {
      delivered = hub.seq;
      yield tracked(hub.idOf(delivered), { type: 'ready' });
    }
    // Notices queued while replaying (or before `ready`/`resync`) are covered already: skip them.
    const seen = (seq: number) => seq <= delivered;
    for (;;) {
      const until = Math.min(idleUntil, expiresAt);
      // Woken at least every heartbeat: the clock may have moved past a deadline meanwhile.
      const item = await opened.take(Math.min(until - now(), config.heartbeatMs), signal);
      if (signal?.aborted) return;
      if (item === undefined) {
        if (now() >= expiresAt) {
          throw new AppError('UNAUTHORIZED', 'The access token expired. Refresh it and reconnect.', { reason: 'TOKEN_EXPIRED' });
        }
        if (now() >= idleUntil) {
          options.log.debug({ userId: user.id }, 'live: idle stream closed');
          throw new AppError('SERVICE_UNAVAILABLE', 'Idle stream closed. Reconnect.', { reason: 'LIVE_IDLE', retryAfterSeconds: 1 });
        }
        continue;
      }
      if ('closed' in item) {
        throw new AppError('SERVICE_UNAVAILABLE', 'This server is shutting down. Reconnect.', {
          reason: 'LIVE_RECONNECT',
          retryAfterSeconds: 1,
        });
      }
      if ('resync' in item) {
        delivered = hub.seq;
        idleUntil = now() + config.idleTimeoutMs;
        yield tracked(hub.idOf(delivered), { type: 'resync', reason: item.resync });
        continue;
      }
      if (seen(item.seq)) continue;
      const event = select(item.notice);
      if (!event) continue;
      idleUntil = now() + config.idleTimeoutMs;
      yield tracked(hub.idOf(item.seq), event);
    }
  } catch (error) {
    // Errors thrown here reach no middleware: map them as the pipeline does (typed code and reason).
    throw toTRPCError(getTRPCErrorFromUnknown(error));
  } finally {
    sub?.close();
  }
}
