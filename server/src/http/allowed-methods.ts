/**
 * The methods each route path answers, for the one answer a known path gives to a method it does
 * not take: 405 with `Allow` (RFC 9110, section 15.5.6), not a 404 that says the path is not there.
 * Fed by Fastify's onRoute hook; matched with find-my-way, the router Fastify itself uses, so a
 * path matches here exactly when it would match a route.
 */
import FindMyWay from 'find-my-way';

export interface AllowedMethods {
  /** Records a route (`url` as registered, with its `:params`). OPTIONS alone is not a route of its own here. */
  add(url: string, method: string | string[]): void;
  /** The methods `path` (a request path, without its query) answers, or undefined for a path no route has. */
  of(path: string): string[] | undefined;
}

export function createAllowedMethods(options: { maxParamLength: number }): AllowedMethods {
  const router = FindMyWay({ maxParamLength: options.maxParamLength });
  const byUrl = new Map<string, Set<string>>();
  return {
    add(url, method) {
      const methods = (Array.isArray(method) ? method : [method]).filter((m) => m !== 'OPTIONS');
      if (methods.length === 0) return;
      let known = byUrl.get(url);
      if (!known) {
        known = new Set();
        byUrl.set(url, known);
        router.on('GET', url, () => {}, { url });
      }
      for (const m of methods) known.add(m);
    },
    of(path) {
      const found = router.find('GET', path);
      const url = (found?.store as { url?: string } | undefined)?.url;
      const methods = url === undefined ? undefined : byUrl.get(url);
      return methods && [...methods].sort();
    },
  };
}
