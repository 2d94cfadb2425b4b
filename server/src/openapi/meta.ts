import type { OpenApiMethod } from 'trpc-to-openapi';
import type { Meta } from '../trpc/init.js';

export interface RestOptions {
  /** Callable without a bearer token (the spec then lists no security requirement). */
  public?: boolean;
  /** Error statuses beyond those derived from the procedure's shape (see document.ts). */
  errors?: number[];
  /**
   * A create: the path of the new resource, `{id}` standing for the answer's `id`
   * (`'/projects/{id}'`). REST then answers 201 Created with `Location: /api/projects/<id>`.
   */
  created?: NonNullable<Meta['restCreated']>;
}

/**
 * The `meta` that puts a procedure on the REST surface under /api, tagged `tag` in the spec:
 * `.meta(rest('GET', '/projects/{id}', 'One project'))`. Path parameters name input fields.
 */
export function restMeta(tag: string) {
  return (method: OpenApiMethod, path: `/${string}`, summary: string, options: RestOptions = {}): Meta => ({
    openapi: {
      method,
      path,
      summary,
      tags: [tag],
      protect: options.public !== true,
      ...(options.errors === undefined ? {} : { errorResponses: options.errors }),
    },
    ...(options.created === undefined ? {} : { restCreated: options.created }),
  });
}
