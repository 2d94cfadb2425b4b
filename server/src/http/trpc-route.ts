/**
 * tRPC's HTTP protocol served by one Fastify route, without the Fetch API.
 *
 * tRPC's own Fastify adapter turns every request into a WHATWG `Request` (URL, Headers,
 * AbortSignals, a body stream) and every answer into a `Response` that Fastify then pumps as a
 * chunked stream: for a cheap authenticated query that conversion cost more CPU than the query
 * (docs/decisions/0011-request-path.md). This route reads the request Fastify has already parsed,
 * calls the procedures as tRPC's resolver does, and sends one JSON string with a Content-Length.
 *
 * It answers what tRPC 11's `resolveResponse` answers (status, body, headers) for queries and
 * mutations, single or batched, GET and POST, and every error on the way; a compatibility test
 * (tests/http/trpc-compat.test.ts) drives both with the real `@trpc/client` links and compares
 * them byte for byte. Deliberate differences, each a fix or harmless: every JSON answer says
 * `application/json; charset=utf-8` (tRPC's early errors said text/plain; Fastify names the
 * charset of every JSON it sends), `Vary` keeps the CORS `Origin`, and
 * methods tRPC cannot parse (TRACE) answer 405 instead of 500. Streaming (httpBatchStreamLink's
 * `trpc-accept: application/jsonl`), subscriptions and multipart bodies go to tRPC's own handler,
 * as does everything when `TRPC_ADAPTER=standard`.
 *
 * Tracks tRPC's `unstable-core-do-not-import/http/resolveResponse.ts` as of 11.25: the version is
 * pinned in package.json, and the compatibility test is the check to run when it moves.
 */
import { type AnyTRPCProcedure, type AnyTRPCRouter, getTRPCErrorFromUnknown, getTRPCErrorShape, TRPCError } from '@trpc/server';
import { type FastifyTRPCPluginOptions, fastifyRequestHandler } from '@trpc/server/adapters/fastify';
import { getHTTPStatusCode } from '@trpc/server/http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Context } from '../trpc/context.js';
import { beforeHandlerError } from './client-errors.js';

type ProcedureType = 'query' | 'mutation' | 'subscription';
type CallType = ProcedureType | 'unknown';
type ErrorShape = ReturnType<typeof getTRPCErrorShape>;

export interface TrpcRouteOptions {
  router: AnyTRPCRouter;
  maxBatchSize: number;
  /** `keel`: this route; `standard`: tRPC's own Fastify adapter for every request (kept for one release). */
  adapter: 'keel' | 'standard';
  /** The context of a request carrying calls to `paths`. May throw: every call then fails with that error. */
  createContext(req: FastifyRequest, reply: FastifyReply, paths: readonly string[]): Context;
  /** Headers of an answer carrying these errors (none for a success) beyond the protocol's own. */
  responseHeaders(errors: readonly TRPCError[]): Record<string, string>;
  onError(opts: { error: TRPCError; path: string | undefined; ctx: Context | undefined; req: FastifyRequest }): void;
}

/** Which methods each procedure type accepts (tRPC without method override). */
const ACCEPTED: Record<ProcedureType, string> = { query: 'GET', mutation: 'POST', subscription: 'GET' };
/** Methods tRPC's Fetch-API request can carry; anything else (TRACE) is refused before parsing. */
const PARSED_METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const PROTOCOL_VARY = 'trpc-accept, accept';

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** tRPC decodes the path segment once more after the router has (a literal `%` must be `%2525`). */
function decodePath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch (cause) {
    throw new TRPCError({ code: 'BAD_REQUEST', message: `Invalid URL-encoding in path "${path}"`, cause });
  }
}

/** The media type without parameters, lower-cased (media types are case-insensitive). */
function mediaType(req: FastifyRequest): string | undefined {
  return req.headers['content-type']?.toLowerCase().split(';', 1)[0]?.trim();
}

/** tRPC's `trpc-accept`, or `application/jsonl` named among the `accept` header's types. */
function acceptHeader(req: FastifyRequest): string | null {
  const trpcAccept = req.headers['trpc-accept'];
  if (typeof trpcAccept === 'string') return trpcAccept;
  return req.headers.accept?.split(',').some((t) => t.trim() === 'application/jsonl') ? 'application/jsonl' : null;
}

/**
 * A query parameter of the protocol (`input`, `batch`), refused when repeated: tRPC's adapter takes
 * the first, while a cache or proxy in front may take the last, so one request could mean two
 * things (parameter pollution; the same rule as for two Authorization headers).
 */
