/**
 * `pnpm new:module <name>`: writes a module after the `projects` one and wires it in. Every edit is
 * planned in memory first; if any file does not have the shape expected (or a target exists), it
 * refuses with nothing written.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { generatePrismaClient } from '../../../../tools/migrate/src/prisma-generate.js';
import { type ModuleNames, moduleNames } from './names.js';
import { prismaModel, routerFile, schemasFile, serviceFile, testFile } from './templates.js';

export class NewModuleError extends Error {
  override readonly name = 'NewModuleError';
}

export interface NewModuleOptions {
  /** The repository root (a copy of it in tests). */
  root: string;
  name: string;
  /** The Prisma model's name, when the singular of `name` is not what `names.ts` guesses. */
  model?: string | undefined;
  /** Format the TypeScript written with Biome (the repository's formatter and import order). */
  format?: boolean;
  /** Regenerate the Prisma client, so the new model is on `db` for the typecheck at once. */
  generate?: boolean;
}

export interface NewModuleResult {
  names: ModuleNames;
  /** Repository-relative paths. */
  created: string[];
  changed: string[];
}

/** The index of the `}` that closes the `{` at `open`. */
function closingBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i += 1) {
    if (text[i] === '{') depth += 1;
    else if (text[i] === '}' && --depth === 0) return i;
  }
  return -1;
}

/**
 * Inserts `entry` as the last member of the object literal (`separator` ',') or object type (';')
 * that opens at the first `anchor` after `from`. Biome lays it out afterwards.
 */
function appendMember(text: string, anchor: string, entry: string, file: string, separator: ',' | ';', from = 0): string {
  const at = from < 0 ? -1 : text.indexOf(anchor, from);
  if (at < 0)
    throw new NewModuleError(`${file} has no \`${anchor}\` where expected: wire the module in by hand (README, "Adding a feature")`);
  const open = text.indexOf('{', at);
  const close = closingBrace(text, open);
  if (close < 0) throw new NewModuleError(`${file}: cannot find the end of \`${anchor}\``);
  const inner = text.slice(open + 1, close);
  const body = inner.replace(/[\s,;]*$/, '');
  const replaced = inner.includes('\n') ? `${body}${separator}\n${entry}${separator}\n` : `${body}${separator} ${entry} `;
  return `${text.slice(0, open + 1)}${replaced}${text.slice(close)}`;
}

/** Adds `line` after the last import of a module. */
function addImport(text: string, line: string, file: string): string {
  const imports = [...text.matchAll(/^import .*;$/gm)];
  const last = imports.at(-1);
  if (!last || last.index === undefined) throw new NewModuleError(`${file} has no imports to add to`);
  const end = last.index + last[0].length;
  return `${text.slice(0, end)}\n${line}${text.slice(end)}`;
}

function read(root: string, file: string): string {
  const path = join(root, file);
  if (!existsSync(path)) throw new NewModuleError(`${file} is missing: is ${root} the repository root?`);
  return readFileSync(path, 'utf8');
}

