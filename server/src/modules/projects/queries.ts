/**
 * The projects module's typed SQL (the rule is in server/src/db/sql.ts): its list, the hottest
 * read of the example domain. Same rows, same order and same page boundaries as the Prisma query
 * it replaced: (created_at, id) descending, `limit + 1` rows to know whether a next page exists.
 */
import { defineQuery } from '../../db/sql.js';
import { projectSchema } from './schemas.js';

const COLUMNS = `id, owner_id AS "ownerId", name, description, archived_at AS "archivedAt", version,
  created_at AS "createdAt", updated_at AS "updatedAt"`;

interface ListInput {
  ownerId: string;
  includeArchived: boolean;
  /** Rows to read: the page size plus one. */
  take: number;
}

export const listProjects = defineQuery({
  name: 'projects.list',
  row: projectSchema,
  text: `SELECT ${COLUMNS} FROM projects
    WHERE owner_id = $1 AND ($2::boolean OR archived_at IS NULL)
    ORDER BY created_at DESC, id DESC LIMIT $3`,
  values: (input: ListInput) => [input.ownerId, input.includeArchived, input.take],
});

/** The pages after the first: the row comparison is an index condition on (owner_id, created_at, id). */
export const listProjectsAfter = defineQuery({
  name: 'projects.list.after',
  row: projectSchema,
  text: `SELECT ${COLUMNS} FROM projects
    WHERE owner_id = $1 AND ($2::boolean OR archived_at IS NULL) AND (created_at, id) < ($4::timestamptz, $5::uuid)
    ORDER BY created_at DESC, id DESC LIMIT $3`,
  values: (input: ListInput & { after: { key: Date; id: string } }) => [
    input.ownerId,
    input.includeArchived,
    input.take,
    input.after.key,
    input.after.id,
  ],
});
