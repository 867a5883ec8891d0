/**
 * `ferry serve`: load config → build the server → listen → drain on SIGTERM/SIGINT.
 * Exit codes: 0 after a clean shutdown, 2 for an invalid option or a storage backend that does
 * not answer at start-up, 1 when start-up fails otherwise.
 */
import { SERVE_OPTIONS, loadConfig, formatHelp, OptionError, isHelpRequested } from './config/index.ts';
import { createFerryServer } from './server/index.ts';
import { FerryError } from './core/index.ts';

export const SERVE_HELP = formatHelp(
  'ferry serve [options]',
  'Serve files over HTTP with ranges, resumable zips and uploads.\nEvery option is also an environment variable FERRY_<UPPER_SNAKE> and a camelCase key in the --config JSON file.\nPrecedence: flag > env > file > default. Sizes: 512k, 64M, 1G. Rates: 10M (bytes/s). Durations: 250ms, 30s, 5m, 24h.',
  SERVE_OPTIONS,
  'Signals: SIGTERM/SIGINT stop accepting, let transfers finish up to --shutdown-grace, then exit 0.',
);

export async function runServe(argv: readonly string[]): Promise<number> {
  if (isHelpRequested(argv)) {
    process.stdout.write(`${SERVE_HELP}\n`);
    return 0;
  }
  let config;
  try {
    config = loadConfig({ argv, env: process.env });
  } catch (err) {
    if (err instanceof OptionError) {
      process.stderr.write(`ferry: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  let server;
  try {
    server = await createFerryServer(config);
  } catch (err) {
    // A storage backend that does not answer at start-up (unknown bucket, refused credentials,
    // unreachable endpoint) is a configuration problem: one line, exit code 2.
    if (err instanceof FerryError && err.code === 'FERRY_ERR_STORAGE_UNAVAILABLE') {
      process.stderr.write(`ferry: storage ${config.storage}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  try {
    const url = await server.listen();
    server.logger.info({ url, root: config.root, stateDir: config.stateDir }, `Ferry serving ${config.root} on ${url}`);
  } catch (err) {
    await server.close(0);
    // Options checked when the server becomes ready (tokens file, JWT keys) are still
    // option errors: one line, exit code 2.
    if (err instanceof OptionError) {
      process.stderr.write(`ferry: ${err.message}\n`);
      return 2;
    }
    server.logger.fatal({ err }, 'could not start');
    return 1;
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        server.logger.warn({ signal }, 'second signal: closing all connections now');
        server.app.server.closeAllConnections();
        return;
      }
      stopping = true;
      server.logger.info({ signal, graceMs: config.shutdownGrace }, 'shutting down: draining in-flight transfers');
      server.close().then(() => {
        server.logger.info('stopped');
        server.logger.flush();
        resolve(0);
      }, (err: unknown) => {
        server.logger.error({ err }, 'error while shutting down');
        resolve(1);
      });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
