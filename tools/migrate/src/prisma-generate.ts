/**
 * `prisma generate` without network, for `pnpm db:generate` and for `pnpm db:migrate:dev` (which
 * regenerates after applying a migration, as `prisma migrate dev` did up to Prisma 6: without it the
 * new model is missing on `db` and a running dev server answers 500). The CLI insists on locating
 * its native schema engine even though generation never runs it; pointing
 * PRISMA_SCHEMA_ENGINE_BINARY at any existing file satisfies that check (see
 * docs/decisions/0003-offline-migrations.md).
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
/** The repository root: where prisma.config.ts is. */
const PROJECT_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export class PrismaGenerateError extends Error {
  override readonly name = 'PrismaGenerateError';
}

export interface GenerateOptions {
  /** Another schema than prisma.config.ts names (tests); the client goes where its generator's `output` says. */
  schemaPath?: string;
  /** Where the CLI's own output goes; the terminal by default. */
  stdio?: 'inherit' | 'pipe';
}

/** Runs `prisma generate`; rejects with the CLI's output when it fails (a schema error, say). */
export function generatePrismaClient(options: GenerateOptions = {}): Promise<void> {
  const cli = require.resolve('prisma/build/index.js');
  const args = [cli, 'generate', ...(options.schemaPath ? ['--schema', options.schemaPath] : [])];
  const piped = options.stdio === 'pipe';
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', piped ? 'pipe' : 'inherit', piped ? 'pipe' : 'inherit'],
      env: {
        ...process.env,
        PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? process.execPath,
        PRISMA_HIDE_UPDATE_MESSAGE: '1',
        CHECKPOINT_DISABLE: '1',
      },
    });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new PrismaGenerateError(`prisma generate failed (exit code ${code ?? 'none'})${output ? `:\n${output.trim()}` : ''}`));
    });
  });
}
