/** A PostgreSQL identifier (database, schema, table name) quoted for SQL text: `"a""b"`. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
