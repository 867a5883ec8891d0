/**
 * `ferry get` benchmark (issue 6), standalone: `node bench/get.ts [--size 1G] [--runs 3]
 * [--segments 8] [--dir DIR]` (also run by `npm run bench`; env FERRY_BENCH_GET_SIZE,
 * FERRY_BENCH_GET_RUNS, FERRY_BENCH_DIR).
 *
 * The same file from the same nginx (its own config, loopback, sendfile), one client at a time,
 * interleaved round by round (order rotated) so background noise hits every client alike:
 *   ferry get -s 8        (node src/cli.ts get URL -o FILE -s 8 -q)
 *   aria2c -x8 -s8        (--file-allocation=none, like ferry's sparse .part)
 *   curl                  (one connection)
 * Throughput is file size / wall time (median of the runs); client CPU is user+sys of the
 * client process from /usr/bin/time (all its threads). Printed as ratios against aria2c.
 * Goal (issue 6): ferry ≥ 1.0× aria2c throughput. Every output is checked for size, and the
 * first one of each client for its sha-256.
 */
import { median, option } from './lib.ts';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { formatBytes, parseSize } from '../src/core/units.ts';
import { sha256File, writeSeededFile } from '../test/helpers/files.ts';
import { startNginx } from '../test/helpers/nginx.ts';

const run = promisify(execFile);
const CLI = process.env.FERRY_BENCH_CLI ?? path.resolve(import.meta.dirname, '..', 'src', 'cli.ts');
const TIME = '/usr/bin/time';


const SIZE = parseSize(option('size', 'FERRY_BENCH_GET_SIZE', '1G')) ?? 1024 ** 3;
const RUNS = Math.max(1, Number(option('runs', 'FERRY_BENCH_GET_RUNS', '3')));
const SEGMENTS = option('segments', 'FERRY_BENCH_GET_SEGMENTS', '8');
const BASE_DIR = option('dir', 'FERRY_BENCH_DIR', os.tmpdir());

interface Client {
  readonly name: string;
  readonly available: boolean;
  argv(url: string, out: string): string[];
}

const hasBin = async (bin: string): Promise<boolean> => run('sh', ['-c', `command -v ${bin}`]).then(() => true, () => false);

interface Sample { wallS: number; cpuS: number | undefined }

async function timed(argv: string[], scratch: string): Promise<Sample> {
  const useTime = existsSync(TIME);
  const timeFile = path.join(scratch, 'time.txt');
  const full = useTime ? [TIME, '-f', '%e %U %S', '-o', timeFile, ...argv] : argv;
  const started = performance.now();
  const child = spawn(full[0]!, full.slice(1), {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FERRY_'))),
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const [code] = (await once(child, 'exit')) as [number | null];
  const wallS = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`${argv.join(' ')} exited ${code}: ${stderr.slice(-2000)}`);
  if (!useTime) return { wallS, cpuS: undefined };
  const [, user, sys] = (await readFile(timeFile, 'utf8')).trim().split('\n').at(-1)!.split(' ').map(Number);
  return { wallS, cpuS: (user ?? 0) + (sys ?? 0) };
}


const scratch = await mkdtemp(path.join(BASE_DIR, 'ferry-bench-get-'));
const root = path.join(scratch, 'root');
await run('mkdir', ['-p', root]);
try {
  process.stdout.write(`file ${formatBytes(SIZE)} from nginx (loopback, sendfile); ${RUNS} run(s) per client, interleaved; median shown\n`);
  const sha = await writeSeededFile(path.join(root, 'big.bin'), SIZE, 99);
  // Flush the source so its write-back does not land in the middle of a measurement.
  const src = await open(path.join(root, 'big.bin'), 'r+');
  await src.datasync();
  await src.close();
  const nginx = await startNginx({ root });
  try {
    const url = `${nginx.url}/big.bin`;
    const clients: Client[] = [
      { name: `ferry get -s ${SEGMENTS}`, available: true, argv: (u, out) => [process.execPath, CLI, 'get', u, '-o', out, '-s', SEGMENTS, '-q'] },
      { name: `aria2c -x${SEGMENTS} -s${SEGMENTS}`, available: await hasBin('aria2c'), argv: (u, out) => ['aria2c', `-x${SEGMENTS}`, `-s${SEGMENTS}`, '-q', '--file-allocation=none', '--allow-overwrite=true', '--auto-file-renaming=false', '-d', path.dirname(out), '-o', path.basename(out), u] },
      { name: 'curl', available: await hasBin('curl'), argv: (u, out) => ['curl', '-sS', '-o', out, u] },
    ];
    const samples = new Map<string, Sample[]>(clients.map((c) => [c.name, []]));
    // One warm-up download so the file is in the page cache for everyone.
    await timed(['curl', '-sS', '-o', '/dev/null', url], scratch).catch(() => undefined);
    for (let r = 0; r < RUNS; r++) {
      // Rotate the order each round so no client always runs first or last.
      const order = clients.map((_, i) => clients[(i + r) % clients.length]!);
      for (const c of order) {
        if (!c.available) continue;
        const out = path.join(scratch, 'out.bin');
        await rm(out, { force: true });
        const sample = await timed(c.argv(url, out), scratch);
        const size = (await stat(out)).size;
        if (size !== SIZE) throw new Error(`${c.name} wrote ${size} bytes, expected ${SIZE}`);
        if (r === 0 && (await sha256File(out)) !== sha) throw new Error(`${c.name}: sha-256 mismatch`);
        samples.get(c.name)!.push(sample);
        await rm(out, { force: true });
      }
    }
    const rows = clients.filter((c) => c.available).map((c) => {
      const s = samples.get(c.name)!;
      const wall = median(s.map((x) => x.wallS));
      const cpu = s.every((x) => x.cpuS !== undefined) ? median(s.map((x) => x.cpuS!)) : undefined;
      return { name: c.name, mbps: SIZE / wall / 1e6, wall, cpu };
    });
    const aria = rows.find((r) => r.name.startsWith('aria2c'));
    process.stdout.write('\n| client | throughput | vs aria2c | wall | client CPU (user+sys) | CPU vs aria2c |\n| --- | --- | --- | --- | --- | --- |\n');
    for (const r of rows) {
      const ratio = aria === undefined ? 'n/a' : `${(r.mbps / aria.mbps).toFixed(2)}×`;
      const cpuRatio = aria?.cpu === undefined || r.cpu === undefined ? 'n/a' : `${(r.cpu / aria.cpu).toFixed(2)}×`;
      process.stdout.write(`| ${r.name} | ${r.mbps.toFixed(0)} MB/s | ${ratio} | ${r.wall.toFixed(2)} s | ${r.cpu === undefined ? 'n/a' : `${r.cpu.toFixed(2)} s`} | ${cpuRatio} |\n`);
    }
    const ferry = rows[0]!;
    if (aria !== undefined) {
      process.stdout.write(`\ngoal ferry ≥ 1.0× aria2c throughput: ${(ferry.mbps / aria.mbps).toFixed(2)}× ${ferry.mbps >= aria.mbps ? '(met)' : '(not met)'}\n`);
    }
  } finally {
    await nginx.stop();
  }
} finally {
  await rm(scratch, { recursive: true, force: true });
}
