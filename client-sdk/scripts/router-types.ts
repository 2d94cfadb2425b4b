/**
 * Prints the server's procedure shapes (src/router.ts) as literal types, so the published
 * declarations need nothing of the server. The printer is structural on purpose: a type alias or
 * interface declared in the server (or in zod) is expanded, never named, because the consumer
 * could not resolve its name. Globals from TypeScript's own lib (Date, Map...) keep their name.
 * A type it cannot print as plain data (a function, a class instance) stops the build.
 */
import ts from 'typescript';

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function propertyKey(name: string): string {
  return IDENTIFIER.test(name) ? name : JSON.stringify(name);
}

function isFromDefaultLib(program: ts.Program, symbol: ts.Symbol | undefined): boolean {
  const declarations = symbol?.declarations ?? [];
  return (
    declarations.length > 0 &&
    declarations.every((d) => {
      const file = d.getSourceFile();
      return program.isSourceFileDefaultLibrary(file) || /[\\/]typescript[\\/]lib[\\/]lib\.[^\\/]*\.d\.ts$/.test(file.fileName);
    })
  );
}

export class TypePrinter {
  private readonly checker: ts.TypeChecker;

  constructor(private readonly program: ts.Program) {
    this.checker = program.getTypeChecker();
  }

  print(type: ts.Type, path: string, indent = ''): string {
    const { checker } = this;
    const flags = type.flags;
    if (
      flags &
      (ts.TypeFlags.Any |
        ts.TypeFlags.Unknown |
        ts.TypeFlags.String |
        ts.TypeFlags.Number |
        ts.TypeFlags.Boolean |
        ts.TypeFlags.BigInt |
        ts.TypeFlags.Void |
        ts.TypeFlags.Undefined |
        ts.TypeFlags.Null |
        ts.TypeFlags.Never |
        ts.TypeFlags.ESSymbol |
        ts.TypeFlags.NonPrimitive |
        ts.TypeFlags.StringLiteral |
        ts.TypeFlags.NumberLiteral |
        ts.TypeFlags.BooleanLiteral |
        ts.TypeFlags.BigIntLiteral |
        ts.TypeFlags.TemplateLiteral)
    ) {
      return checker.typeToString(type, undefined, ts.TypeFormatFlags.NoTruncation | ts.TypeFormatFlags.InTypeAlias);
    }
    if (type.isUnion()) return this.union(type.types, path, indent);
    if (type.isIntersection()) return type.types.map((t) => this.wrap(t, path, indent)).join(' & ');
    if (flags & ts.TypeFlags.Object) return this.object(type as ts.ObjectType, path, indent);
    throw new Error(`${path}: cannot print a type of kind ${ts.TypeFlags[flags] ?? flags} (${checker.typeToString(type)})`);
  }

  /** `true | false` is printed as `boolean`; `null` and `undefined` go last, as people write them. */
  private union(types: ts.Type[], path: string, indent: string): string {
    const rank = (t: ts.Type) => (t.flags & ts.TypeFlags.Undefined ? 2 : t.flags & ts.TypeFlags.Null ? 1 : 0);
    const members = [...types].sort((a, b) => rank(a) - rank(b));
    const isTrue = (t: ts.Type) => t.flags & ts.TypeFlags.BooleanLiteral && this.checker.typeToString(t) === 'true';
    const isFalse = (t: ts.Type) => t.flags & ts.TypeFlags.BooleanLiteral && this.checker.typeToString(t) === 'false';
    const bothBooleans = members.some(isTrue) && members.some(isFalse);
    const parts: string[] = [];
    for (const member of members) {
      if (bothBooleans && (isTrue(member) || isFalse(member))) {
        if (!parts.includes('boolean')) parts.push('boolean');
      } else {
        parts.push(this.wrap(member, path, indent));
      }
    }
    return parts.join(' | ');
  }

  /** Parenthesised when it would otherwise bind wrongly inside `|`, `&` or `[]`. */
  private wrap(type: ts.Type, path: string, indent: string): string {
    const printed = this.print(type, path, indent);
    return type.isUnion() || type.isIntersection() ? `(${printed})` : printed;
  }

  /** `Name<A, B>`, each argument printed by these rules (a server type as an argument is expanded too). */
  private generic(name: string, args: readonly ts.Type[], path: string, indent: string): string {
    if (args.length === 0) return name;
    return `${name}<${args.map((arg, i) => this.print(arg, `${path}<${i}>`, indent)).join(', ')}>`;
  }

