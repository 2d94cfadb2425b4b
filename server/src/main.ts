/** Process entry: config, logger, server, signals. `pnpm dev` / `pnpm start` run this file. */
import { loadConfigOrExit } from './config.js';
import { createLogger, exitWhenLogged } from './logger.js';
import { startServer } from './server.js';

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger(config);
  const fail = (what: string) => (error: unknown) => {
    logger.fatal({ err: error }, what);
    // The server may still be running: give the line a moment, not the whole grace.
    exitWhenLogged(1, 200);
  };
  process.on('unhandledRejection', fail('unhandled promise rejection: exiting'));
  process.on('uncaughtException', fail('uncaught exception: exiting'));

  logger.info(`starting Keel (${config.env})`);
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer(config, logger);
  } catch (error) {
    logger.fatal(error instanceof Error ? error.message : String(error));
    exitWhenLogged(1);
    return;
  }

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      // Ctrl-C twice, or an orchestrator in a hurry: skip what is left of the drain, still finish the requests.
      logger.info(
        server.skipDrain()
          ? `${signal} again: not waiting for the rest of the drain`
          : `${signal} again: already stopping (in-flight requests finish first)`,
      );
      return;
    }
    stopping = true;
    const { shutdownDrainMs, shutdownTimeoutMs } = config.http;
    logger.info(
      `${signal}: stopping (${shutdownDrainMs > 0 ? `draining ${shutdownDrainMs} ms, then ` : ''}waiting up to ${shutdownTimeoutMs} ms for in-flight requests)`,
    );
    server.close().then(() => {
      logger.info('stopped');
      exitWhenLogged(0);
    }, fail('shutdown failed'));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Started by the development supervisor (scripts/dev.ts) with an IPC channel: when it is gone
  // (killed), stop as on SIGTERM rather than serve on as an orphan.
  if (process.channel) {
    process.channel.unref();
    process.once('disconnect', () => stop('SIGTERM'));
  }
}

void main();
