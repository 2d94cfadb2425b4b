import { createCaller } from '../../server/src/router.js';
import { type AppDeps, createContextInner, type RequestMeta } from '../../server/src/trpc/context.js';

/** Calls procedures in-process, through the same middleware and error mapping as HTTP. */
export function callerWith(deps: AppDeps, meta: Partial<RequestMeta> = {}) {
  return createCaller(createContextInner(deps, meta));
}
