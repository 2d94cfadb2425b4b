/**
 * The subscriptions, mounted in the projects and tasks routers: `projects.onChange` and
 * `tasks.onChange({ projectId })`, over SSE (tRPC's httpSubscriptionLink), behind the same auth
 * middleware as every other procedure.
 */
import { AppError } from '../lib/errors.js';
import type { AuthUser } from '../modules/auth/types.js';
import { authedProcedure } from '../trpc/init.js';
import type { Notice } from './hub.js';
import { type LiveEvent, type ProjectLiveEvent, projectsOnChangeInput, tasksOnChangeInput } from './schemas.js';
import { liveStream } from './stream.js';

type ProjectEvent = Extract<LiveEvent, { type: 'project' }>;
type TaskEvent = Extract<LiveEvent, { type: 'task' }>;

/** What a project notice means to `user`'s list of projects. */
function projectEventFor(notice: Notice, user: AuthUser): ProjectEvent | undefined {
  if (notice.k !== 'p') return undefined;
  const base = { type: 'project', projectId: notice.id, version: notice.v } as const;
  if (notice.o === user.id) return { ...base, op: notice.po !== undefined ? 'added' : notice.op };
  if (notice.po === user.id) return { ...base, op: 'removed' };
  return undefined;
}

const projectGone = () => new AppError('NOT_FOUND', 'This project was deleted or is no longer yours.', { reason: 'PROJECT_GONE' });

/** What a notice means to the stream of one project's tasks; throws when the project is gone for `user`. */
function taskEventFor(notice: Notice, user: AuthUser, projectId: string): ProjectEvent | TaskEvent | undefined {
  if (notice.k === 'p') {
    if (notice.id !== projectId) return undefined;
    if (notice.op === 'deleted') throw projectGone();
    if (notice.po !== undefined && notice.o !== user.id && user.role !== 'ADMIN') throw projectGone();
    return { type: 'project', op: notice.op, projectId, version: notice.v };
  }
  if (notice.k !== 't') return undefined;
  const base = { type: 'task', taskId: notice.id, projectId, version: notice.v } as const;
  if (notice.p === projectId) return { ...base, op: notice.pp !== undefined ? 'moved-in' : notice.op };
  if (notice.pp === projectId) return { ...base, op: 'moved-out' };
  return undefined;
}

export const projectsOnChange = authedProcedure.input(projectsOnChangeInput).subscription(({ ctx, input, signal }) =>
  liveStream<ProjectLiveEvent>({
    hub: ctx.services.live,
    config: ctx.config.live,
    user: ctx.user,
    authorization: ctx.request.authorization,
    lastEventId: input?.lastEventId,
    signal,
    log: ctx.log,
    select: (notice) => projectEventFor(notice, ctx.user),
  }),
);

export const tasksOnChange = authedProcedure.input(tasksOnChangeInput).subscription(async ({ ctx, input, signal }) => {
  // Ownership now (NOT_FOUND for another user's project, as every read), and again on every
  // change of the project while the stream lasts.
  await ctx.services.projects.byId(ctx.user, input.projectId);
  return liveStream<ProjectEvent | TaskEvent>({
    hub: ctx.services.live,
    config: ctx.config.live,
    user: ctx.user,
    authorization: ctx.request.authorization,
    lastEventId: input.lastEventId,
    signal,
    log: ctx.log,
    select: (notice) => taskEventFor(notice, ctx.user, input.projectId),
  });
});
