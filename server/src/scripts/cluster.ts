/**
 * `pnpm cluster [--instances 3] [--port 8080] [--dir .data/cluster]`: Keel scaled out on this machine, for trying it:
 * PostgreSQL (the embedded one under .data/cluster, or DIRECT_DATABASE_URL / DATABASE_URL),
 * PgBouncer in transaction mode, N Keel instances and HAProxy, all on 127.0.0.1, each configured
 * from deploy/. One line per step, the URL at the end; Ctrl-C stops everything.
 */
import { parseArgs } from 'node:util';
import { loadDotEnv, readEnv } from '../config.js';
import { type Cluster, startCluster } from './cluster/cluster.js';

const USAGE = 'usage: pnpm cluster [--instances 3] [--port 8080] [--dir .data/cluster]';
const log = (message: string): void => {
  process.stdout.write(`[keel] cluster: ${message}\n`);
};
const fail = (message: string): never => {
  process.stderr.write(`[keel] cluster: ${message}\n`);
  process.exit(1);
};

async function main(): Promise<void> {
  let values: { instances?: string; port?: string; dir?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        instances: { type: 'string', short: 'n' },
        port: { type: 'string', short: 'p' },
        dir: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (error) {
    return fail(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
  }
  if (values.help) {
    log(USAGE);
    return;
  }
  const instances = Number(values.instances ?? 3);
  const port = Number(values.port ?? 8080);
  if (!Number.isInteger(instances) || instances < 1 || instances > 16)
    fail(`--instances: expected 1 to 16, got ${values.instances}\n${USAGE}`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`--port: expected a port number, got ${values.port}\n${USAGE}`);
  loadDotEnv();
  // The instances reach PostgreSQL through PgBouncer: what the cluster needs is the server itself.
  const databaseUrl = readEnv('DIRECT_DATABASE_URL') ?? readEnv('DATABASE_URL');

  let cluster: Cluster | undefined;
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping everything`);
    try {
      await cluster?.stop();
      log('stopped');
      process.exit(0);
    } catch (error) {
      fail(`stopping failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  try {
    cluster = await startCluster({ instances, port, databaseUrl, log, ...(values.dir ? { dir: values.dir } : {}) });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const hint = /ENOENT|could not start (haproxy|pgbouncer)/.test(message)
      ? ' (install the engines: apt-get install haproxy pgbouncer)'
      : /EADDRINUSE|cannot bind/i.test(message)
        ? ` (port ${port} is taken: pass --port)`
        : '';
    return fail(`could not start the cluster: ${message}${hint}`);
  }
  if (stopping) return;
  log(`ready: ${cluster.url} (try ${cluster.url}/readyz; the X-Keel-Server header names the instance); Ctrl-C stops everything`);
  for (const instance of cluster.instances) {
    void instance.process().exited.then((exit) => {
      if (!stopping) log(`${instance.name} exited (code ${exit.code}, signal ${exit.signal}): see ${cluster?.dir}/${instance.name}.log`);
    });
  }
}

void main();
