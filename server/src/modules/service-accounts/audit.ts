import type { Log } from '../../logger.js';

export type ServiceAuditEvent =
  | 'service_account.created'
  | 'service_account.updated'
  | 'service_account.secret_rotated'
  | 'service_account.revoked'
  | 'service_account.token_issued'
  | 'service_account.token_refused';

/** One structured line per change or refusal, in the shape of auth/audit.ts; never a secret or a token. */
export function auditService(log: Log, event: ServiceAuditEvent, fields: Record<string, unknown>): void {
  const level = event === 'service_account.token_refused' ? 'warn' : 'info';
  log[level]({ audit: event, ...fields }, event);
}
