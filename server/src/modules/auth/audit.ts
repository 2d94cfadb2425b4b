import { RepeatedLines } from '../../lib/repeats.js';
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
  | 'auth.token.invalid'
  // Accounts (two-factor sign-in, deletion, export): docs/decisions/0021-accounts.md
  | 'auth.two_factor.setup'
  | 'auth.two_factor.enabled'
  | 'auth.two_factor.disabled'
  | 'auth.two_factor.recovery_codes_regenerated'
  | 'auth.two_factor.challenged'
  | 'auth.two_factor.failed'
  | 'auth.two_factor.succeeded'
  | 'auth.account.deleted'
  | 'auth.account.exported'
  | 'auth.oidc.signed_in'
  | 'auth.oidc.failed'
  | 'auth.oidc.linked'
  | 'auth.oidc.unlinked';

export interface AuditFields {
  userId?: string | undefined;
  sessionId?: string | undefined;
  ip?: string | undefined;
  [detail: string]: unknown;
}

/** Events an operator should see at the default level; an expired access token is routine (info). */
const WARN = new Set<AuditEvent>([
  'auth.refresh.reuse_detected',
  'auth.rate_limited',
  'auth.login.failed',
  'auth.shed',
  'auth.two_factor.failed',
]);

/**
 * Refusals a client can provoke once per request, as fast as it sends them (a flood of sign-ins
 * past the hashing queue or a limit, of bad tokens): per event, address, user and operation, the
 * first of each 10 s is written in full, the rest counted and written as one line with
 * `repeated` when the window ends (lib/repeats.ts). Metrics still count every one.
 */
const REPEATING = new Set<AuditEvent>(['auth.shed', 'auth.rate_limited', 'auth.access_token.rejected']);
const AUDIT_REPEAT_WINDOW_MS = 10_000;
const repeated = new RepeatedLines(AUDIT_REPEAT_WINDOW_MS);

/** Security events: one structured line each, never a token or a password (the logger redacts them anyway). */
export function audit(log: Log, event: AuditEvent, fields: AuditFields): void {
  hooks.audit?.(event, fields);
  const level = WARN.has(event) ? 'warn' : 'info';
  if (REPEATING.has(event)) {
    const key = `${event} ${fields.ip ?? ''} ${fields.userId ?? ''} ${String(fields.operation ?? fields.limit ?? fields.reason ?? '')}`;
    repeated.write(log, level, key, { audit: event, ...fields }, event);
    return;
  }
  log[level]({ audit: event, ...fields }, event);
}

/** Writes the summaries of every open window now (a stopping process, tests). */
export function flushAuditRepeats(): void {
  repeated.flush();
}
