/**
 * The cluster's HAProxy and PgBouncer configurations, made from the production files in deploy/
 * by replacing only what a loopback cluster must change (addresses, ports, files, process
 * management, authentication): every timeout, check and pooling rule is the one users deploy.
 * A template that no longer has a line these replace fails loudly, so deploy/ cannot drift away
 * from what the tests run.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../config.js';

export const HAPROXY_TEMPLATE = join(PROJECT_ROOT, 'deploy/haproxy.cfg');
export const PGBOUNCER_TEMPLATE = join(PROJECT_ROOT, 'deploy/pgbouncer.ini');

export class TemplateError extends Error {
  override readonly name = 'TemplateError';
}

export interface HaproxyOptions {
  /** HAProxy's own port on 127.0.0.1. */
  port: number;
  /** The instances, in order: `keel1`, `keel2`, ... */
  servers: { name: string; port: number }[];
  /** The admin socket (`show stat`, `disable server`), for tests and `pnpm cluster`. */
  statsSocket: string;
}

/** Lines of `global` that run HAProxy as a system daemon; the cluster runs it in the foreground. */
const DAEMON_LINE = /^\s+(log|chroot|user|group|daemon|stats socket)\b/;

export function renderHaproxyConfig(template: string, options: HaproxyOptions): string {
  const out: string[] = [];
  let section = '';
  let bindDone = false;
  let serversDone = false;
  for (const line of template.split('\n')) {
    const header = /^(\S+)/.exec(line)?.[1];
    if (header && !line.startsWith('#')) section = header;
    if (section === 'global' && DAEMON_LINE.test(line)) continue;
    if (section === 'global' && header === 'global') {
      out.push(line);
      // On stdout, where the cluster reads them: server state changes, and (dontlog-normal below)
      // only the requests that ended abnormally, with HAProxy's termination state.
      out.push('    log stdout format raw local0 info');
      out.push(`    stats socket ${options.statsSocket} mode 600 level admin`);
      continue;
    }
    if (section === 'defaults' && header === 'defaults') {
      out.push(line, '    option dontlog-normal');
      continue;
    }
    if (/^\s+bind\s/.test(line)) {
      out.push(`    bind 127.0.0.1:${options.port}`);
      bindDone = true;
      continue;
    }
    if (/^\s+server\s/.test(line)) {
      if (!serversDone) {
        // Which instance answered, for tests and for trying the cluster by hand (never in production: it shows the topology).
        out.push('    http-response set-header X-Keel-Server %[srv_name]');
        for (const server of options.servers) out.push(`    server ${server.name} 127.0.0.1:${server.port}`);
        serversDone = true;
      }
      continue;
    }
    out.push(line);
  }
  if (!bindDone || !serversDone) {
    throw new TemplateError(
      `${HAPROXY_TEMPLATE} has no ${bindDone ? '`server` lines' : '`bind` line'}: the cluster cannot place its addresses`,
    );
  }
  return out.join('\n');
}

export interface PgbouncerOptions {
  port: number;
  /** PostgreSQL itself (the embedded server or DATABASE_URL). */
  serverUrl: string;
  /** Client authentication file (`"user" ""` lines: trust on the loopback). */
  authFile: string;
}

/** The name of the pooled database in deploy/pgbouncer.ini (Keel connects to `.../keel`). */
export const POOLED_DATABASE = 'keel';

const quote = (value: string): string => `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;

export function renderPgbouncerConfig(template: string, options: PgbouncerOptions): string {
  const server = new URL(options.serverUrl);
  const params: Record<string, string> = {
    host: server.hostname.replace(/^\[|\]$/g, ''),
    port: server.port || '5432',
    dbname: decodeURIComponent(server.pathname.slice(1)) || 'postgres',
    user: decodeURIComponent(server.username) || 'postgres',
    ...(server.password ? { password: decodeURIComponent(server.password) } : {}),
  };
  const settings: Record<string, string> = {
    listen_addr: '127.0.0.1',
    listen_port: String(options.port),
    auth_type: 'trust',
    auth_file: options.authFile,
    // Logs on stderr, which the cluster keeps; no unix socket, no pid file: nothing outside its directory.
    logfile: '',
    pidfile: '',
    unix_socket_dir: '',
  };
  const out: string[] = [];
  let section = '';
  let databaseDone = false;
  const seen = new Set<string>();
  for (const line of template.split('\n')) {
    const header = /^\[(\w+)\]/.exec(line)?.[1];
    if (header) section = header;
    const entry = /^(\w+)\s*=\s*(.*)$/.exec(line);
    if (entry && section === 'databases' && entry[1] === POOLED_DATABASE) {
      // Keep the template's options (connect_query, pool settings), point it at our server.
      const rest = (entry[2] ?? '').replace(/\b(host|port|dbname|user|password)=\S+\s*/g, '').trim();
      const target = Object.entries(params)
        .map(([key, value]) => `${key}=${quote(value)}`)
        .join(' ');
      out.push(`${POOLED_DATABASE} = ${target} ${rest}`.trim());
      databaseDone = true;
      continue;
    }
    if (entry && section === 'pgbouncer' && entry[1] !== undefined && entry[1] in settings) {
      out.push(`${entry[1]} = ${settings[entry[1]]}`);
      seen.add(entry[1]);
      continue;
    }
    out.push(line);
  }
  if (!databaseDone) throw new TemplateError(`${PGBOUNCER_TEMPLATE} has no \`${POOLED_DATABASE} = ...\` line in [databases]`);
  const missing = Object.keys(settings).filter((key) => !seen.has(key));
  if (missing.length > 0) out.push('', '; added by the cluster', ...missing.map((key) => `${key} = ${settings[key]}`));
  return out.join('\n');
}

export const readTemplate = (path: string): string => readFileSync(path, 'utf8');
