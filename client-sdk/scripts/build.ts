/**
 * Builds dist/: ESM (dist/esm) and CommonJS (dist/cjs) JavaScript with their declarations, with no
 * trace of the server.
 *
 * 1. Reads the server's procedure shapes from src/router.ts (which imports the server's router
 *    type) and prints them as literal types (router-types.ts).
 * 2. Compiles src/ with that printed module in place of src/router.ts: the server is then not
 *    even part of the program, so nothing of it can reach the output. The CommonJS build is the
 *    ESM output converted module by module (TypeScript's own transform), so both hold the same code.
 * 3. Checks the output: no `@prisma/*`, no server path, and only declared dependencies imported.
 * 4. Replaces dist/ with the new output in one rename: a failed build leaves the previous dist/ in
 *    place, and a linked consumer (`pnpm sdk:watch`) never sees a half-written one.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { printRouterModule } from './router-types.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');
const dist = join(root, 'dist');
const routerFile = join(src, 'router.ts');
// Beside dist/ on the same file system (so the final rename is atomic), ignored by git and Biome.
const work = join(root, 'node_modules/.keel-build');
const staging = join(work, 'dist');
const started = performance.now();

function fail(message: string): never {
  process.stderr.write(`[client-sdk build] ${message}\n`);
  process.exit(1);
}

function report(diagnostics: readonly ts.Diagnostic[], what: string): void {
  if (diagnostics.length === 0) return;
  const host: ts.FormatDiagnosticsHost = {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => root,
    getNewLine: () => '\n',
  };
  fail(`${what}:\n${ts.formatDiagnosticsWithColorAndContext(diagnostics, host)}`);
}

/**
 * The diagnostics of `files` only (plus the program's global ones). Type-checking the whole server
 * here would repeat the repository's typecheck and triple the build time; the files that matter
 * still pull in every server type they reach.
 */
function diagnosticsOf(program: ts.Program, files: (file: string) => boolean): ts.Diagnostic[] {
  const own = program.getSourceFiles().filter((f) => files(resolve(f.fileName)));
  return [
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...own.flatMap((f) => [...program.getSyntacticDiagnostics(f), ...program.getSemanticDiagnostics(f)]),
  ];
}

const config = ts.getParsedCommandLineOfConfigFile(
  join(root, 'tsconfig.build.json'),
  {},
  {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => report([d], 'tsconfig.build.json'),
  },
);
if (!config) fail('cannot read tsconfig.build.json');
report(config.errors, 'tsconfig.build.json');

// 1. The shapes, read with the server in the program.
const withServer = ts.createProgram({ rootNames: [routerFile], options: { ...config.options, noEmit: true, rootDir: undefined } });
// Only the SDK's own files: the server's are checked by the repository's typecheck (some of its
// modules rely on augmentations loaded by the HTTP host, which this program does not include).
report(
  diagnosticsOf(withServer, (file) => file.startsWith(src)),
  'type errors reading the server router',
);
const routerText = printRouterModule(withServer, routerFile);

/** A compiler host that reads `files` from memory and everything else from disk. */
function hostWith(options: ts.CompilerOptions, files: Map<string, string>): ts.CompilerHost {
  const host = ts.createCompilerHost(options);
  const { readFile, getSourceFile, fileExists } = host;
  host.fileExists = (file) => files.has(resolve(file)) || fileExists.call(host, file);
  host.readFile = (file) => files.get(resolve(file)) ?? readFile.call(host, file);
  host.getSourceFile = (file, language, onError, shouldCreate) => {
    const text = files.get(resolve(file));
    return text === undefined ? getSourceFile.call(host, file, language, onError, shouldCreate) : ts.createSourceFile(file, text, language);
  };
  return host;
}

