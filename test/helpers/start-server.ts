/**
 * Real Ferry servers for tests: in-process (fast, inspectable) or as a child process
 * (signals, kill -9). Both listen on 127.0.0.1 port 0 with their own temp root and state dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import path from 'node:path';
import { createInterface } from 'node:readline';
import pino from 'pino';
import { createFerryServer, type FerryServer } from '../../src/server/index.ts';
import { loadConfig } from '../../src/config/index.ts';
import type { FerryConfig } from '../../src/config/index.ts';
import { makeTempDir } from './temp-dir.ts';

export const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..');
export const CLI = path.join(REPO_ROOT, 'src', 'cli.ts');

export interface TestServer extends AsyncDisposable {
  server: FerryServer;
  url: string;
  root: string;
  stateDir: string;
  /** Log lines (parsed JSON) written so far. */
  logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

export interface StartServerOptions {
  /** Options as in the config file (camelCase; human units as strings are fine). */
  options?: Partial<Record<keyof FerryConfig, unknown>>;
  /** Use this root instead of a new temp dir. */
  root?: string;
  stateDir?: string;
}

/** Starts Ferry in this process. Register `t.after(() => s.close())` right after. */
export async function startServer(opts: StartServerOptions = {}): Promise<TestServer> {
  const tmp = await makeTempDir();
  const root = opts.root ?? path.join(tmp.dir, 'files');
  const stateDir = opts.stateDir ?? path.join(tmp.dir, 'state');
  const config = loadConfig({ env: {}, overrides: { host: '127.0.0.1', port: 0, root, stateDir, logLevel: 'info', ...opts.options } });
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() !== '') {
          try { logs.push(JSON.parse(line) as Record<string, unknown>); } catch { /* not JSON */ }
        }
      }
      cb();
    },
  });
  const logger = pino({ level: config.logLevel, redact: { paths: ['req.headers.authorization'], censor: '[Redacted]' } }, sink);
  const server = await createFerryServer(config, { logger });
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

export interface ChildServer extends AsyncDisposable {
  child: ChildProcess;
  url: string;
  root: string;
  stateDir: string;
  /** Every stdout line (JSON logs) so far. */
  lines: string[];
  /** Resolves with the exit code when the process ends. */
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): void;
  /**
   * Resolves with the first line (already written or still to come) that `match` accepts;
   * rejects after `timeoutMs` (default 10 s) or when the process exits first. A log line is
   * written after the response it is about has ended: wait for it, do not look once.
   */
  waitForLine(match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
}

/** Starts `node src/cli.ts serve` as a child process on port 0 and waits for its URL. */
export async function startChildServer(args: string[] = [], opts: { root?: string; stateDir?: string; env?: Record<string, string> } = {}): Promise<ChildServer> {
  const tmp = await makeTempDir();
  const root = opts.root ?? path.join(tmp.dir, 'files');
  const stateDir = opts.stateDir ?? path.join(tmp.dir, 'state');
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--host', '127.0.0.1', '--root', root, '--state-dir', stateDir, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FERRY_'))), ...opts.env },
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const lines: string[] = [];
  const rl = createInterface({ input: child.stdout! });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const url = await new Promise<string>((resolve, reject) => {
    rl.on('line', (line) => {
      lines.push(line);
      try {
        const rec = JSON.parse(line) as { url?: string };
        if (typeof rec.url === 'string') resolve(rec.url);
      } catch { /* ignore */ }
    });
    void exited.then((code) => reject(new Error(`server exited early (${code}): ${stderr}`)));
  });
  const kill = (signal: NodeJS.Signals = 'SIGTERM'): void => { if (child.exitCode === null && child.signalCode === null) child.kill(signal); };
  const waitForLine = (match: (line: string) => boolean, timeoutMs = 10_000): Promise<string> => {
    const found = lines.find(match);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise<string>((resolve, reject) => {
      const onLine = (line: string): void => { if (match(line)) { done(); resolve(line); } };
      const timer = setTimeout(() => { done(); reject(new Error(`no matching log line within ${timeoutMs} ms`)); }, timeoutMs);
      const onExit = (): void => { done(); reject(new Error('the server exited before the log line came')); };
      const done = (): void => { clearTimeout(timer); rl.off('line', onLine); child.off('exit', onExit); };
      rl.on('line', onLine);
      child.once('exit', onExit);
    });
  };
  return {
    child, url, root, stateDir, lines, exited, kill, waitForLine,
    async [Symbol.asyncDispose]() {
      kill('SIGKILL');
      await exited;
      await tmp.remove();
    },
  };
}
