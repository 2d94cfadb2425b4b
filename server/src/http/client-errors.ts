/**
 * Errors Fastify raises before any handler runs (body parsing, size, media type), in Keel's
 * vocabulary: clients see the codes they see everywhere else, never Fastify's internal ones
 * (`FST_ERR_CTP_BODY_TOO_LARGE`).
 */
import type { TRPC_ERROR_CODE_KEY } from '@trpc/server/rpc';

interface ClientError {
  code: TRPC_ERROR_CODE_KEY;
  message: string;
}

const BEFORE_HANDLER: Record<number, ClientError> = {
  400: { code: 'BAD_REQUEST', message: 'The request body is not valid JSON.' },
  413: { code: 'PAYLOAD_TOO_LARGE', message: 'The request body is too large.' },
  415: { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Send the request body as application/json.' },
};

/** The code and message for a 4xx that Fastify raised; undefined when it is not one of them. */
export function beforeHandlerError(status: number | undefined): ClientError | undefined {
  return status === undefined ? undefined : BEFORE_HANDLER[status];
}