// The printed shapes must be the very types the server's router gives (mutually assignable).
const printedFile = join(src, '__printed-router.ts');
const checkFile = join(src, '__printed-router-check.ts');
const checkText = `import type { AppErrorShape as ServerErrors, AppRouterShape as ServerShape } from './router.js';
import type { AppErrorShape as PrintedErrors, AppRouterShape as PrintedShape } from './__printed-router.js';
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const sameProcedures: Same<ServerShape, PrintedShape> = true;
export const sameErrors: Same<ServerErrors, PrintedErrors> = true;
`;
const checkOptions = { ...config.options, noEmit: true, rootDir: undefined };
const checked = ts.createProgram({
  rootNames: [routerFile, printedFile, checkFile],
  options: checkOptions,
  host: hostWith(
    checkOptions,
    new Map([
      [printedFile, routerText],
      [checkFile, checkText],
    ]),
  ),
  oldProgram: withServer,
});
report(
  diagnosticsOf(checked, (file) => file === printedFile || file === checkFile),
  'the printed router types differ from the server router',
);

// 2. The SDK alone, with the printed shapes: ESM into staging/esm.
rmSync(work, { recursive: true, force: true });
const esmDir = join(staging, 'esm');
const cjsDir = join(staging, 'cjs');
const options = { ...config.options, outDir: esmDir };
const program = ts.createProgram({
  rootNames: config.fileNames,
  options,
  host: hostWith(options, new Map([[routerFile, routerText]])),
});
report(ts.getPreEmitDiagnostics(program), 'type errors in the SDK built without the server');
const serverFiles = program.getSourceFiles().filter((f) => !f.fileName.includes('/node_modules/') && !resolve(f.fileName).startsWith(src));
if (serverFiles.length > 0) fail(`files outside src/ in the program: ${serverFiles.map((f) => f.fileName).join(', ')}`);
const emitted: string[] = [];
const result = program.emit(undefined, (file, text, bom) => {
  emitted.push(file);
  ts.sys.writeFile(file, text, bom);
});
report(result.diagnostics, 'emit');

// CommonJS: each ESM module converted, declarations alongside; dist/cjs/package.json makes Node and
// TypeScript read that folder as CommonJS (the package itself is "type": "module").
for (const file of [...emitted]) {
  const target = join(cjsDir, relative(esmDir, file));
  const text = readFileSync(file, 'utf8');
  let output = text;
  if (file.endsWith('.js')) {
    const converted = ts.transpileModule(text, {
      fileName: file,
      reportDiagnostics: true,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: options.target, esModuleInterop: true, verbatimModuleSyntax: false },
    });
    report(converted.diagnostics ?? [], `CommonJS conversion of ${relative(staging, file)}`);
    output = converted.outputText;
  }
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, output);
  emitted.push(target);
}
writeFileSync(join(cjsDir, 'package.json'), `${JSON.stringify({ type: 'commonjs' })}\n`);

// 3. What the package ships mentions nothing of the server.
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
};
const allowed = [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})];
const problems: string[] = [];
for (const file of emitted) {
  const text = readFileSync(file, 'utf8');
  const name = relative(staging, file);
  if (/@prisma\//.test(text)) problems.push(`${name} mentions @prisma/`);
  if (/server\/src|@keel\/server/.test(text)) problems.push(`${name} mentions the server`);
  for (const [, specifier] of text.matchAll(/(?:\bfrom|\bimport|\brequire)\s*\(?\s*['"]([^'"]+)['"]/g)) {
    if (!specifier) continue;
    const bare = specifier.startsWith('.')
      ? undefined
      : specifier
          .split('/')
          .slice(0, specifier.startsWith('@') ? 2 : 1)
          .join('/');
    if (bare !== undefined && !allowed.includes(bare)) problems.push(`${name} imports ${specifier}, which is not a (peer) dependency`);
    if (specifier.startsWith('..')) problems.push(`${name} imports ${specifier}, outside the package`);
  }
}
if (problems.length > 0) fail(`the output is not self-contained:\n  ${problems.join('\n  ')}`);

// 4. In place of the previous dist/.
const previous = join(work, 'previous');
try {
  renameSync(dist, previous);
} catch (error) {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
}
renameSync(staging, dist);
rmSync(work, { recursive: true, force: true });
const files = readdirSync(dist, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile()).length;
const seconds = ((performance.now() - started) / 1000).toFixed(1);
process.stdout.write(`[client-sdk build] ${files} files in ${relative(process.cwd(), dist) || '.'} (ESM and CommonJS) in ${seconds} s\n`);
