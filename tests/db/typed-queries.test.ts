/**
 * The typed SQL that bypasses Prisma for hot reads (server/src/db/sql.ts) stays in step with
 * schema.prisma: every query runs against the migrated schema, as a prepared statement and
 * unnamed (DATABASE_PREPARED_STATEMENTS=false, for transaction-mode poolers), its rows match its
 * declared schema column for column, and it answers exactly what the Prisma query it replaced
 * answers on the same data.
 */
import { readdirSync } from 'node:fs';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { TYPED_QUERIES } from '../../server/src/db/queries.js';
import { Sql } from '../../server/src/db/sql.js';
import { listProjects, listProjectsAfter } from '../../server/src/modules/projects/queries.js';
import { useTestDatabase } from '../support/database.js';
import { createUser } from '../support/factories.js';

const db = await useTestDatabase();
const deps = db.deps();
const prisma = deps.database.prisma;
const modes = [
  { name: 'prepared', sql: new Sql(db.database.pool, true) },
  { name: 'unnamed', sql: new Sql(db.database.pool, false) },
];

/** The columns a row schema declares, to compare with the columns a query returns. */
const columnsOf = (schema: unknown): string[] => Object.keys((schema as { shape: Record<string, unknown> }).shape).sort();

/** The Prisma query `projects.list` ran before its typed SQL: the reference answer. */
function prismaProjects(ownerId: string, includeArchived: boolean, take: number, after?: { key: Date; id: string }) {
  return prisma.project.findMany({
    where: {
      ownerId,
      ...(includeArchived ? {} : { archivedAt: null }),
      ...(after ? { OR: [{ createdAt: { lt: after.key } }, { createdAt: after.key, id: { lt: after.id } }] } : {}),
    },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    take,
    select: { id: true, ownerId: true, name: true, description: true, archivedAt: true, version: true, createdAt: true, updatedAt: true },
  });
}

describe('typed SQL', () => {
  it('lists every queries.ts module of server/src/modules in the registry the tests walk', async () => {
    const modules = readdirSync(new URL('../../server/src/modules/', import.meta.url), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .filter((entry) => readdirSync(new URL(`../../server/src/modules/${entry.name}/`, import.meta.url)).includes('queries.ts'))
      .map((entry) => entry.name)
      .sort();
    expect(Object.keys(TYPED_QUERIES).sort(), 'add the module to TYPED_QUERIES in server/src/db/queries.ts').toEqual(modules);
    for (const name of modules) {
      const exported = Object.keys(await import(`../../server/src/modules/${name}/queries.ts`)).sort();
      expect(Object.keys(TYPED_QUERIES[name] ?? {}).sort(), `${name}/queries.ts`).toEqual(exported);
    }
  });

  it('gives every query a unique statement name', () => {
    const names = Object.values(TYPED_QUERIES).flatMap((module) => Object.values(module).map((query) => query.name));
    expect(new Set(names).size).toBe(names.length);
  });

  describe.each(modes)('projects.list as $name statements', ({ sql }) => {
    it('answers what the Prisma query answered: every page, with and without archived projects, rows of the declared columns', async () => {
      const owner = await createUser(deps);
      const other = await createUser(deps);
      const start = Date.UTC(2026, 0, 1);
      // Equal creation times on purpose: the id breaks the tie, and pages must not split the pair wrongly.
      for (let i = 0; i < 13; i++) {
        await prisma.project.create({
          data: {
            ownerId: owner.id,
            name: `p${i}`,
            description: i % 3 === 0 ? null : `d${i}`,
            createdAt: new Date(start + Math.floor(i / 2) * 1000),
            archivedAt: i % 4 === 0 ? new Date(start + 99_000) : null,
          },
        });
      }
      await prisma.project.create({ data: { ownerId: other.id, name: 'not mine' } });

      for (const includeArchived of [false, true]) {
        let after: { key: Date; id: string } | undefined;
        let pages = 0;
        for (;;) {
          const input = { ownerId: owner.id, includeArchived, take: 4 };
          const rows = after ? await sql.rows(listProjectsAfter, { ...input, after }) : await sql.rows(listProjects, input);
          expect(rows).toEqual(await prismaProjects(owner.id, includeArchived, 4, after));
          for (const row of rows) {
            expect(Object.keys(row).sort()).toEqual(columnsOf(listProjects.row));
            expect(listProjects.row.parse(row)).toEqual(row);
          }
          pages += 1;
          const last = rows.at(-1);
          if (rows.length < 4 || !last) break;
          after = { key: last.createdAt, id: last.id };
        }
        expect(pages).toBe(includeArchived ? 4 : 3);
      }
    });
  });

  it('keeps answering after a migration changes a column under a prepared statement (cached plan must not change result type)', async () => {
    const owner = await createUser(deps);
    await prisma.project.create({ data: { ownerId: owner.id, name: 'before the migration' } });
    // One connection, so the statement prepared before the change is the one asked to run after it.
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    try {
      const sql = new Sql(pool, true);
      const input = { ownerId: owner.id, includeArchived: false, take: 5 };
      expect(await sql.rows(listProjects, input)).toHaveLength(1);
      await pool.query('ALTER TABLE projects ALTER COLUMN name TYPE varchar(150)');
      const rows = await sql.rows(listProjects, input);
      expect(rows.map((row) => row.name)).toEqual(['before the migration']);
      expect(await sql.rows(listProjects, input)).toEqual(rows);
    } finally {
      await pool.query('ALTER TABLE projects ALTER COLUMN name TYPE varchar(100)');
      await pool.end();
    }
  });
});
