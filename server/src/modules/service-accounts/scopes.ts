/**
 * The closed list of scopes a service account can hold, and what a procedure declares it needs
 * (`meta.scope`, checked by the one middleware in trpc/init.ts). A scope not in this list is a
 * BAD_REQUEST wherever it appears (create, update, a token request's `invalid_scope`).
 */
import { z } from 'zod';
import { AppError } from '../../lib/errors.js';

export const SCOPES = ['projects:read', 'projects:write', 'users:read'] as const;

export const scopeSchema = z.enum(SCOPES, { message: `unknown scope: expected one of ${SCOPES.join(', ')}` });
export type Scope = z.infer<typeof scopeSchema>;

export const isScope = (value: string): value is Scope => (SCOPES as readonly string[]).includes(value);

/** What a verified service token grants: carried on the caller (`ctx.user.service`). */
export interface ServiceGrant {
  accountId: string;
  clientId: string;
  scopes: Scope[];
}

/**
 * FORBIDDEN for a service token without the scope a procedure needs. The transport answers it with
 * `WWW-Authenticate: Bearer error="insufficient_scope", scope="..."` (RFC 6750 section 3.1).
 */
export class InsufficientScopeError extends AppError {
  constructor(readonly scope: Scope | undefined) {
    super(
      'FORBIDDEN',
      scope === undefined
        ? 'This procedure is not open to service accounts.'
        : `This call needs the scope ${scope}, which the token does not hold.`,
      { reason: 'INSUFFICIENT_SCOPE' },
    );
    this.name = 'InsufficientScopeError';
  }
}

/** The challenge for an InsufficientScopeError (scope-token characters need no escaping). */
export const insufficientScopeChallenge = (error: InsufficientScopeError): string =>
  error.scope === undefined
    ? 'Bearer realm="keel", error="insufficient_scope"'
    : `Bearer realm="keel", error="insufficient_scope", scope="${error.scope}"`;

/** The caller's service grant passes a procedure that needs `scope`, or InsufficientScopeError. */
export function requireScope(grant: ServiceGrant, scope: Scope | undefined): void {
  if (scope === undefined || !grant.scopes.includes(scope)) throw new InsufficientScopeError(scope);
}
