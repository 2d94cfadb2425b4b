/**
 * Errors raised before any handler runs (body parsing, size, media type; the HTTP parser), in Keel's
 * vocabulary: clients see the codes they see everywhere else, never Fastify's internal ones
 * (`FST_ERR_CTP_BODY_TOO_LARGE`).
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { TRPC_ERROR_CODE_KEY } from '@trpc/server/rpc';
import { type RepeatedLineSink, RepeatedLines } from '../lib/repeats.js';

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

/** What Node's HTTP parser refused, by its error code: status, Keel code, message. */
function parserRefusal(code: string | undefined): ClientError & { status: number } {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return {
        status: 431,
        code: 'BAD_REQUEST',
        message: 'The request line and headers are too large (16 KiB in all): send large inputs in a POST body.',
      };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, code: 'TIMEOUT', message: 'The request did not arrive in time.' };
    default:
      return { status: 400, code: 'BAD_REQUEST', message: 'The request is not valid HTTP/1.1.' };
  }
}

/** One line per client address and parser error each 10 s; the rest are counted (lib/repeats.ts). */
const PARSER_REFUSAL_WINDOW_MS = 10_000;

/**
 * Fastify's clientErrorHandler: a request Node's HTTP parser refused (headers over the limit, a
 * malformed request line or header, a request too slow to arrive) never reaches a route or a hook,
 * so it gets its answer here, written on the socket: Keel's error shape and security headers
 * (Fastify's default answer had its own shape), then the connection closes, since the parser
 * cannot find where the next request would start. Logged with the client address, once per
 * address and error each window, as other refusals are; `flush` writes the open counts (on close).
 */
export function createParserRefusals(logger: RepeatedLineSink, securityHeaders: Readonly<Record<string, string>>) {
  const headerLines = Object.entries(securityHeaders)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  const lines = new RepeatedLines(PARSER_REFUSAL_WINDOW_MS);
  const handler = (error: Error & { code?: string }, socket: Socket): void => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const refusal = parserRefusal(error.code);
    const fields = { ip: socket.remoteAddress, status: refusal.status, parserError: error.code };
    lines.write(logger, 'info', `${fields.ip} ${error.code}`, fields, `request refused by the HTTP parser: ${refusal.message}`);
    if (socket.writable) {
      const body = JSON.stringify({ code: refusal.code, message: refusal.message });
      socket.write(
        `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status]}\r\n${headerLines}cache-control: no-store\r\n` +
          `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  };
  return { handler, flush: () => lines.flush() };
}
