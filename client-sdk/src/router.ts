/**
 * The server's procedures as plain input and output types: the only module of the SDK that looks
 * at the server. In the repository the shapes are computed from the server's `AppRouter` type; the
 * build (scripts/build.ts) replaces this module with the same shapes printed as literal types, so
 * the published declarations hold no tRPC context, no Prisma type and no server path.
 */
import type { AnyTRPCProcedure, TRPCRouterRecord } from '@trpc/server';
import type { AppRouter as ServerRouter } from '../../server/src/router.js';
import type { AuthMode as ServerAuthMode } from '../../server/src/trpc/context.js';
import type { ProcedureShape } from './shape.js';

type ShapeOf<TRecord> = {
  [K in keyof TRecord]: TRecord[K] extends infer P
    ? P extends AnyTRPCProcedure
      ? ProcedureShape<P['_def']['type'], P['_def']['$types']['input'], P['_def']['$types']['output']>
      : P extends TRPCRouterRecord
        ? ShapeOf<P>
        : never
    : never;
};

/** Every procedure of the server, by path: `AppRouterShape['auth']['login']`. */
export type AppRouterShape = ShapeOf<ServerRouter['_def']['record']>;

/** The error shape the server's error formatter produces. */
export type AppErrorShape = ServerRouter['_def']['_config']['$types']['errorShape'];

/** How the client keeps its refresh token: in the answers' body (`bearer`) or in an HttpOnly cookie (`cookie`). */
export type AuthMode = ServerAuthMode;
