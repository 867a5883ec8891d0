/**
 * Traffic-control benchmark (issue 5), standalone: `node bench/limits.ts` (also run by
 * `npm run bench`).
 *
 * 1. Cost of the limiter when it does not bind: a 1 GiB file downloaded by curl from a Ferry
 *    child process with no limits, then with every limit configured far above what the
 *    machine can do (per transfer, per client, global, concurrency). Goal: ≥ 0.95×.
 *    Also the pacer alone on an in-memory stream (no HTTP, no disk): its own ceiling.
 * 2. Pacing accuracy: one download under --limit-rate 1M, 10M and 100M, 5 s past the
 *    default burst (one second of the rate, sent at once and subtracted); measured rate /
 *    configured rate. Goal: within ±5 %.
 *
 * Runs alternate (A B A B …) and report medians, so drift on a shared machine hits both.
 */
import { median, spawnServerProcess } from './lib.ts';
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, open, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import os from 'node:os';
import path from 'node:path';
import { burstFor, createTransferControl, sliceBytesFor } from '../src/limits/index.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const CLI = path.resolve(import.meta.dirname, '..', 'src', 'cli.ts');
const ROUNDS = Number(process.env.FERRY_BENCH_ROUNDS ?? 3);

interface Server { url: string; child: ChildProcess; stop(): Promise<void> }

async function startServer(root: string, stateDir: string, flags: string[]): Promise<Server> {
  const server = await spawnServerProcess([CLI, 'serve', '--port', '0', '--host', '127.0.0.1', '--root', root, '--state-dir', stateDir, '--log-level', 'info', '--compress', 'off', ...flags]);
  return { url: server.url, child: server.child, stop: () => server.stop('SIGKILL') };
}

/** curl's view: bytes and seconds of one download. */
async function curl(url: string): Promise<{ bytes: number; seconds: number }> {
  const { stdout } = await run('curl', ['-sS', '--fail', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', url], { timeout: 600_000 });
  const [bytes, seconds] = stdout.trim().split(' ').map(Number) as [number, number];
  return { bytes, seconds };
}


const fmtRate = (bps: number): string => `${(bps / MiB).toFixed(bps >= 100 * MiB ? 0 : 1)} MiB/s`;

/** The pacer's own ceiling: 4 GiB through it in memory, limits configured but far from binding. */
async function pacerAlone(): Promise<number> {
  const tc = createTransferControl({ limitRate: 1e15, limitRateClient: 1e15, limitRateGlobal: 1e15, queueTimeout: 1000, queueSize: 10 });
  const chunk = Buffer.alloc(256 * 1024);
  const results: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    let n = 0;
    const src = new Readable({ highWaterMark: chunk.length, read() { this.push(n++ < (4 * GiB) / chunk.length ? chunk : null); } });
    const body = tc.pace({ identity: undefined, clientAddress: 'bench' }, src, new AbortController().signal);
    const t0 = performance.now();
    await pipeline(body, new Writable({ highWaterMark: chunk.length, write(_c, _e, cb) { cb(); } }));
    results.push((4 * GiB) / ((performance.now() - t0) / 1000));
  }
  return median(results);
}

async function main(): Promise<void> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'ferry-bench-limits-'));
  try {
    const root = path.join(tmp, 'files');
    await mkdir(root, { recursive: true });
    const fh = await open(path.join(root, '1g.bin'), 'w');
    await fh.truncate(GiB);
    await fh.close();

    // --- 1. cost when not binding ------------------------------------------------
    const free = await startServer(root, path.join(tmp, 's1'), []);
    const limited = await startServer(root, path.join(tmp, 's2'), [
      '--limit-rate', '100G', '--limit-rate-client', '100G', '--limit-rate-global', '100G',
      '--limit-conn-client', '100', '--limit-conn-global', '1000', '--limit-req-client', '1000',
    ]);
    const a: number[] = [];
    const b: number[] = [];
    try {
      await curl(`${free.url}/files/1g.bin`); // warm the page cache and both processes
      await curl(`${limited.url}/files/1g.bin`);
      for (let i = 0; i < ROUNDS; i++) {
        const x = await curl(`${free.url}/files/1g.bin`);
        a.push(x.bytes / x.seconds);
        const y = await curl(`${limited.url}/files/1g.bin`);
        b.push(y.bytes / y.seconds);
      }
    } finally {
      await free.stop();
      await limited.stop();
    }
    const ratio = median(b) / median(a);
    const alone = await pacerAlone();
    process.stdout.write('### Limiter cost when no limit binds (1 GiB, curl, loopback)\n\n');
    process.stdout.write('| setup | throughput (median) | ratio |\n| --- | --- | --- |\n');
    process.stdout.write(`| no limits configured | ${fmtRate(median(a))} | 1.00 |\n`);
    process.stdout.write(`| all limits configured, none binding | ${fmtRate(median(b))} | ${ratio.toFixed(3)} ${ratio >= 0.95 ? '(goal ≥ 0.95: met)' : '(goal ≥ 0.95: NOT met)'} |\n`);
    process.stdout.write(`| the pacer alone, in memory (its ceiling) | ${fmtRate(alone)} | — |\n\n`);

    // --- 2. pacing accuracy --------------------------------------------------------
    process.stdout.write('### Pacing accuracy (one download, 5 s past the default one-second burst)\n\n');
    process.stdout.write('| --limit-rate | measured | accuracy |\n| --- | --- | --- |\n');
    for (const [flag, rate] of [['1M', MiB], ['10M', 10 * MiB], ['100M', 100 * MiB]] as const) {
      const burst = burstFor(rate, undefined, sliceBytesFor(rate));
      const size = burst + 5 * rate;
      const name = `pace-${flag}.bin`;
      const f = await open(path.join(root, name), 'w');
      await f.truncate(size);
      await f.close();
      const s = await startServer(root, path.join(tmp, `p${flag}`), ['--limit-rate', flag]);
      try {
        await curl(`${s.url}/healthz`); // the server is up and warm
        const r = await curl(`${s.url}/files/${name}`);
        const measured = (r.bytes - burst) / r.seconds;
        const accuracy = measured / rate;
        process.stdout.write(`| ${flag} | ${fmtRate(measured)} | ${(accuracy * 100).toFixed(1)} % ${Math.abs(accuracy - 1) <= 0.05 ? '' : '(outside ±5 %)'} |\n`);
      } finally {
        await s.stop();
      }
    }
    process.stdout.write('\n');
    if (ratio < 0.95) process.exitCode = 1;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
