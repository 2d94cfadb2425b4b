/**
 * The public router type: the server's procedures (from ./router.js) on a root whose context is
 * erased. It is all a tRPC client needs (inputs, outputs, error shape, transformer) and all it
 * exposes.
 */
import type {
  inferRouterInputs,
  inferRouterOutputs,
  TRPCBuiltRouter,
  TRPCMutationProcedure,
  TRPCQueryProcedure,
  TRPCSubscriptionProcedure,
} from '@trpc/server';
import type { AppErrorShape, AppRouterShape } from './router.js';
import type { ProcedureShape } from './shape.js';

type Definition<TInput, TOutput> = { input: TInput; output: TOutput; meta: object; errorShape: AppErrorShape };

type ProcedureOf<TType, TInput, TOutput> = TType extends 'query'
  ? TRPCQueryProcedure<Definition<TInput, TOutput>>
  : TType extends 'mutation'
    ? TRPCMutationProcedure<Definition<TInput, TOutput>>
    : TRPCSubscriptionProcedure<Definition<TInput, TOutput>>;

type RecordOf<TShape> = {
  [K in keyof TShape]: TShape[K] extends ProcedureShape<infer TType, infer TInput, infer TOutput>
    ? ProcedureOf<TType, TInput, TOutput>
    : RecordOf<TShape[K]>;
};

/** Keel's tRPC router, as a client sees it. Use it wherever tRPC asks for the router's type. */
export type AppRouter = TRPCBuiltRouter<
  { ctx: object; meta: object; errorShape: AppErrorShape; transformer: true },
  RecordOf<AppRouterShape>
>;

/** The input of every procedure, by path: `RouterInputs['projects']['create']`. */
export type RouterInputs = inferRouterInputs<AppRouter>;
/** The output of every procedure, by path: `RouterOutputs['tasks']['list']`. */
export type RouterOutputs = inferRouterOutputs<AppRouter>;

/** The signed-in user, as `auth.me` returns it. */
export type User = RouterOutputs['auth']['me'];
/** What `auth.register`, `auth.refresh` and `auth.twoFactor.verify` return (and `auth.login` for an account without a second factor). */
export type AuthResult = RouterOutputs['auth']['refresh'];
/** What `auth.login` returns: tokens, or a challenge for the second factor (`isTwoFactorChallenge`). */
export type LoginResult = RouterOutputs['auth']['login'];
/** The second step of a sign-in: complete it with `verifyTwoFactor({ challenge, code })` (or `recoveryCode`). */
export type TwoFactorChallenge = Extract<LoginResult, { status: 'twoFactorRequired' }>;
/** Two-factor status of the signed-in account (`auth.twoFactor.status`). */
export type TwoFactorStatus = RouterOutputs['auth']['twoFactor']['status'];

/** Whether `auth.login` answered a challenge instead of tokens: a type guard, no string matching. */
export function isTwoFactorChallenge(result: LoginResult): result is TwoFactorChallenge {
  return 'status' in result && result.status === 'twoFactorRequired';
}
export type Project = RouterOutputs['projects']['byId'];
export type Task = RouterOutputs['tasks']['byId'];
export type TaskStatus = Task['status'];
/** One page of a cursor-paginated list: pass `nextCursor` back as `cursor` for the next page. */
export type ProjectPage = RouterOutputs['projects']['list'];
export type TaskPage = RouterOutputs['tasks']['list'];
/** A user as the admin procedures (`users.*`) return it. */
export type AdminUser = RouterOutputs['users']['byId'];
/** One of the user's sign-in sessions (`auth.sessions.list`). */
export type SessionInfo = RouterOutputs['auth']['sessions']['list']['items'][number];
export type Role = User['role'];
