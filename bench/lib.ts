/** Pieces every macro benchmark shares. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { parseSize } from '../src/core/units.ts';

export interface ServerProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Stops the process (SIGTERM by default) and waits for it. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Spawns `node ARGS…` (a Ferry server that logs JSON to stdout) without the caller's FERRY_*
 * variables, and resolves once a log line carries the listening `url`.
 */
export async function spawnServerProcess(args: readonly string[]): Promise<ServerProcess> {
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FERRY_'))),
  });
  const rl = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    rl.on('line', (line) => {
      try {
        const rec = JSON.parse(line) as { url?: string };
        if (typeof rec.url === 'string') resolve(rec.url);
      } catch { /* not a JSON log line */ }
    });
    child.once('exit', (code) => reject(new Error(`server exited (${code})`)));
  });
  return {
    url, child,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) { child.kill(signal); await once(child, 'exit'); }
    },
  };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** `--name VALUE` on the command line, else the environment variable, else the fallback. */
export function option(name: string, env: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return (i >= 0 ? process.argv[i + 1] : undefined) ?? process.env[env] ?? fallback;
}

/** A positive size option (`4G`, `512M`). */
export function sizeOption(name: string, env: string, fallback: string): number {
  const text = option(name, env, fallback);
  const n = parseSize(text);
  if (n === undefined || n <= 0) throw new Error(`--${name}: not a size: ${text}`);
  return n;
}
