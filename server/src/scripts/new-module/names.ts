/**
 * The names of a generated module, from the one its author gives (`widgets`, `team-members` or
 * `teamMembers`): the folder and REST path (kebab-case), the router and services key (camelCase),
 * the Prisma model (PascalCase singular) and its table (snake_case).
 */

export interface ModuleNames {
  /** `team-members`: server/src/modules/<kebab>/, tests/modules/<kebab>/, /api/<kebab>, the OpenAPI tag. */
  kebab: string;
  /** `teamMembers`: the key in appRouter and in `deps.services`, the relation on User. */
  camel: string;
  /** `TeamMembers`: in plural names (`listTeamMembersInput`). */
  pascal: string;
  /** `team_members`: the table. */
  snake: string;
  /** `TeamMember`: the Prisma model and the row type. */
  model: string;
  /** `teamMember`: the Prisma delegate (`db.teamMember`) and singular names (`teamMemberSchema`). */
  entity: string;
  /** `team member`: in messages. */
  words: string;
  /** `team members`: in messages. */
  pluralWords: string;
}

export class ModuleNameError extends Error {
  override readonly name = 'ModuleNameError';
}

const KEBAB = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const CAMEL = /^[a-z][a-zA-Z0-9]*$/;
const MODEL = /^[A-Z][a-zA-Z0-9]*$/;

/**
 * Names a module may not take: JavaScript's reserved words, what tRPC refuses as a router key,
 * Object.prototype's keys, and what the app already uses at the top of its router, its REST
 * surface (/api/health, /docs, /openapi.json) or tests/ (support, e2e, ...).
 */
const RESERVED = new Set([
  ...'await break case catch class const continue debugger default delete do else enum export extends false finally for function if implements import in instanceof interface let new null package private protected public return static super switch this throw true try typeof var void while with yield arguments eval'.split(
    ' ',
  ),
  ...'then call apply constructor prototype toString valueOf hasOwnProperty'.split(' '),
  ...'system auth health healthz readyz docs openapi api trpc support e2e db http mail domain sdk scripts generated lib modules'.split(' '),
]);

function words(name: string): string[] {
  if (KEBAB.test(name)) return name.split('-');
  if (CAMEL.test(name))
    return name
      .replace(/([A-Z])/g, '-$1')
      .toLowerCase()
      .split('-');
  throw new ModuleNameError(
    `"${name}" is not a module name: use kebab-case or camelCase letters and digits, starting with a letter (widgets, team-members, teamMembers)`,
  );
}

/** A plural English noun made singular, for the common cases; `--model` names the others. */
export function singular(word: string): string {
  if (/[^aeiou]ies$/.test(word)) return `${word.slice(0, -3)}y`;
  if (/(ss|sh|ch|x|z)es$/.test(word)) return word.slice(0, -2);
  if (/[^s]s$/.test(word)) return word.slice(0, -1);
  return word;
}

const capital = (word: string) => `${word.charAt(0).toUpperCase()}${word.slice(1)}`;

/** Validates `name` and derives every name of the module; `model` overrides the singular. */
export function moduleNames(name: string, model?: string): ModuleNames {
  if (name.length > 40) throw new ModuleNameError(`"${name}" is longer than 40 characters`);
  const parts = words(name);
  const kebab = parts.join('-');
  const camel = parts.map((part, i) => (i === 0 ? part : capital(part))).join('');
  if (RESERVED.has(kebab) || RESERVED.has(camel)) throw new ModuleNameError(`"${name}" is a reserved name: pick another`);
  if (model !== undefined && !MODEL.test(model)) {
    throw new ModuleNameError(`--model "${model}" is not a Prisma model name: PascalCase letters and digits (TeamMember)`);
  }
  const singularParts = [...parts.slice(0, -1), singular(parts.at(-1) as string)];
  const modelName = model ?? singularParts.map(capital).join('');
  if (['Prisma', 'PrismaClient'].includes(modelName))
    throw new ModuleNameError(`${modelName} is Prisma's own name: pass another with --model`);
  const entity = `${modelName.charAt(0).toLowerCase()}${modelName.slice(1)}`;
  return {
    kebab,
    camel,
    pascal: parts.map(capital).join(''),
    snake: parts.join('_'),
    model: modelName,
    entity,
    words: modelName.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase(),
    pluralWords: parts.join(' '),
  };
}
