import type { AppDeps } from '../../server/src/deps.js';
import type { Scope } from '../../server/src/modules/service-accounts/scopes.js';
import { callerWith } from './caller.js';
import { createUser } from './factories.js';

/** A new service account with `scopes`, created by a new admin; its credentials and id. */
export async function createServiceAccount(deps: AppDeps, scopes: Scope[], name = `svc-${Math.random().toString(36).slice(2)}`) {
  const admin = await createUser(deps, { role: 'ADMIN' });
  return deps.services.serviceAccounts.create({ name, scopes }, { userId: admin.id, ip: '127.0.0.1', log: deps.logger });
}

/** A caller acting as a new service account holding `scopes`, through a real service token. */
export async function serviceCaller(deps: AppDeps, scopes: Scope[]) {
  const account = await createServiceAccount(deps, scopes.length > 0 ? scopes : ['users:read']);
  const { token } = await deps.services.serviceTokens.issue(account, scopes);
  return callerWith(deps, { ip: '127.0.0.1', authorization: `Bearer ${token}` });
}
