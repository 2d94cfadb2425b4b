import { z } from 'zod';

/** Sent back by the client when it reconnects (tRPC adds it from the SSE `Last-Event-ID`). */
const lastEventId = z.string().max(100).nullish();

export const projectsOnChangeInput = z.strictObject({ lastEventId }).optional();
export const tasksOnChangeInput = z.strictObject({ projectId: z.uuid(), lastEventId });

/**
 * What a stream carries. Ids and versions only: a client reloads what it shows (or compares the
 * version with the one it holds). `ready` opens a fresh stream (reload now: nothing was missed from
 * here on); `resync` says events were missed (the id was too old, from another instance, or the
 * server lost its database notifications for a while): reload everything the stream covers.
 */
export const liveEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready') }),
  z.object({ type: z.literal('resync'), reason: z.enum(['too-old', 'unknown-id', 'listener-restarted', 'overflow']) }),
  z.object({
    type: z.literal('project'),
    /** `added`/`removed`: the project was handed to or away from you. */
    op: z.enum(['created', 'updated', 'archived', 'deleted', 'added', 'removed']),
    projectId: z.uuid(),
    version: z.number().int(),
  }),
  z.object({
    type: z.literal('task'),
    /** `moved-in`/`moved-out`: the task changed project. */
    op: z.enum(['created', 'updated', 'deleted', 'moved-in', 'moved-out']),
    taskId: z.uuid(),
    projectId: z.uuid(),
    version: z.number().int(),
  }),
]);
export type LiveEvent = z.infer<typeof liveEventSchema>;
export type ProjectLiveEvent = Extract<LiveEvent, { type: 'ready' | 'resync' | 'project' }>;
