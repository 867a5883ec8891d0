/**
 * Shared by the path-jail security tests (test/integration/security-*.test.ts): a raw HTTP
 * client that sends the request target verbatim and keeps whatever body arrived (even from a
 * response cut half-way, which may still have leaked bytes), a time-bounded worker pool, a
 * seeded PRNG, snapshots of a folder tree, and a symlink swapper that exchanges two names
 * atomically with renameat2(RENAME_EXCHANGE) in a child python3 process.
 */
import http from 'node:http';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';

export interface HttpResult {
  /** 0 when no response arrived. */
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Every body byte that arrived, also when the response was cut. */
  body: Buffer;
  /** Set when the request or the response failed (e.g. the server cut a zip half-way). */
  error?: string;
}

export interface SendOptions {
  method: string;
  /** Sent as is (no client-side normalisation): node:http only refuses bytes outside 0x21–0xff. */
  target: string;
  headers?: Record<string, string | number>;
  body?: Buffer | string;
  /** A keep-alive agent, or false for a connection of its own. */
  agent?: http.Agent | false;
}

/** One request to `base` (http://127.0.0.1:port). Never rejects: failures are in `error`. */
export function send(base: string, o: SendOptions): Promise<HttpResult> {
  const { hostname, port } = new URL(base);
  return new Promise<HttpResult>((resolve) => {
    let settled = false;
    const chunks: Buffer[] = [];
    const done = (status: number, headers: http.IncomingHttpHeaders, error?: string): void => {
      if (settled) return;
      settled = true;
      const r: HttpResult = { status, headers, body: Buffer.concat(chunks) };
      if (error !== undefined) r.error = error;
      resolve(r);
    };
    let req: http.ClientRequest;
    try {
      req = http.request({ host: hostname, port, method: o.method, path: o.target, headers: o.headers, agent: o.agent ?? false });
    } catch (err) {
      // node:http refuses some targets itself (ERR_UNESCAPED_CHARACTERS): not sent at all.
      done(0, {}, `client refused: ${(err as Error).message}`);
      return;
    }
    req.on('response', (res) => {
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done(res.statusCode ?? 0, res.headers));
      res.on('error', (err) => done(res.statusCode ?? 0, res.headers, err.message));
      res.on('close', () => { if (!res.complete) done(res.statusCode ?? 0, res.headers, 'response cut'); });
    });
    req.on('error', (err) => done(0, {}, err.message));
    req.end(o.body);
  });
}

export interface RunForOptions {
  /** Keep going past `durationMs` until this many calls have started (a busy machine)… */
  readonly minCalls?: number;
  /** …but never start a call after this many milliseconds. */
  readonly maxMs?: number;
}

/**
 * Runs `concurrency` workers, each calling `work(worker, iteration)` again and again until
 * `durationMs` has passed and `minCalls` calls have started, or `maxMs` has passed (the running
 * calls finish). Resolves with the number of calls.
 */
export async function runFor(durationMs: number, concurrency: number, work: (worker: number, iteration: number) => Promise<void>, options: RunForOptions = {}): Promise<number> {
  const start = performance.now();
  const minCalls = options.minCalls ?? 0;
  const maxMs = Math.max(durationMs, options.maxMs ?? durationMs);
  let calls = 0;
  const more = (): boolean => {
    const elapsed = performance.now() - start;
    return elapsed < maxMs && (elapsed < durationMs || calls < minCalls);
  };
  await Promise.all(Array.from({ length: concurrency }, async (_, worker) => {
    for (let i = 0; more(); i++) {
      calls++;
      await work(worker, i);
    }
  }));
  return calls;
}

/** The seed from FERRY_FUZZ_SEED (decimal or 0x hex), else a random one. Always log it. */
export function fuzzSeed(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.FERRY_FUZZ_SEED;
  if (text !== undefined && text !== '') {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`FERRY_FUZZ_SEED must be an integer 0…2^32-1, got ${JSON.stringify(text)}`);
    return n;
  }
  return Math.floor(Math.random() * 0xffffffff) >>> 0;
}

export interface Prng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
}

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export function createPrng(seed: number): Prng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return { next, int, pick: (items) => items[int(items.length)]!, chance: (p) => next() < p };
}

export interface TreeEntry {
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: bigint;
  mtimeNs: bigint;
  ino: bigint;
}

