/**
 * The OpenAPI 3.1 document of the REST surface, generated from the procedures' `meta.openapi` and
 * their zod input and output schemas by trpc-to-openapi, then completed with what the generator
 * does not know about Keel: its error body, the statuses each operation can answer, dates as
 * `date-time` strings, and examples. See docs/decisions/0008-openapi.md.
 */
import type { AnyRouter } from '@trpc/server';
import { type TRPC_ERROR_CODE_KEY, TRPC_ERROR_CODES_BY_KEY } from '@trpc/server/rpc';
import {
  forEachOpenApiProcedure,
  generateOpenApiDocument,
  getInputOutputParsers,
  getPathParameters,
  type OpenAPIObject,
  type OpenApiMeta,
} from 'trpc-to-openapi';
import { z } from 'zod';
import { ERROR_REASONS } from '../error-reasons.js';
import type { Scope } from '../modules/service-accounts/scopes.js';
import type { Meta } from '../trpc/init.js';
import { VERSION } from '../version.js';
import { addServiceAuth } from './oauth.js';

/** Where the REST routes live; the document's paths are relative to it (its `servers` entry). */
export const REST_PREFIX = '/api';
export const BEARER_SCHEME = 'bearerAuth';

const ERROR_CODES = Object.keys(TRPC_ERROR_CODES_BY_KEY) as [TRPC_ERROR_CODE_KEY, ...TRPC_ERROR_CODE_KEY[]];

/** The body of every REST error: the tRPC error's code and (formatted) message, without the envelope. */
export const restErrorSchema = z
  .object({
    code: z.enum(ERROR_CODES).meta({ description: 'The error code (the tRPC code name).' }),
    message: z
      .string()
      .meta({ description: 'For people. In production an unexpected error says only "Internal server error" and the reference.' }),
    reason: z.enum(ERROR_REASONS).optional().meta({
      description:
        'What exactly went wrong, for programs (e.g. `STALE_VERSION`, `IDEMPOTENCY_KEY_REUSED`); `code` says only the class. Declared per feature (server/src/error-reasons.ts); new reasons may be added.',
    }),
    fieldErrors: z
      .record(z.string(), z.array(z.string()))
      .optional()
      .meta({ description: 'Problems per input field, keyed by its dotted path (`_` for the input as a whole).' }),
    requestId: z.string().meta({ description: 'Also in the `x-request-id` header; quote it when reporting a problem.' }),
  })
  .meta({ description: 'An error. The HTTP status tells its class; `code` tells the same in words.' });
export type RestErrorBody = z.infer<typeof restErrorSchema>;

const REQUEST_ID_EXAMPLE = '0b7c6a52-5d8e-4f1a-9c3b-2e4d6f8a0b1c';
export const DATE_TIME_EXAMPLE = '2026-01-15T09:30:00.000Z';

interface ErrorResponse {
  name: string;
  description: string;
  example: RestErrorBody;
  headers?: Record<string, { description: string; schema: { type: 'string' } }>;
}

