/**
 * tRPC's SSE settings for this server: a ping on every stream each LIVE_HEARTBEAT_SECONDS (proxies
 * keep the connection, and a write to a vanished client fails and ends its stream), and the client
 * told to reconnect when it heard nothing for two and a half heartbeats.
 *
 * tRPC reads them from the router's root config on every subscription request; the router is
 * created once at import, before any config exists, so they are set here when the app is built.
 */
import type { AnyTRPCRouter } from '@trpc/server';
import type { Config } from '../config.js';

export function applySseOptions(router: AnyTRPCRouter, live: Config['live']): void {
  const root = router._def._config as { sse?: Record<string, unknown> };
  root.sse = {
    ...root.sse,
    enabled: true,
    ping: { enabled: true, intervalMs: live.heartbeatMs },
    client: { reconnectAfterInactivityMs: Math.round(live.heartbeatMs * 2.5) },
  };
}
