/**
 * Runs the real `ferry` command (`node src/cli.ts …`) as a child process and collects what it
 * says: NDJSON events from stderr (the default when stderr is not a terminal), plain lines,
 * the exit code. `waitForEvent` lets a test act at a point of the transfer (e.g. kill -9).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';

export const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..');
/** The command under test; FERRY_TEST_CLI may point elsewhere (e.g. a build). */
export const FERRY_CLI = process.env.FERRY_TEST_CLI ?? path.join(REPO_ROOT, 'src', 'cli.ts');

export type ClientEvent = Record<string, unknown> & { type: string };

export interface FerryChild {
  readonly child: ChildProcess;
  readonly events: ClientEvent[];
  /** stderr lines that were not JSON. */
  readonly lines: string[];
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first event (already seen or future) that matches; rejects if the process exits first. */
  waitForEvent(match: (e: ClientEvent) => boolean): Promise<ClientEvent>;
  kill(signal?: NodeJS.Signals): void;
}

export interface SpawnFerryOptions {
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** Collect stdout (for `-o -`). */
  readonly stdout?: 'ignore' | 'pipe';
}

export function spawnFerry(args: readonly string[], options: SpawnFerryOptions = {}): FerryChild {
  const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FERRY_'))), ...options.env };
  const child = spawn(process.execPath, [FERRY_CLI, ...args], { cwd: options.cwd ?? REPO_ROOT, env, stdio: ['ignore', options.stdout ?? 'ignore', 'pipe'] });
  const events: ClientEvent[] = [];
  const lines: string[] = [];
  const waiters: { match: (e: ClientEvent) => boolean; resolve: (e: ClientEvent) => void; reject: (err: Error) => void }[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    let event: ClientEvent | undefined;
    try {
      const parsed = JSON.parse(line) as unknown;
      if (typeof parsed === 'object' && parsed !== null && typeof (parsed as { type?: unknown }).type === 'string') event = parsed as ClientEvent;
    } catch { /* a plain line */ }
    if (event === undefined) { lines.push(line); return; }
    events.push(event);
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]!;
      if (w.match(event)) { waiters.splice(i, 1); w.resolve(event); }
    }
  });
  const exited = once(child, 'close').then(([code, signal]) => {
    for (const w of waiters.splice(0)) w.reject(new Error(`ferry exited (${String(code ?? signal)}) before the awaited event; stderr: ${lines.join('\n')}`));
    return { code: code as number | null, signal: signal as NodeJS.Signals | null };
  });
  return {
    child,
    events,
    lines,
    exited,
    waitForEvent(match) {
      const seen = events.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      if (child.exitCode !== null || child.signalCode !== null) return Promise.reject(new Error('ferry already exited'));
      return new Promise((resolve, reject) => { waiters.push({ match, resolve, reject }); });
    },
    kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** Runs ferry to completion; returns its exit code and everything it said. */
export async function runFerry(args: readonly string[], options: SpawnFerryOptions = {}): Promise<{ code: number | null; events: ClientEvent[]; lines: string[] }> {
  const c = spawnFerry(args, options);
  const { code } = await c.exited;
  return { code, events: c.events, lines: c.lines };
}