const example = (code: TRPC_ERROR_CODE_KEY, message: string, fieldErrors?: Record<string, string[]>): RestErrorBody => ({
  code,
  message,
  ...(fieldErrors ? { fieldErrors } : {}),
  requestId: REQUEST_ID_EXAMPLE,
});
const retryAfter = { 'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'string' as const } } };

/** The error statuses Keel documents, as reusable `components.responses`. */
const ERROR_RESPONSES: Record<number, ErrorResponse> = {
  400: {
    name: 'BadRequest',
    description: 'The input is invalid: `fieldErrors` says where.',
    example: example('BAD_REQUEST', 'Invalid input.', { name: ['must not be empty'] }),
  },
  401: {
    name: 'Unauthorized',
    description: 'No valid access token (or, for sign-in operations, wrong credentials).',
    example: example('UNAUTHORIZED', 'Missing access token.'),
    headers: { 'WWW-Authenticate': { description: 'Always `Bearer realm="keel"`.', schema: { type: 'string' } } },
  },
  403: {
    name: 'Forbidden',
    description: 'Signed in, but not allowed to do this.',
    example: example('FORBIDDEN', 'You are not allowed to do this.'),
  },
  404: {
    name: 'NotFound',
    description: "Not found, or not yours (another user's rows are never revealed).",
    example: example('NOT_FOUND', 'Project not found.'),
  },
  409: {
    name: 'Conflict',
    description: 'The row changed since it was read (stale `version`), or the change conflicts with existing data.',
    example: {
      ...example('CONFLICT', 'This project was changed meanwhile (now version 3). Reload it and try again.', { version: ['is stale'] }),
      reason: 'STALE_VERSION',
    },
  },
  429: {
    name: 'TooManyRequests',
    description: 'Too many calls or attempts, or the server is busy checking passwords: wait for the `Retry-After` seconds.',
    example: example('TOO_MANY_REQUESTS', 'Too many attempts. Retry in 60 s.'),
    headers: retryAfter,
  },
  500: {
    name: 'InternalServerError',
    description: 'An unexpected error. Its details stay in the server log under the request id.',
    example: example('INTERNAL_SERVER_ERROR', `Internal server error. Reference: ${REQUEST_ID_EXAMPLE}.`),
  },
  503: {
    name: 'ServiceUnavailable',
    description: 'The database is unavailable: retry later.',
    example: example('SERVICE_UNAVAILABLE', 'The database is unavailable. Retry later.'),
  },
  504: {
    name: 'GatewayTimeout',
    description: 'The database did not answer within the statement timeout: retry later (code `TIMEOUT`).',
    example: example('TIMEOUT', 'The database did not answer in time. Retry later.'),
  },
};

/** Request bodies shown in the docs, by procedure path (path parameters excluded). Tests parse each with its procedure's input schema. */
export const REQUEST_EXAMPLES: Record<string, Record<string, unknown>> = {
  'auth.register': { email: 'ada@example.com', password: 'a sturdy passphrase', name: 'Ada' },
  'auth.login': { email: 'ada@example.com', password: 'a sturdy passphrase' },
  'auth.refresh': { refreshToken: 'q3Vb0vS2Zr1mX4nB6cD8eF0gH2iJ4kL6mN8oP0qR2sT' },
  'auth.changePassword': { currentPassword: 'a sturdy passphrase', newPassword: 'an even sturdier passphrase' },
  'projects.create': { name: 'Launch', description: 'Everything for the launch in March.' },
  'projects.update': { version: 1, name: 'Launch 2026' },
  'projects.archive': { version: 2 },
  'tasks.create': { title: 'Write the press release', status: 'TODO', dueAt: '2026-03-01T09:00:00.000Z' },
  'tasks.update': { version: 1, status: 'IN_PROGRESS' },
  'tasks.move': { version: 2, position: 0 },
  'users.setRole': { role: 'ADMIN' },
  'users.setActive': { active: false },
};

const TAGS = [
  { name: 'auth', description: 'Accounts, sign-in and sessions. Send the access token as `Authorization: Bearer <token>`.' },
  { name: 'projects', description: 'Your projects. Changes are optimistic: send the `version` you read.' },
  { name: 'tasks', description: "A project's tasks, in board order." },
  { name: 'users', description: 'User administration (admins only).' },
  {
    name: 'service accounts',
    description: 'Identities of internal services (admins only). A secret is shown once, by create and rotate-secret.',
  },
  { name: 'oauth', description: 'Access tokens for service accounts (OAuth 2.0 client credentials). Outside /api.' },
  { name: 'system', description: 'Health of the service.' },
];

const DESCRIPTION = `Keel's REST API: the same procedures, validation and errors as its tRPC API at \`/trpc\`, as plain JSON.

- **Authentication**: \`POST /api/auth/login\` (or \`/register\`) returns an access token; send it as \`Authorization: Bearer <token>\`. When it expires, \`POST /api/auth/refresh\` with the refresh token in the body.
- **Dates** are ISO 8601 strings in UTC (\`${DATE_TIME_EXAMPLE}\`).
- **Errors** have the body \`{ code, message, fieldErrors?, requestId }\` and the matching HTTP status.
- **Lists** are pages: pass the \`nextCursor\` of a page as \`cursor\` to get the next one.`;

/**
 * Marks every `z.date()` reachable from the procedures' schemas as an ISO date-time string in the
 * document (zod-openapi renders dates as a bare `string`). Only metadata of the global registry is
 * added: parsing, and the `Date` types of the tRPC API, stay as they are.
 */
function annotateDates(schema: z.core.$ZodType, seen = new Set<z.core.$ZodType>()): void {
  if (seen.has(schema)) return;
  seen.add(schema);
  const zod = (schema as z.core.$ZodTypes)._zod;
  const def = zod.def;
  if (def.type === 'date') {
    z.globalRegistry.add(schema, { ...z.globalRegistry.get(schema), format: 'date-time', examples: [DATE_TIME_EXAMPLE] });
    return;
  }
  for (const child of innerSchemas(zod)) annotateDates(child, seen);
}

/** The schemas a schema is made of (the kinds Keel's procedures use, and their near relatives). */
function innerSchemas(zod: z.core.$ZodTypes['_zod']): z.core.$ZodType[] {
  const def = zod.def;
  switch (def.type) {
    case 'object':
      return [...Object.values(def.shape), ...(def.catchall ? [def.catchall] : [])];
    case 'array':
      return [def.element];
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'nonoptional':
    case 'readonly':
    case 'catch':
      return [def.innerType];
    case 'union':
      return [...def.options];
    case 'intersection':
      return [def.left, def.right];
    case 'pipe':
      return [def.in, def.out];
    case 'record':
      return [def.valueType];
    case 'tuple':
      return [...def.items, ...(def.rest ? [def.rest] : [])];
    case 'lazy':
      // The cached inner schema: calling the getter again may build a new one.
      return [(zod as z.core.$ZodLazyInternals).innerType];
    default:
      return [];
  }
}

/** The error statuses of one operation: those its shape implies, plus those its meta declares. */
function errorStatuses(options: {
  protect: boolean;
  hasInput: boolean;
  pathParams: boolean;
  versioned: boolean;
  idempotent: boolean;
  mutation: boolean;
  declared: number[];
}) {
  const statuses = new Set<number>(options.declared);
  if (options.hasInput) statuses.add(400);
  // A mutation that handles credentials refuses an Idempotency-Key with 400 (lib/idempotency.ts).
  if (options.mutation) statuses.add(400);
  // An Idempotency-Key: 400 when malformed, 409 when its call still runs or came with another input.
  if (options.idempotent) {
    statuses.add(400);
    statuses.add(409);
  }
  if (options.protect) {
    statuses.add(401);
    statuses.add(403);
  }
  if (options.pathParams) statuses.add(404);
  if (options.versioned) statuses.add(409);
  // The general limit per address and per user applies to every operation.
  statuses.add(429);
  statuses.add(500);
  statuses.add(503);
  statuses.add(504);
  return [...statuses].sort((a, b) => a - b);
}

type Operation = {
  responses: Record<string, unknown>;
  parameters?: unknown[];
  requestBody?: { content: Record<string, { example?: unknown }> };
};

export interface RestProcedure {
  /** The procedure's tRPC path, e.g. `projects.create`. */
  path: string;
  openapi: NonNullable<OpenApiMeta['openapi']>;
  inputParser: z.core.$ZodType;
  outputParser: z.core.$ZodType | undefined;
  hasInputsDefined: boolean;
  /** A create: the path of the new resource (`/projects/{id}`), answered 201 with `Location`. */
  created: string | undefined;
  /** A mutation that takes an `Idempotency-Key` (every mutation but those handling credentials). */
  idempotent: boolean;
  /** A mutation, idempotent or not: the credential calls answer 400 to an `Idempotency-Key`. */
  mutation: boolean;
  /** The scope a service token needs (`meta.scope`), if the procedure is open to services. */
  scope: Scope | undefined;
}

/** The procedures of `router` on the REST surface (those with `meta.openapi`), in router order. */
export function restProcedures(router: AnyRouter): RestProcedure[] {
  const found: RestProcedure[] = [];
  forEachOpenApiProcedure<Meta>(router._def.procedures, ({ path, type, procedure, meta }) => {
    found.push({
      path,
      openapi: meta.openapi,
      ...getInputOutputParsers(procedure),
      created: meta.restCreated,
      idempotent: type === 'mutation' && meta.handlesSecrets !== true,
      mutation: type === 'mutation',
      scope: meta.scope,
    });
  });
  return found;
}

/** The request header of retries that lose nothing (lib/idempotency.ts, decision 0017). */
const IDEMPOTENCY_KEY_PARAMETER = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description:
    'Makes a retry safe: the call runs once per key (with the same input, within IDEMPOTENCY_TTL_SECONDS), and a retry gets the first answer again. Visible ASCII, 1 to 255 characters; a fresh random key per intended call.',
  schema: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$' },
} as const;

