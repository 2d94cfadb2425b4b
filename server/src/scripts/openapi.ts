/**
 * `pnpm openapi:generate`: writes the OpenAPI document snapshot and the TypeScript types generated
 * from it (see server/src/openapi/artifacts.ts). `--check` writes nothing and fails when they are stale.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { DOCUMENT_SNAPSHOT_FILE, renderDocument, renderTypes, TYPES_FILE } from '../openapi/artifacts.js';

const check = process.argv.includes('--check');
const documentJson = renderDocument();
const files: [string, string][] = [
  [DOCUMENT_SNAPSHOT_FILE, documentJson],
  [TYPES_FILE, await renderTypes(documentJson)],
];

const read = (file: string) => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};

let stale = 0;
for (const [file, content] of files) {
  if (read(file) === content) continue;
  stale += 1;
  if (check) {
    process.stderr.write(`[keel] ${file} is out of date: run pnpm openapi:generate\n`);
  } else {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
    process.stderr.write(`[keel] wrote ${file}\n`);
  }
}
if (stale === 0) process.stderr.write('[keel] OpenAPI document and types are up to date\n');
if (check && stale > 0) process.exit(1);
