import type { Log } from '../../logger.js';
import { hooks } from '../../observability/hooks.js';

export type AuditEvent =
  | 'auth.register'
  | 'auth.login.succeeded'
  | 'auth.login.failed'
  | 'auth.login.deactivated'
  | 'auth.refresh.reuse_detected'
  | 'auth.logout'
  | 'auth.sessions.revoked'
  | 'auth.password.changed'
  | 'auth.password.reset_requested'
  | 'auth.password.reset'
  | 'auth.email.verified'
  | 'auth.rate_limited'
  | 'auth.shed'
  | 'auth.access_token.rejected'
  | 'auth.token.invalid';

export interface AuditFields {
  userId?: string | undefined;
  sessionId?: string | undefined;
  ip?: string | undefined;
  [detail: string]: unknown;
}

/** Events an operator should see at the default level; an expired access token is routine (info). */
const WARN = new Set<AuditEvent>(['auth.refresh.reuse_detected', 'auth.rate_limited', 'auth.login.failed', 'auth.shed']);

/** Security events: one structured line each, never a token or a password (the logger redacts them anyway). */
export function audit(log: Log, event: AuditEvent, fields: AuditFields): void {
  const level = WARN.has(event) ? 'warn' : 'info';
  log[level]({ audit: event, ...fields }, event);
  hooks.audit?.(event, fields);
}
