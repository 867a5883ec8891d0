/**
 * Helpers for the zip integration and client tests. The server is the project's test server
 * (test/helpers/start-server.ts): the composition root registers the zip routes.
 */
import { readdir } from 'node:fs/promises';
import { startServer, type StartServerOptions, type TestServer } from '../../helpers/start-server.ts';

export type ZipTestServer = TestServer;

export function startZipServer(opts: Pick<StartServerOptions, 'options' | 'root'> = {}): Promise<ZipTestServer> {
  return startServer(opts);
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
