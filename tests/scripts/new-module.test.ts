/**
 * `pnpm new:module`: the names it derives and refuses, and what it refuses to overwrite, on a
 * temporary copy of the files it edits (no formatting, no client generation: fast). The whole
 * path (generate, migrate, type-check, lint, run the generated test) is tests/e2e/new-module.test.ts.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createModule, NewModuleError } from '../../server/src/scripts/new-module/create.js';
import { ModuleNameError, moduleNames, singular } from '../../server/src/scripts/new-module/names.js';
import { REPO_ROOT } from '../support/process.js';

describe('module names', () => {
  it('derives every name from kebab-case or camelCase', () => {
    expect(moduleNames('widgets')).toEqual({
      kebab: 'widgets',
      camel: 'widgets',
      pascal: 'Widgets',
      snake: 'widgets',
      model: 'Widget',
      entity: 'widget',
      words: 'widget',
      pluralWords: 'widgets',
    });
    const teamMembers = {
      kebab: 'team-members',
      camel: 'teamMembers',
      pascal: 'TeamMembers',
      snake: 'team_members',
      model: 'TeamMember',
      entity: 'teamMember',
      words: 'team member',
      pluralWords: 'team members',
    };
    expect(moduleNames('team-members')).toEqual(teamMembers);
    expect(moduleNames('teamMembers')).toEqual(teamMembers);
  });

  it('makes the model singular for the usual plurals, and takes --model for the others', () => {
    expect(['categories', 'addresses', 'boxes', 'invoices', 'days', 'staff'].map(singular)).toEqual([
      'category',
      'address',
      'box',
      'invoice',
      'day',
      'staff',
    ]);
    expect(moduleNames('people', 'Person')).toMatchObject({ camel: 'people', model: 'Person', entity: 'person', snake: 'people' });
  });

  it.each([
    ['Widgets', /not a module name/],
    ['team_members', /not a module name/],
    ['2fa-codes', /not a module name/],
    ['widgets-', /not a module name/],
    ['', /not a module name/],
    ['x'.repeat(41), /longer than 40/],
    ['delete', /reserved/],
    ['constructor', /reserved/],
    ['then', /reserved/],
    ['auth', /reserved/],
    ['support', /reserved/],
    ['health', /reserved/],
  ])('refuses %j', (name, message) => {
    expect(() => moduleNames(name)).toThrow(ModuleNameError);
    expect(() => moduleNames(name)).toThrow(message);
  });

  it('refuses a --model that is not a model name, or is Prisma’s own', () => {
    expect(() => moduleNames('people', 'person')).toThrow(/not a Prisma model name/);
    expect(() => moduleNames('clients', 'PrismaClient')).toThrow(/Prisma's own name/);
  });
});

describe('what new:module writes and refuses', () => {
  const EDITED = ['server/src/router.ts', 'server/src/services.ts', 'server/src/deps.ts', 'prisma/schema.prisma'];
  let root = '';
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  /** The files it edits, and the existing module folders, copied into a temporary root. */
  function copy(): string {
    root = mkdtempSync(join(tmpdir(), 'keel-new-module-'));
    for (const file of EDITED) cpSync(join(REPO_ROOT, file), join(root, file));
    for (const module of ['projects', 'tasks', 'users']) mkdirSync(join(root, 'server/src/modules', module), { recursive: true });
    return root;
  }
  const snapshot = () => EDITED.map((file) => readFileSync(join(root, file), 'utf8'));

  it('writes the module and its test, mounts the router, registers the service and adds the model owned by User', async () => {
    copy();
    const result = await createModule({ root, name: 'team-members', format: false, generate: false });
    expect(result.created).toEqual([
      'server/src/modules/team-members/schemas.ts',
      'server/src/modules/team-members/service.ts',
      'server/src/modules/team-members/router.ts',
      'tests/modules/team-members/team-members.test.ts',
    ]);
    const [router, services, deps, schema] = snapshot() as [string, string, string, string];
    expect(router).toContain("import { teamMembersRouter } from './modules/team-members/router.js';");
    expect(router).toMatch(/export const appRouter = router\(\{[\s\S]*\n {2}teamMembers: teamMembersRouter,\n\}\);/);
    expect(services).toContain("import type { TeamMemberService } from './modules/team-members/service.js';");
    expect(services).toMatch(/export interface Services \{[\s\S]*\n {2}teamMembers: TeamMemberService;\n\}/);
    expect(deps).toContain("import { createTeamMemberService } from './modules/team-members/service.js';");
    expect(deps).toMatch(/ {6}teamMembers: createTeamMemberService\(database\.prisma, now\),\n\}/);
    expect(schema).toMatch(/^model User \{[\s\S]*\n {2}teamMembers TeamMember\[\]\n\n {2}@@index/m);
    expect(schema).toMatch(
      /\nmodel TeamMember \{[\s\S]*@relation\(fields: \[ownerId\], references: \[id\], onDelete: Cascade\)[\s\S]*@@map\("team_members"\)\n\}\n$/,
    );
    const routerFile = readFileSync(join(root, 'server/src/modules/team-members/router.ts'), 'utf8');
    for (const route of [
      "'GET', '/team-members'",
      "'GET', '/team-members/{id}'",
      "'POST', '/team-members'",
      "'PATCH', '/team-members/{id}'",
      "'DELETE', '/team-members/{id}'",
    ]) {
      expect(routerFile).toContain(`.meta(rest(${route}`);
    }
  });

  it.each([
    ['an existing module', 'projects', undefined, /server\/src\/modules\/projects already exists/],
    ['a model that exists', 'sessions', undefined, /already has a model Session/],
    ['a table that exists', 'user-tokens', 'Coupon', /already maps a table user_tokens/],
    ['a key the router has', 'system', undefined, /reserved/],
  ])('refuses %s and writes nothing', async (_, name, model, message) => {
    copy();
    const before = snapshot();
    const refusal = await createModule({ root, name, model, format: false, generate: false }).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(Error);
    expect((refusal as Error).message).toMatch(message);
    expect(snapshot()).toEqual(before);
  });

  it('refuses to overwrite a test folder that exists, and writes nothing', async () => {
    copy();
    mkdirSync(join(root, 'tests/modules/widgets'), { recursive: true });
    const before = snapshot();
    await expect(createModule({ root, name: 'widgets', format: false, generate: false })).rejects.toThrow(NewModuleError);
    await expect(createModule({ root, name: 'widgets', format: false, generate: false })).rejects.toThrow(
      /tests\/modules\/widgets already exists/,
    );
    expect(snapshot()).toEqual(before);
  });

  it('refuses, with nothing written, when a file it edits does not have the expected shape', async () => {
    copy();
    cpSync(join(REPO_ROOT, 'server/src/lib/text.ts'), join(root, 'server/src/deps.ts'));
    const before = snapshot();
    await expect(createModule({ root, name: 'widgets', format: false, generate: false })).rejects.toThrow(
      /server\/src\/deps\.ts has no `services: \{`/,
    );
    expect(snapshot()).toEqual(before);
  });
});