function singleQueryValue(query: Record<string, unknown>, name: 'input' | 'batch'): string | undefined {
  const value = query[name];
  if (Array.isArray(value))
    throw new TRPCError({ code: 'BAD_REQUEST', message: `Send the query parameter ${name} once, not several times.` });
  return typeof value === 'string' ? value : undefined;
}

/**
 * The calls' inputs, parsed and deserialised on first read (as tRPC's memo does): a procedure
 * without input never pays for it, and a malformed input fails the calls that read it.
 */
class Inputs {
  #values: Record<number, unknown> | undefined;
  #error: TRPCError | undefined;

  constructor(
    private readonly raw: string | undefined,
    private readonly batch: boolean,
    private readonly count: number,
    private readonly deserialize: (value: unknown) => unknown,
  ) {}

  async read(index: number): Promise<unknown> {
    if (this.#values === undefined && this.#error === undefined) {
      try {
        this.#values = this.#parse();
      } catch (cause) {
        this.#error =
          cause instanceof TRPCError
            ? cause
            : new TRPCError({ code: 'BAD_REQUEST', message: cause instanceof Error ? cause.message : 'Invalid input', cause });
      }
    }
    if (this.#error) throw this.#error;
    return this.#values?.[index];
  }

  /** The input of call `index` if it was read (for error shapes and logs). */
  result(index: number): unknown {
    return this.#values?.[index];
  }

  #parse(): Record<number, unknown> {
    const parsed: unknown = this.raw ? JSON.parse(this.raw) : undefined;
    const values: Record<number, unknown> = {};
    if (parsed === undefined) return values;
    if (!this.batch) {
      values[0] = this.deserialize(parsed);
      return values;
    }
    if (!isObject(parsed)) throw new TRPCError({ code: 'BAD_REQUEST', message: '"input" needs to be an object when doing a batch call' });
    for (let i = 0; i < this.count; i++) {
      const input = parsed[i];
      if (input !== undefined) values[i] = this.deserialize(input);
    }
    return values;
  }
}

interface Call {
  index: number;
  path: string;
  procedure: AnyTRPCProcedure | undefined;
}

/** What a request asks for, or the error that stops it before any procedure runs. */
interface RequestInfo {
  batch: boolean;
  calls: Call[];
  type: CallType;
  accept: string | null;
  /** The `input` query parameter (a GET's inputs). */
  queryInput: string | undefined;
}

type Outcome = { ok: true; data: unknown } | { ok: false; error: TRPCError };

