/**
 * Every typed SQL query of the modules (server/src/db/sql.ts says when one may exist). The tests
 * walk this list: each query runs against the migrated schema, its rows must match its schema, and
 * a query missing here, or here without a test comparing it with Prisma, fails the suite.
 */
import * as projects from '../modules/projects/queries.js';
import type { Query } from './sql.js';

export const TYPED_QUERIES: Record<string, Record<string, Query<never, unknown>>> = { projects };