  private object(type: ts.ObjectType, path: string, indent: string): string {
    const { checker } = this;
    if (checker.isArrayType(type) || checker.isTupleType(type)) {
      const elements = checker.getTypeArguments(type as ts.TypeReference);
      const readonly = (type as ts.TypeReference).target.symbol?.name === 'ReadonlyArray' ? 'readonly ' : '';
      if (checker.isArrayType(type)) return `${readonly}${this.wrap(elements[0] as ts.Type, `${path}[]`, indent)}[]`;
      return `${readonly}[${elements.map((e, i) => this.print(e, `${path}[${i}]`, indent)).join(', ')}]`;
    }
    const symbol = type.aliasSymbol ?? type.getSymbol();
    // A lib alias (Record<K, V>, Partial<T>): its name, with arguments printed by these rules.
    if (type.aliasSymbol && isFromDefaultLib(this.program, type.aliasSymbol)) {
      return this.generic(type.aliasSymbol.name, type.aliasTypeArguments ?? [], path, indent);
    }
    if (isFromDefaultLib(this.program, type.getSymbol())) {
      const args = type.objectFlags & ts.ObjectFlags.Reference ? checker.getTypeArguments(type as ts.TypeReference) : [];
      if (args.length > 0) return this.generic(type.getSymbol()?.name ?? '', args, path, indent);
      // InTypeAlias: never the name of an alias declared outside the lib (`FieldErrors` for a
      // Record<string, string[]>): which alias the checker attaches depends on what it checked first.
      return checker.typeToString(type, undefined, ts.TypeFormatFlags.NoTruncation | ts.TypeFormatFlags.InTypeAlias);
    }
    if (type.getCallSignatures().length > 0 || type.getConstructSignatures().length > 0) {
      throw new Error(`${path}: ${symbol?.name ?? 'a type'} has call signatures, which are not data`);
    }
    const inner = `${indent}  `;
    const lines: string[] = [];
    for (const info of checker.getIndexInfosOfType(type)) {
      const key = checker.typeToString(info.keyType);
      lines.push(`${inner}${info.isReadonly ? 'readonly ' : ''}[key: ${key}]: ${this.print(info.type, `${path}[${key}]`, inner)};`);
    }
    for (const property of checker.getPropertiesOfType(type)) {
      const optional = property.flags & ts.SymbolFlags.Optional ? '?' : '';
      const declaration = property.valueDeclaration ?? property.declarations?.[0];
      const readonly = declaration && ts.getCombinedModifierFlags(declaration) & ts.ModifierFlags.Readonly ? 'readonly ' : '';
      const propertyType = checker.getTypeOfSymbol(property);
      const doc = ts.displayPartsToString(property.getDocumentationComment(checker));
      if (doc) lines.push(`${inner}/** ${doc.replace(/\*\//g, '*\\/').split('\n').join(`\n${inner} * `)} */`);
      lines.push(
        `${inner}${readonly}${propertyKey(property.name)}${optional}: ${this.print(propertyType, `${path}.${property.name}`, inner)};`,
      );
    }
    return lines.length === 0 ? '{}' : `{\n${lines.join('\n')}\n${indent}}`;
  }
}

/** The text of the published router.ts: the procedure shapes and the error shape, as literal types. */
export function printRouterModule(program: ts.Program, routerFile: string): string {
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(routerFile);
  const moduleSymbol = source && checker.getSymbolAtLocation(source);
  if (!moduleSymbol) throw new Error(`${routerFile} is not part of the program`);
  const exported = (name: string) => {
    const symbol = checker.getExportsOfModule(moduleSymbol).find((s) => s.name === name);
    if (!symbol) throw new Error(`${routerFile} does not export ${name}`);
    return checker.getDeclaredTypeOfSymbol(symbol);
  };
  const printer = new TypePrinter(program);

  const record = (type: ts.Type, path: string, indent: string): string => {
    const lines: string[] = [];
    for (const property of checker.getPropertiesOfType(type)) {
      const child = checker.getTypeOfSymbol(property);
      const name = path ? `${path}.${property.name}` : property.name;
      const kind = child.getProperty('procedure');
      const input = child.getProperty('input');
      const output = child.getProperty('output');
      const inner = `${indent}  `;
      if (kind && input && output) {
        const part = (symbol: ts.Symbol, what: string) => printer.print(checker.getTypeOfSymbol(symbol), `${name} ${what}`, inner);
        lines.push(
          `${inner}${propertyKey(property.name)}: ProcedureShape<${part(kind, 'type')}, ${part(input, 'input')}, ${part(output, 'output')}>;`,
        );
      } else {
        lines.push(`${inner}${propertyKey(property.name)}: ${record(child, name, inner)};`);
      }
    }
    return `{\n${lines.join('\n')}\n${indent}}`;
  };

  return [
    '// Generated by client-sdk/scripts/build.ts from the server router type: the procedure shapes as literal types.',
    "import type { ProcedureShape } from './shape.js';",
    '',
    "/** Every procedure of the server, by path: `AppRouterShape['auth']['login']`. */",
    `export interface AppRouterShape ${record(exported('AppRouterShape'), '', '')}`,
    '',
    "/** The error shape the server's error formatter produces. */",
    `export type AppErrorShape = ${printer.print(exported('AppErrorShape'), 'AppErrorShape')};`,
    '',
    "/** How the client keeps its refresh token: in the answers' body (`bearer`) or in an HttpOnly cookie (`cookie`). */",
    `export type AuthMode = ${printer.print(exported('AuthMode'), 'AuthMode')};`,
    '',
  ].join('\n');
}