const IDEMPOTENT_REPLAYED_HEADER = {
  'idempotent-replayed': {
    description: '`true` when this answer is the stored one of an earlier call with the same `Idempotency-Key` (nothing ran again).',
    schema: { type: 'string', enum: ['true'] },
  },
};

const LOCATION_HEADER = {
  Location: { description: 'The URL path of the new resource (`/api/...`).', schema: { type: 'string' } },
};

function buildDocument(router: AnyRouter): OpenAPIObject {
  const operations: {
    method: string;
    path: string;
    procedurePath: string;
    statuses: number[];
    created: string | undefined;
    idempotent: boolean;
  }[] = [];
  const scoped: { method: string; path: string; scope: Scope }[] = [];
  for (const {
    path: procedurePath,
    openapi,
    inputParser,
    outputParser,
    hasInputsDefined,
    created,
    idempotent,
    mutation,
    scope,
  } of restProcedures(router)) {
    if (scope) scoped.push({ method: openapi.method.toLowerCase(), path: openapi.path, scope });
    annotateDates(inputParser);
    if (outputParser) annotateDates(outputParser);
    const declared = Array.isArray(openapi.errorResponses) ? openapi.errorResponses : Object.keys(openapi.errorResponses ?? {}).map(Number);
    operations.push({
      method: openapi.method.toLowerCase(),
      path: openapi.path,
      procedurePath,
      statuses: errorStatuses({
        protect: openapi.protect !== false,
        hasInput: hasInputsDefined,
        pathParams: getPathParameters(openapi.path).length > 0,
        versioned: hasVersionField(inputParser),
        idempotent,
        mutation,
        declared,
      }),
      created,
      idempotent,
    });
  }

  const document = generateOpenApiDocument(router, {
    title: 'Keel API',
    description: DESCRIPTION,
    version: VERSION,
    baseUrl: REST_PREFIX,
    securitySchemes: {
      [BEARER_SCHEME]: {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'JWT',
        description: 'The `accessToken` from `POST /auth/login`, `/auth/register` or `/auth/refresh`.',
      },
    },
    defs: { Error: restErrorSchema },
  });

  const usedStatuses = new Set<number>();
  for (const { method, path, procedurePath, statuses, created, idempotent } of operations) {
    const operation = (document.paths?.[path] as Record<string, Operation> | undefined)?.[method];
    if (!operation) throw new Error(`OpenAPI: no operation generated for ${method.toUpperCase()} ${path} (${procedurePath})`);
    const success = operation.responses['200'] as { description?: string; headers?: Record<string, unknown> };
    const headers = { ...success.headers, ...(created ? LOCATION_HEADER : {}), ...(idempotent ? IDEMPOTENT_REPLAYED_HEADER : {}) };
    const answer = {
      ...success,
      ...(created ? { description: `Created: the new resource, also at \`Location\` (${REST_PREFIX}${created}).` } : {}),
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
    };
    operation.responses = { [created ? '201' : '200']: answer };
    if (idempotent) operation.parameters = [...(operation.parameters ?? []), IDEMPOTENCY_KEY_PARAMETER];
    for (const status of statuses) {
      const response = ERROR_RESPONSES[status];
      if (!response) throw new Error(`OpenAPI: ${procedurePath} declares status ${status}, which has no error response in document.ts`);
      operation.responses[String(status)] = { $ref: `#/components/responses/${response.name}` };
      usedStatuses.add(status);
    }
    const requestExample = REQUEST_EXAMPLES[procedurePath];
    const json = operation.requestBody?.content['application/json'];
    if (requestExample && json) json.example = requestExample;
  }

  const schemas = Object.fromEntries(Object.entries(document.components?.schemas ?? {}).filter(([name]) => !name.startsWith('error.')));
  const responses = Object.fromEntries(
    [...usedStatuses]
      .sort((a, b) => a - b)
      .map((status) => {
        const { name, description, example: value, headers } = ERROR_RESPONSES[status] as ErrorResponse;
        return [
          name,
          {
            description,
            ...(headers ? { headers } : {}),
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' }, example: value } },
          },
        ];
      }),
  );
  addServiceAuth(document, scoped, BEARER_SCHEME);
  return {
    ...document,
    tags: TAGS.filter((tag) => operationsTagged(document, tag.name)),
    components: { ...document.components, schemas, responses },
  };
}

/** Optimistic concurrency: inputs carrying the `version` read can fail with CONFLICT. */
function hasVersionField(input: z.core.$ZodType): boolean {
  const def = (input as z.core.$ZodTypes)._zod.def;
  if (def.type === 'optional' || def.type === 'default' || def.type === 'prefault') return hasVersionField(def.innerType);
  return def.type === 'object' && 'version' in def.shape;
}

function operationsTagged(document: OpenAPIObject, tag: string): boolean {
  return Object.values(document.paths ?? {}).some((item) =>
    Object.values(item as Record<string, { tags?: string[] }>).some((operation) => operation.tags?.includes(tag)),
  );
}

const documents = new WeakMap<AnyRouter, OpenAPIObject>();

/** The document of `router`'s REST surface, built once per router (it fails fast on a bad `meta.openapi`). */
export function openApiDocument(router: AnyRouter): OpenAPIObject {
  let document = documents.get(router);
  if (!document) {
    document = buildDocument(router);
    documents.set(router, document);
  }
  return document;
}
