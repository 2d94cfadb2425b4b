import type { Log } from '../../logger.js';

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
  | 'auth.rate_limited';

export interface AuditFields {
  userId?: string | undefined;
  sessionId?: string | undefined;
  ip?: string | undefined;
  [detail: string]: unknown;
}

/** Security events: one structured line each, never a token or a password (the logger redacts them anyway). */
export function audit(log: Log, event: AuditEvent, fields: AuditFields): void {
  const level = event === 'auth.refresh.reuse_detected' || event === 'auth.rate_limited' || event === 'auth.login.failed' ? 'warn' : 'info';
  log[level]({ audit: event, ...fields }, event);
}
