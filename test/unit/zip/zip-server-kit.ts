/**
 * A real Ferry server for the zip integration and client tests: the same composition as
 * test/helpers/start-server.ts (createFerryServer on 127.0.0.1 port 0, temp root and state dir,
 * JSON logs captured), plus the zip routes if the composition root does not register them
 * (yet): then they are registered here, before listening, exactly as src/server would.
 */
import { Writable } from 'node:stream';
import path from 'node:path';
import { readdir } from 'node:fs/promises';
import pino from 'pino';
import { createFerryServer, type FerryServer } from '../../../src/server/index.ts';
import { loadConfig, type FerryConfig } from '../../../src/config/index.ts';
import { registerZipRoutes } from '../../../src/serve/zip-route.ts';
import { makeTempDir } from '../../helpers/temp-dir.ts';

export interface ZipTestServer extends AsyncDisposable {
  server: FerryServer;
  url: string;
  root: string;
  stateDir: string;
  logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

export async function startZipServer(opts: { options?: Partial<Record<keyof FerryConfig, unknown>>; root?: string } = {}): Promise<ZipTestServer> {
  const tmp = await makeTempDir('ferry-zip-it-');
  const root = opts.root ?? path.join(tmp.dir, 'files');
  const stateDir = path.join(tmp.dir, 'state');
  const config = loadConfig({ env: {}, overrides: { host: '127.0.0.1', port: 0, root, stateDir, logLevel: 'info', ...opts.options } });
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        try { logs.push(JSON.parse(line) as Record<string, unknown>); } catch { /* not JSON */ }
      }
      cb();
    },
  });
  const logger = pino({ level: config.logLevel }, sink);
  const server = await createFerryServer(config, { logger });
  if (!server.app.hasRoute({ method: 'GET', url: '/zip/*' })) {
    registerZipRoutes(server.app, { config, storage: server.storage, meta: server.meta });
  }
  const url = await server.listen();
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await server.close(0);
    await tmp.remove();
  };
  return { server, url, root, stateDir, logs, close, [Symbol.asyncDispose]: close };
}

/** Open file descriptors of this process (Linux). */
export async function openFdCount(): Promise<number> {
  return (await readdir('/proc/self/fd')).length;
}

/** Waits (bounded) until `check()` is true, polling: for states no event announces (fd counts). */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