export async function registerTrpcRoute(app: FastifyInstance, prefix: string, options: TrpcRouteOptions): Promise<void> {
  const { router } = options;
  const config = router._def._config;
  const procedures = router._def.procedures as Record<string, AnyTRPCProcedure | undefined>;
  if (Object.keys(router._def.lazy).length > 0) throw new Error('trpc-route: lazy routers are not supported; mount them eagerly');
  const serialize = (value: unknown): unknown => config.transformer.output.serialize(value);
  const deserialize = (value: unknown): unknown => config.transformer.input.deserialize(value);

  const standard = (req: FastifyRequest, reply: FastifyReply, path: string) =>
    fastifyRequestHandler({
      router,
      req,
      res: reply,
      path,
      maxBatchSize: options.maxBatchSize,
      createContext: ({ req, res, info }) =>
        options.createContext(
          req,
          res,
          info.calls.map((call) => call.path),
        ),
      responseMeta: ({ errors }) => ({ headers: options.responseHeaders(errors) }),
      onError: ({ error, path, ctx, req }) => options.onError({ error, path, ctx, req }),
    } satisfies FastifyTRPCPluginOptions<AnyTRPCRouter>['trpcOptions'] & Record<string, unknown>);

  /** What the request asks for, as tRPC's JSON content handler reads it; throws its errors. */
  function requestInfo(req: FastifyRequest, rawPath: string): RequestInfo {
    const path = decodePath(rawPath);
    const query = req.query as Record<string, unknown>;
    const batch = singleQueryValue(query, 'batch') === '1';
    const paths = batch ? path.split(',') : [path];
    if (batch && paths.length > options.maxBatchSize)
      throw new TRPCError({ code: 'BAD_REQUEST', message: 'Batch call exceeds maximum size' });
    let type: CallType = 'unknown';
    const calls = paths.map((callPath, index): Call => {
      const procedure = procedures[callPath];
      const callType = procedure?._def.type as ProcedureType | undefined;
      if (callType !== undefined) {
        if (type !== 'unknown' && type !== callType) {
          const types = new Set(paths.map((p) => procedures[p]?._def.type).filter(Boolean));
          throw new TRPCError({ code: 'BAD_REQUEST', message: `Cannot mix procedure types in call: ${Array.from(types).join(', ')}` });
        }
        type = callType;
      }
      return { index, path: callPath, procedure };
    });
    return { batch, calls, type, accept: acceptHeader(req), queryInput: singleQueryValue(query, 'input') };
  }

  /** One answer: its JSON text, the protocol's headers, the transport's headers for these errors. */
  function send(reply: FastifyReply, status: number, body: string, errors: readonly TRPCError[], ctx?: Context): FastifyReply {
    reply.code(status);
    // A mutation's stored answer, sent again for its Idempotency-Key (trpc/init.ts).
    if (ctx?.request.replayed) reply.header('idempotent-replayed', 'true');
    const vary = reply.getHeader('vary');
    reply.header('vary', typeof vary === 'string' && vary !== '' ? `${vary}, ${PROTOCOL_VARY}` : PROTOCOL_VARY);
    reply.header('content-type', 'application/json');
    const extra = options.responseHeaders(errors);
    for (const name in extra) reply.header(name, extra[name]);
    return reply.send(body);
  }

  function errorShape(error: TRPCError, ctx: Context | undefined, type: CallType, path: string | undefined, input: unknown): ErrorShape {
    return getTRPCErrorShape({ config, error, type, path, input, ctx });
  }

  /** An error that stopped the request before (or outside) its calls: one error answer. */
  function sendRequestError(req: FastifyRequest, reply: FastifyReply, cause: unknown, ctx: Context | undefined, type: CallType) {
    const error = getTRPCErrorFromUnknown(cause);
    options.onError({ error, path: undefined, ctx, req });
    const shape = errorShape(error, ctx, type, undefined, undefined);
    return send(reply, getHTTPStatusCode({ error: shape }, [error]), JSON.stringify({ error: serialize(shape) }), [error]);
  }

  async function handle(req: FastifyRequest<{ Params: { path: string } }>, reply: FastifyReply) {
    const method = req.method;
    if (method === 'HEAD') return reply.code(204).send();
    if (options.adapter === 'standard') return standard(req, reply, req.params.path);
    if (!PARSED_METHODS.has(method)) {
      reply.header('allow', 'GET, POST');
      return sendRequestError(
        req,
        reply,
        new TRPCError({ code: 'METHOD_NOT_SUPPORTED', message: `Unsupported ${method}-request` }),
        undefined,
        'unknown',
      );
    }
    const media = mediaType(req);
    if (media === 'multipart/form-data') return standard(req, reply, req.params.path);
    if (media !== 'application/json' && method !== 'GET') {
      const message =
        req.headers['content-type'] === undefined
          ? 'Missing content-type header'
          : `Unsupported content-type "${req.headers['content-type']}`;
      return sendRequestError(req, reply, new TRPCError({ code: 'UNSUPPORTED_MEDIA_TYPE', message }), undefined, 'unknown');
    }

    let info: RequestInfo;
    try {
      info = requestInfo(req, req.params.path);
    } catch (cause) {
      return sendRequestError(req, reply, cause, undefined, 'unknown');
    }
    if (info.type === 'subscription' && method !== 'GET') {
      // tRPC's handler would open an event stream (200) only to send this error down it.
      reply.header('allow', 'GET');
      const error = new TRPCError({
        code: 'METHOD_NOT_SUPPORTED',
        message: `Unsupported ${method}-request to a subscription: open it with GET`,
      });
      return sendRequestError(req, reply, error, undefined, 'subscription');
    }
    if (info.type === 'subscription' || (info.batch && info.accept === 'application/jsonl')) return standard(req, reply, req.params.path);
    if (!info.batch && info.accept === 'application/jsonl') {
      const error = new TRPCError({ code: 'BAD_REQUEST', message: 'Streaming requests must be batched (you can do a batch of 1)' });
      return sendRequestError(req, reply, error, undefined, info.type);
    }

    let ctx: Context | undefined;
    let ctxError: unknown;
    try {
      ctx = options.createContext(
        req,
        reply,
        info.calls.map((call) => call.path),
      );
    } catch (cause) {
      ctxError = cause;
    }
    const raw = method === 'GET' ? info.queryInput : (req.body as string | undefined);
    const inputs = new Inputs(raw, info.batch, info.calls.length, deserialize);

    const run = async (call: Call): Promise<Outcome> => {
      try {
        if (ctxError !== undefined) throw ctxError;
        const { procedure } = call;
        if (!procedure) throw new TRPCError({ code: 'NOT_FOUND', message: `No procedure found on path "${call.path}"` });
        const type = procedure._def.type as ProcedureType;
        if (ACCEPTED[type] !== method) {
          reply.header('allow', ACCEPTED[type]);
          throw new TRPCError({
            code: 'METHOD_NOT_SUPPORTED',
            message: `Unsupported ${method}-request to ${type} procedure at path "${call.path}"`,
          });
        }
        const data: unknown = await procedure({
          path: call.path,
          type,
          ctx,
          getRawInput: () => inputs.read(call.index),
          signal: undefined,
          batchIndex: call.index,
        });
        return { ok: true, data };
      } catch (cause) {
        const error = getTRPCErrorFromUnknown(cause);
        options.onError({ error, path: call.path, ctx, req });
        return { ok: false, error };
      }
    };

    const itemOf = (call: Call, outcome: Outcome) =>
      outcome.ok
        ? { result: { data: outcome.data } }
        : {
            error: errorShape(
              outcome.error,
              ctx,
              (call.procedure?._def.type as ProcedureType | undefined) ?? 'unknown',
              call.path,
              inputs.result(call.index),
            ),
          };
    /**
     * A batch item's JSON text: what JSON.stringify writes for `{ result: { data } }` with the data
     * serialised, assembled around the data's own text, so that the identical answers of a batch
     * (shared queries return one object) are serialised once.
     */
    const texts = new Map<unknown, string>();
    const textOf = (item: ReturnType<typeof itemOf>): string => {
      if ('error' in item) return JSON.stringify({ error: serialize(item.error) });
      const { data } = item.result;
      let text = texts.get(data);
      if (text === undefined) {
        text = JSON.stringify(serialize(data));
        if (typeof data === 'object' && data !== null) texts.set(data, text);
      }
      return `{"result":{"data":${text}}}`;
    };

    try {
      if (!info.batch) {
        const call = info.calls[0] as Call;
        const outcome = await run(call);
        if (outcome.ok && isDataStream(outcome.data)) throw streamInPlainRequest();
        const item = itemOf(call, outcome);
        const errors = outcome.ok ? [] : [outcome.error];
        // One JSON.stringify of the whole answer: a flat string, where assembled text would be a
        // rope that Fastify's length count and the socket write flatten again.
        const body = JSON.stringify('error' in item ? { error: serialize(item.error) } : { result: { data: serialize(item.result.data) } });
        return send(reply, outcome.ok ? 200 : getHTTPStatusCode([item], errors), body, errors, ctx);
      }
      const outcomes = (await Promise.all(info.calls.map(run))).map(
        (outcome): Outcome => (outcome.ok && isDataStream(outcome.data) ? { ok: false, error: streamInPlainRequest() } : outcome),
      );
      const items = outcomes.map((outcome, i) => itemOf(info.calls[i] as Call, outcome));
      const errors = outcomes.flatMap((outcome) => (outcome.ok ? [] : [outcome.error]));
      const perCall = outcomes.map((outcome) => (outcome.ok ? undefined : outcome.error));
      return send(reply, getHTTPStatusCode(items, perCall as TRPCError[]), `[${items.map(textOf).join(',')}]`, errors, ctx);
    } catch (cause) {
      return sendRequestError(req, reply, cause, ctx, info.type);
    }
  }

  await app.register(
    async (scope) => {
      // As tRPC's plugin: the JSON body reaches the handler as text (parsed, with its errors, above).
      scope.removeContentTypeParser('application/json');
      scope.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => done(null, body));
      scope.addContentTypeParser('multipart/form-data', {}, (_req, body, done) => done(null, body));
      // What Fastify refuses before the handler (a body too large, of another type, unreadable)
      // reaches tRPC clients as a tRPC error they can read, in Keel's words.
      scope.setErrorHandler<FastifyError>((error, req, reply) => {
        const known = beforeHandlerError(error.statusCode);
        if (!known) throw error; // the host's handler hides what is unexpected
        return sendRequestError(req, reply, new TRPCError({ code: known.code, message: known.message }), undefined, 'unknown');
      });
      scope.all('/:path', handle);
    },
    { prefix },
  );
}

/** A result holding promises or async iterables: only httpBatchStreamLink can carry it. */
function isDataStream(value: unknown): boolean {
  if (!isObject(value)) return false;
  if (Symbol.asyncIterator in value) return true;
  return Object.values(value).some(
    (v) =>
      (typeof v === 'object' || typeof v === 'function') &&
      v !== null &&
      (typeof (v as { then?: unknown }).then === 'function' || Symbol.asyncIterator in v),
  );
}

const streamInPlainRequest = () =>
  new TRPCError({
    code: 'UNSUPPORTED_MEDIA_TYPE',
    message: 'Cannot use stream-like response in non-streaming request - use httpBatchStreamLink',
  });
