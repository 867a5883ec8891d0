/** Pieces every macro benchmark shares. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

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