/** The User model with a relation field to the new model, and the new model at the end of the schema. */
function withModel(schema: string, n: ModuleNames): string {
  if (new RegExp(`^model ${n.model} \\{`, 'm').test(schema)) {
    throw new NewModuleError(`prisma/schema.prisma already has a model ${n.model}: pick another name, or another model with --model`);
  }
  if (new RegExp(`@@map\\("${n.snake}"\\)`).test(schema)) throw new NewModuleError(`prisma/schema.prisma already maps a table ${n.snake}`);
  const user = /^model User \{\n/m.exec(schema);
  if (!user) throw new NewModuleError('prisma/schema.prisma has no model User to own the new rows');
  const close = closingBrace(schema, user.index + user[0].length - 2);
  const block = schema.slice(user.index, close);
  if (new RegExp(`^\\s+${n.camel}\\s`, 'm').test(block)) throw new NewModuleError(`model User already has a field ${n.camel}`);
  // Beside User's other relations: before the blank line that precedes its @@ attributes.
  const attributes = block.indexOf('\n\n  @@');
  const at = attributes < 0 ? close : user.index + attributes;
  const relation = `\n  ${n.camel} ${n.model}[]`;
  const withRelation = `${schema.slice(0, at)}${relation}${schema.slice(at)}`;
  return `${withRelation.trimEnd()}\n${prismaModel(n)}`;
}

export async function createModule(options: NewModuleOptions): Promise<NewModuleResult> {
  const { root } = options;
  const n = moduleNames(options.name, options.model);

  const files: [string, string][] = [
    [`server/src/modules/${n.kebab}/schemas.ts`, schemasFile(n)],
    [`server/src/modules/${n.kebab}/service.ts`, serviceFile(n)],
    [`server/src/modules/${n.kebab}/router.ts`, routerFile(n)],
    [`tests/modules/${n.kebab}/${n.kebab}.test.ts`, testFile(n)],
  ];
  for (const dir of [`server/src/modules/${n.kebab}`, `tests/modules/${n.kebab}`]) {
    if (existsSync(join(root, dir))) throw new NewModuleError(`${dir} already exists: nothing was written (new:module never overwrites)`);
  }

  const routerPath = 'server/src/router.ts';
  let appRouter = read(root, routerPath);
  if (new RegExp(`^\\s+${n.camel}:`, 'm').test(appRouter)) throw new NewModuleError(`${routerPath} already has a router named ${n.camel}`);
  appRouter = addImport(appRouter, `import { ${n.camel}Router } from './modules/${n.kebab}/router.js';`, routerPath);
  appRouter = appendMember(appRouter, 'export const appRouter = router(', `  ${n.camel}: ${n.camel}Router`, routerPath, ',');

  const servicesPath = 'server/src/services.ts';
  let services = read(root, servicesPath);
  if (new RegExp(`^\\s+${n.camel}:`, 'm').test(services))
    throw new NewModuleError(`${servicesPath} already has a service named ${n.camel}`);
  services = addImport(services, `import type { ${n.model}Service } from './modules/${n.kebab}/service.js';`, servicesPath);
  services = appendMember(services, 'export interface Services', `  ${n.camel}: ${n.model}Service`, servicesPath, ';');

  const depsPath = 'server/src/deps.ts';
  let deps = read(root, depsPath);
  deps = addImport(deps, `import { create${n.model}Service } from './modules/${n.kebab}/service.js';`, depsPath);
  const factory = `      ${n.camel}: create${n.model}Service(database.prisma, now)`;
  deps = appendMember(deps, 'services: {', factory, depsPath, ',', deps.indexOf('export function createAppDeps'));

  const schemaPath = 'prisma/schema.prisma';
  const schema = withModel(read(root, schemaPath), n);

  // Everything planned: now write.
  for (const [file, text] of files) {
    mkdirSync(dirname(join(root, file)), { recursive: true });
    writeFileSync(join(root, file), text, { flag: 'wx' });
  }
  writeFileSync(join(root, routerPath), appRouter);
  writeFileSync(join(root, servicesPath), services);
  writeFileSync(join(root, depsPath), deps);
  writeFileSync(join(root, schemaPath), schema);
  const typescript = [...files.map(([file]) => file), routerPath, servicesPath, depsPath];

  if (options.format !== false) {
    const biome = createRequire(import.meta.url).resolve('@biomejs/biome/bin/biome');
    // The files are named: git's ignore list has no say (and a copy without .gitignore must not stop Biome).
    await promisify(execFile)(process.execPath, [biome, 'check', '--write', '--vcs-enabled=false', ...typescript], { cwd: root }).catch(
      (error: unknown) => {
        const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
        throw new NewModuleError(`the module is written, but Biome could not format it (run \`pnpm format\`):\n${stdout}${stderr}`);
      },
    );
  }
  if (options.generate !== false) await generatePrismaClient({ schemaPath: join(root, schemaPath), stdio: 'pipe' });

  return { names: n, created: files.map(([file]) => file), changed: [routerPath, servicesPath, depsPath, schemaPath] };
}
