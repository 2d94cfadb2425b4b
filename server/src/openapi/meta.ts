import type { OpenApiMeta, OpenApiMethod } from 'trpc-to-openapi';

export interface RestOptions {
  /** Callable without a bearer token (the spec then lists no security requirement). */
  public?: boolean;
  /** Error statuses beyond those derived from the procedure's shape (see document.ts). */
  errors?: number[];
}

/**
 * The `meta` that puts a procedure on the REST surface under /api, tagged `tag` in the spec:
 * `.meta(rest('GET', '/projects/{id}', 'One project'))`. Path parameters name input fields.
 */
export function restMeta(tag: string) {
  return (method: OpenApiMethod, path: `/${string}`, summary: string, options: RestOptions = {}): OpenApiMeta => ({
    openapi: {
      method,
      path,
      summary,
      tags: [tag],
      protect: options.public !== true,
      ...(options.errors === undefined ? {} : { errorResponses: options.errors }),
    },
  });
}
