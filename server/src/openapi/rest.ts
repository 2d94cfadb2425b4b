/**
 * The REST routes: one Fastify route per procedure with `meta.openapi`, calling the procedure
 * through tRPC itself (`callTRPCProcedure`), so the same middleware, validation, error mapping and
 * error formatter run as on /trpc. Only the envelope differs: plain JSON in and out, and errors as
 * `{ code, message, fieldErrors?, requestId }` with the HTTP status of their code.
 *
 * trpc-to-openapi's own handler is not used: it makes the procedures' zod schemas coercing by
 * mutating them (a query `?flag=false` parses as `true`, and the tRPC API accepts strings for
 * numbers and booleans from then on), and its error bodies carry zod's raw issues.
 */

import { type AnyRouter, callTRPCProcedure, getTRPCErrorFromUnknown, type TRPCError } from '@trpc/server';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { forEachOpenApiProcedure, getInputOutputParsers, unwrapZodType } from 'trpc-to-openapi';
import { z } from 'zod';
import type { AppDeps } from '../deps.js';
import { beforeHandlerError } from '../http/client-errors.js';
import { contextFor } from '../http/request-facts.js';
import { describeError, logProcedureError } from '../trpc/error-edge.js';
import type { Meta } from '../trpc/init.js';
import { inputProblem, MAX_INPUT_DEPTH, malformedInput } from '../trpc/transformer.js';
import { REST_PREFIX, type RestErrorBody } from './document.js';

/** Keel's Fastify host. */
export type Host = FastifyInstance;
type QueryValue = string | string[] | undefined;

const ISO_DATE_TIME = z.iso.datetime({ offset: true });

/** How a query string value becomes the type its input field expects, by the field's zod type. */
const FROM_QUERY: Partial<Record<string, (value: string) => unknown>> = {
  number: (value) => (/^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value),
  boolean: (value) => (value === 'true' ? true : value === 'false' ? false : value),
  // Only what the document promises (ISO 8601 date-time with an offset): Date.parse would also
  // take `1` (2001-01-01) or a time without zone (read in the server's zone).
  date: (value) => (ISO_DATE_TIME.safeParse(value).success ? new Date(value) : value),
};

/**
 * Query strings carry only strings: numbers, booleans and dates are converted by the input
 * schema's field types, strictly (`?limit=ten` stays a string and fails validation as it should).
 * The schemas are read, never changed.
 */
function queryConverter(inputParser: z.core.$ZodType) {
  const schema = unwrapZodType(inputParser, true);
  const shape = schema._zod.def.type === 'object' ? (schema as z.ZodObject)._zod.def.shape : {};
  const converters = new Map<string, (value: string) => unknown>();
  for (const [key, field] of Object.entries(shape)) {
    const convert = FROM_QUERY[unwrapZodType(field, true)._zod.def.type];
    if (convert) converters.set(key, convert);
  }
  return (query: Record<string, QueryValue>): Record<string, unknown> => {
    const input: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(query)) {
      const convert = converters.get(key);
      input[key] = convert && typeof value === 'string' ? convert(value) : value;
    }
    return input;
  };
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The REST envelope of the error edge's answer (trpc/error-edge.ts), the same answer /trpc gives. */
function sendError(reply: FastifyReply, error: TRPCError, production: boolean, requestId: string): FastifyReply {
  const answer = describeError(error, { production, requestId });
  reply.status(answer.status).headers(answer.headers);
  const body: RestErrorBody = {
    code: answer.code,
    message: answer.message,
    ...(answer.reason === undefined ? {} : { reason: answer.reason }),
    ...(answer.fieldErrors === undefined ? {} : { fieldErrors: answer.fieldErrors }),
    requestId,
  };
  return reply.send(body);
}

/** Registers the REST routes of `router` on `api` (mounted under the REST prefix). */
export function registerRestRoutes(api: FastifyInstance, deps: AppDeps, router: AnyRouter): void {
  // JSON only: Fastify would otherwise hand a text/plain body to the procedure as a string.
  api.removeContentTypeParser('text/plain');
  // Plain JSON.parse, as tRPC's route: a `__proto__` key then reaches the input check below and is
  // refused in the same words on both surfaces (Fastify's parser refused it as "not valid JSON").
  api.removeContentTypeParser('application/json');
  api.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, JSON.parse(body as string));
    } catch {
      done(Object.assign(new Error('The request body is not valid JSON.'), { statusCode: 400 }), undefined);
    }
  });
  api.setErrorHandler<FastifyError>((error, req, reply) => {
    const known = beforeHandlerError(error.statusCode);
    // Anything else goes on to the host's handler, which hides unexpected errors.
    if (!known) throw error;
    const body: RestErrorBody = { ...known, requestId: req.id };
    return reply
      .status(error.statusCode ?? 400)
      .header('cache-control', 'no-store')
      .send(body);
  });

  forEachOpenApiProcedure<Meta>(router._def.procedures, ({ path, type, procedure, meta: { openapi, restCreated } }) => {
    if (type === 'subscription') return;
    const inQuery = openapi.method === 'GET' || openapi.method === 'DELETE';
    const fromQuery = queryConverter(getInputOutputParsers(procedure).inputParser);

    api.route({
      method: openapi.method,
      url: openapi.path.replace(/\{(\w+)\}/g, ':$1'),
      handler: async (req, reply) => {
        const params = req.params as Record<string, string>;
        const source = inQuery ? fromQuery(req.query as Record<string, QueryValue>) : req.body;
        // Path parameters win over the same names in the body or query (the document lists them only as path parameters).
        const input = isPlainObject(source) ? { ...source, ...params } : (source ?? (Object.keys(params).length > 0 ? params : undefined));
        let ctx: ReturnType<typeof contextFor> | undefined;
        try {
          // Bearer auth only: the refresh cookie is for the tRPC API's browsers.
          ctx = contextFor(deps, req, reply, { calls: 1, cookies: false, procedure: path });
          const data: unknown = await callTRPCProcedure({
            router,
            path,
            type,
            ctx,
            getRawInput: async () => {
              const problem = inputProblem(input, MAX_INPUT_DEPTH);
              if (problem !== undefined) throw malformedInput(problem);
              return input;
            },
            signal: undefined,
            batchIndex: 0,
          });
          if (ctx.request.replayed) reply.header('idempotent-replayed', 'true');
          const id = restCreated && isPlainObject(data) && typeof data.id === 'string' ? data.id : undefined;
          if (restCreated && id !== undefined) {
            reply.status(201).header('location', `${REST_PREFIX}${restCreated.replace('{id}', encodeURIComponent(id))}`);
          }
          return reply.header('cache-control', 'no-store').send(data);
        } catch (cause) {
          const error: TRPCError = getTRPCErrorFromUnknown(cause);
          logProcedureError(ctx?.log ?? req.log, error, path);
          // Without a context (it failed to build) the mode is unknown: production, as the tRPC formatter assumes.
          return sendError(reply, error, ctx?.config.isProduction ?? true, req.id);
        }
      },
    });
  });
}