/** Every entry under `dir` (links not followed), keyed by its path relative to `dir`. */
export async function snapshotTree(dir: string): Promise<Map<string, TreeEntry>> {
  const out = new Map<string, TreeEntry>();
  const visit = async (rel: string): Promise<void> => {
    const names = await readdir(path.join(dir, rel));
    for (const name of names) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const st = await lstat(path.join(dir, childRel), { bigint: true });
      const type = st.isFile() ? 'file' : st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : 'other';
      out.set(childRel, { type, size: st.size, mtimeNs: st.mtimeNs, ino: st.ino });
      if (type === 'directory') await visit(childRel);
    }
  };
  await visit('');
  return out;
}

/** Human-readable differences between two snapshots ([] when equal). */
export function diffTrees(before: ReadonlyMap<string, TreeEntry>, after: ReadonlyMap<string, TreeEntry>): string[] {
  const diffs: string[] = [];
  for (const [name, b] of before) {
    const a = after.get(name);
    if (a === undefined) diffs.push(`removed ${name}`);
    else if (a.type !== b.type || a.size !== b.size || a.mtimeNs !== b.mtimeNs || a.ino !== b.ino) diffs.push(`changed ${name} (${b.type} ${b.size}B ino ${b.ino} → ${a.type} ${a.size}B ino ${a.ino})`);
  }
  for (const name of after.keys()) if (!before.has(name)) diffs.push(`added ${name}`);
  return diffs;
}

/**
 * The python3 that the swapper needs, or a reason why there is none (the caller skips, or
 * fails under CI=true).
 */
export function findPython(): { python: string } | { reason: string } {
  const r = spawnSync('python3', ['-c', 'import ctypes, sys; ctypes.CDLL(None); print(sys.executable)'], { encoding: 'utf8' });
  if (r.error !== undefined) return { reason: `python3 not runnable: ${r.error.message}` };
  if (r.status !== 0) return { reason: `python3 failed: ${r.stderr.trim()}` };
  return { python: r.stdout.trim() || 'python3' };
}

// Exchanges argv[1] and argv[2] (relative to the cwd) until SIGTERM or argv[3] seconds have
// passed, then once more if needed so that both names end as they began. Prints "ready" once
// the first exchange worked, "swaps N" at the end. Falls back to the raw syscall number when
// the libc has no renameat2 wrapper (glibc < 2.28).
const SWAPPER_PY = String.raw`
import ctypes, os, platform, signal, sys, time
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
a, b = os.fsencode(sys.argv[1]), os.fsencode(sys.argv[2])
deadline = time.monotonic() + float(sys.argv[3])
try:
    fn = libc.renameat2
    def exchange(): return fn(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)
except AttributeError:
    nr = {'x86_64': 316, 'aarch64': 276}[platform.machine()]
    def exchange(): return libc.syscall(nr, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
def must(r):
    if r != 0:
        e = ctypes.get_errno()
        print('error', e, os.strerror(e), flush=True)
        sys.exit(2)
must(exchange()); must(exchange())
n = 2
print('ready', flush=True)
while not stop and time.monotonic() < deadline:
    must(exchange())
    n += 1
if n % 2 == 1:
    must(exchange())
    n += 1
print('swaps', n, flush=True)
`;

export interface Swapper {
  readonly pid: number;
  /** Sends SIGTERM to the swapper's PID and waits for it; both names are back as they began. */
  stop(): Promise<{ swaps: number }>;
}

/**
 * Starts exchanging `a` and `b` (names inside `cwd`) in a tight loop; resolves once the first
 * exchanges worked. `maxMs` bounds the process even if the test never stops it.
 */
export async function startSwapper(python: string, cwd: string, a: string, b: string, maxMs: number): Promise<Swapper> {
  const child = spawn(python, ['-c', SWAPPER_PY, a, b, String(maxMs / 1000)], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const lines = createInterface({ input: child.stdout });
  const linesClosed = once(lines, 'close');
  let swaps = -1;
  const ready = new Promise<void>((resolve, reject) => {
    lines.on('line', (line) => {
      if (line === 'ready') resolve();
      const m = /^swaps (\d+)$/.exec(line);
      if (m !== null) swaps = Number(m[1]);
      if (line.startsWith('error')) reject(new Error(`swapper: ${line}`));
    });
    void exited.then(([code]) => reject(new Error(`swapper exited (${code}) before it was ready: ${stderr}`)));
  });
  await ready;
  const pid = child.pid!;
  return {
    pid,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGTERM');
      const [code, signal] = await exited;
      await linesClosed;
      if (code !== 0 || swaps < 0) throw new Error(`swapper ended with ${code ?? signal}: ${stderr}`);
      return { swaps };
    },
  };
}
