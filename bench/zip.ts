/**
 * Streaming ZIP benchmark (issue 3), standalone: `node bench/zip.ts [--size 4G] [--rss-size 10G]
 * [--rss-seconds 15] [--verify-crc first|always|never] [--dir DIR]` (also run by `npm run bench`;
 * env FERRY_BENCH_ZIP_SIZE, FERRY_BENCH_ZIP_RSS_SIZE, FERRY_BENCH_ZIP_RSS_SECONDS,
 * FERRY_BENCH_ZIP_VERIFY, FERRY_BENCH_DIR).
 *
 * 1. Throughput, one run, same folder of mixed files (1 × 1/4, 8 × 1/32, 128 × 1/512 and
 *    N × 1 MiB of --size), page cache warm:
 *    - Ferry GET /files of the largest file (the plain single-file baseline),
 *    - Ferry GET /zip of the folder: first request (CRCs unknown: data descriptors, CRCs
 *      computed while streaming), second request (same bytes, CRCs verified), and a
 *      selection whose CRCs are all cached (crc-first layout),
 *    - Ferry's writer in-process (no HTTP), archiver (store) and yazl (compress: false) writing
 *      the same folder to a null sink.
 *    Goal: Ferry /zip ≥ 0.8× Ferry /files.
 * 2. Server memory while a slow client (curl --limit-rate) streams a --rss-size archive made of
 *    sparse files: RSS of the server process sampled from /proc. Goal: flat.
 *
 * The server runs as a child process (`ferry serve`), so its CPU and RSS are its own.
 */
import { option, sizeOption, spawnServerProcess } from './lib.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { mkdtemp, mkdir, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import os from 'node:os';
import path from 'node:path';
import { formatBytes } from '../src/core/units.ts';

const MiB = 1024 * 1024;
const CLI = path.resolve(import.meta.dirname, '..', 'src', 'cli.ts');


interface Server { url: string; child: ChildProcess; stop(): Promise<void> }

async function startServer(root: string, stateDir: string): Promise<Server> {
  const server = await spawnServerProcess([CLI, 'serve', '--port', '0', '--host', '127.0.0.1', '--root', root, '--state-dir', stateDir, '--zip-verify-crc', option('verify-crc', 'FERRY_BENCH_ZIP_VERIFY', 'first')]);
  return { url: server.url, child: server.child, stop: () => server.stop() };
}

// --- fixtures ------------------------------------------------------------------

/** Files of seeded content (a reused random-looking 1 MiB block with position marks): fast to write, not compressible. */
async function writeSeeded(file: string, size: number, seed: number, block: Buffer): Promise<void> {
  const fh = await open(file, 'w');
  try {
    for (let pos = 0; pos < size; pos += block.length) {
      const n = Math.min(block.length, size - pos);
      const chunk = Buffer.from(block.subarray(0, n));
      if (n >= 16) { chunk.writeDoubleLE(pos, 0); chunk.writeDoubleLE(seed, 8); }
      await fh.write(chunk, 0, n, pos);
    }
  } finally {
    await fh.close();
  }
}

async function makeMixedFolder(dir: string, total: number): Promise<{ largest: string; files: number }> {
  await mkdir(dir, { recursive: true });
  const block = Buffer.alloc(MiB);
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((Math.imul(i + 1, 2654435761) ^ (i >>> 7)) >>> 0, i);
  const quarter = Math.floor(total / 4);
  const groups: Array<[number, number, string]> = [
    [1, quarter, 'large'], [8, Math.floor(quarter / 8), 'medium'], [128, Math.floor(quarter / 128), 'small'], [Math.floor(quarter / MiB), MiB, 'tiny'],
  ];
  let seed = 0;
  let files = 0;
  for (const [count, size, kind] of groups) {
    await mkdir(path.join(dir, kind), { recursive: true });
    for (let i = 0; i < count; i++) {
      await writeSeeded(path.join(dir, kind, `${kind}-${String(i).padStart(5, '0')}.bin`), size, ++seed, block);
      files++;
    }
  }
  return { largest: 'large/large-00000.bin', files };
}

async function warmPageCache(dir: string): Promise<void> {
  for (const ent of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!ent.isFile()) continue;
    await pipeline(createReadStream(path.join(ent.parentPath, ent.name), { highWaterMark: 4 * MiB }), new Writable({ write(_c, _e, cb) { cb(); } }));
  }
}

// --- clients -------------------------------------------------------------------

/** curl to /dev/null: bytes and seconds (curl's own timing). */
async function curlGet(url: string, extra: string[] = []): Promise<{ bytes: number; seconds: number; status: number }> {
  const child = spawn('curl', ['-s', '-o', '/dev/null', '-w', '%{size_download} %{time_total} %{http_code}', ...extra, url], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  await once(child, 'exit');
  const [bytes, seconds, status] = out.trim().split(' ').map(Number);
  return { bytes: bytes!, seconds: seconds!, status: status! };
}

const nullSink = (): Writable => new Writable({ highWaterMark: 4 * MiB, write(_c, _e, cb) { cb(); } });

async function listFiles(dir: string): Promise<Array<{ abs: string; rel: string; size: number; mtimeMs: number; mode: number }>> {
  const out: Array<{ abs: string; rel: string; size: number; mtimeMs: number; mode: number }> = [];
  const walk = async (d: string, prefix: string): Promise<void> => {
    const ents = (await readdir(d, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of ents) {
      const abs = path.join(d, e.name);
      const rel = prefix === '' ? e.name : `${prefix}/${e.name}`;
      if (e.isDirectory()) await walk(abs, rel);
      else { const st = await stat(abs); out.push({ abs, rel, size: st.size, mtimeMs: st.mtimeMs, mode: st.mode }); }
    }
  };
  await walk(dir, '');
  return out;
}

async function timeArchiver(dir: string): Promise<number> {
  const { ZipArchive } = await import('archiver');
  const t0 = performance.now();
  const zip = new ZipArchive({ store: true });
  const done = pipeline(zip, nullSink());
  zip.directory(dir, false);
  await zip.finalize();
  await done;
  return (performance.now() - t0) / 1000;
}

async function timeYazl(dir: string): Promise<number> {
  const yazl = (await import('yazl')).default;
  const files = await listFiles(dir);
  const t0 = performance.now();
  const zip = new yazl.ZipFile();
  for (const f of files) zip.addFile(f.abs, f.rel, { compress: false });
  zip.end();
  await pipeline(zip.outputStream, nullSink());
  return (performance.now() - t0) / 1000;
}

async function timeFerryWriter(dir: string): Promise<number> {
  const { planZip, readZipRange } = await import('../src/zip/index.ts');
  const files = await listFiles(dir);
  const members = files.map((f) => ({ name: f.rel, type: 'file' as const, size: f.size, mtimeMs: f.mtimeMs, mode: f.mode, ref: f.abs }));
  const plan = planZip(members, { layout: 'descriptor' });
  const t0 = performance.now();
  const source = {
    async *openMember(entry: { ref: string }, start: number, end: number, signal: AbortSignal) {
      yield* createReadStream(entry.ref, { start, end, highWaterMark: 256 * 1024, signal }) as AsyncIterable<Buffer>;
    },
    resolveCrc: () => Promise.reject(new Error('not needed')),
  };
  await pipeline(readZipRange(plan, undefined, source, { signal: new AbortController().signal }), nullSink());
  return (performance.now() - t0) / 1000;
}

// --- RSS under a slow client ---------------------------------------------------

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

async function sparse(file: string, size: number): Promise<void> {
  const fh = await open(file, 'w');
  try { await fh.truncate(size); } finally { await fh.close(); }
}

// --- main ------------------------------------------------------------------------

async function main(): Promise<void> {
  const size = sizeOption('size', 'FERRY_BENCH_ZIP_SIZE', '4G');
  const rssSize = sizeOption('rss-size', 'FERRY_BENCH_ZIP_RSS_SIZE', '10G');
  const rssSeconds = Number(option('rss-seconds', 'FERRY_BENCH_ZIP_RSS_SECONDS', '15'));
  const base = await mkdtemp(path.join(option('dir', 'FERRY_BENCH_DIR', os.tmpdir()), 'ferry-bench-zip-'));
  const root = path.join(base, 'files');
  let server: Server | undefined;
  try {
    const mixed = path.join(root, 'mixed');
    const { largest, files } = await makeMixedFolder(mixed, size);
    const largestSize = (await stat(path.join(mixed, largest))).size;
    await warmPageCache(mixed);
    server = await startServer(root, path.join(base, 'state'));

    const rows: Array<[string, number, number]> = [];
    const add = (label: string, bytes: number, seconds: number): void => { rows.push([label, bytes, seconds]); };

    const best = async (url: string, n: number): Promise<{ bytes: number; seconds: number }> => {
      let r = { bytes: 0, seconds: Infinity };
      for (let i = 0; i < n; i++) {
        const x = await curlGet(url);
        if (x.status !== 200) throw new Error(`${url}: ${x.status}`);
        if (x.seconds < r.seconds) r = x;
      }
      return r;
    };
    // The first request of a selection decides its layout: uncached CRCs → data descriptors.
    const cold = await best(`${server.url}/zip/mixed`, 1);
    const single = await best(`${server.url}/files/mixed/${largest}`, 3);
    const warm = await best(`${server.url}/zip/mixed`, 3);
    // A different selection over the same files: every CRC cached now → crc-first layout.
    const cachedUrl = `${server.url}/zip?path=mixed/large&path=mixed/medium&path=mixed/small&path=mixed/tiny`;
    const cached = await best(cachedUrl, 3);
    add(`Ferry GET /files (one ${formatBytes(largestSize)} file, best of 3)`, single.bytes, single.seconds);
    add(`Ferry GET /zip, first request (${files} files; data descriptors, CRCs computed while streaming)`, cold.bytes, cold.seconds);
    add(`Ferry GET /zip, again (same bytes; CRCs from the cache, --zip-verify-crc ${option('verify-crc', 'FERRY_BENCH_ZIP_VERIFY', 'first')}; best of 3)`, warm.bytes, warm.seconds);
    add('Ferry GET /zip?path=… (CRCs cached: crc-first layout; best of 3)', cached.bytes, cached.seconds);
    add('Ferry writer in-process (no HTTP)', cold.bytes, await timeFerryWriter(mixed));
    add('archiver 8 (store) in-process', cold.bytes, await timeArchiver(mixed));
    add('yazl 3 (compress: false) in-process', cold.bytes, await timeYazl(mixed));

    const baseRate = single.bytes / single.seconds;
    process.stdout.write(`Throughput, ${formatBytes(size)} folder of mixed files (page cache warm), node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}\n\n`);
    process.stdout.write('| what | bytes | seconds | MiB/s | × /files |\n| --- | ---: | ---: | ---: | ---: |\n');
    for (const [label, bytes, seconds] of rows) {
      const rate = bytes / seconds;
      process.stdout.write(`| ${label} | ${bytes} | ${seconds.toFixed(2)} | ${(rate / MiB).toFixed(0)} | ${(rate / baseRate).toFixed(2)} |\n`);
    }
    const zipRate = Math.max(warm.bytes / warm.seconds, cached.bytes / cached.seconds);
    const coldRate = cold.bytes / cold.seconds;
    process.stdout.write(`\nGoal /zip ≥ 0.8× /files: ${(zipRate / baseRate).toFixed(2)}× ${zipRate / baseRate >= 0.8 ? '(met)' : '(NOT met)'}; first request (computing CRCs) ${(coldRate / baseRate).toFixed(2)}×\n\n`);

    // 2. RSS with a slow client on a huge archive of sparse files.
    const huge = path.join(root, 'huge');
    await mkdir(huge, { recursive: true });
    const parts = Math.max(1, Math.ceil(rssSize / (2 * 1024 ** 3)));
    for (let i = 0; i < parts; i++) await sparse(path.join(huge, `part-${i}.bin`), Math.floor(rssSize / parts));
    const rssStart = await rssOf(server.child.pid!);
    const slow = spawn('curl', ['-s', '-o', '/dev/null', '--limit-rate', '20M', `${server.url}/zip/huge`], { stdio: 'ignore' });
    const slow2 = spawn('curl', ['-s', '-o', '/dev/null', '--limit-rate', '1M', `${server.url}/zip/huge`], { stdio: 'ignore' });
    let rssMax = rssStart;
    const samples: number[] = [];
    for (let t = 0; t < rssSeconds * 5; t++) {
      await new Promise((r) => setTimeout(r, 200));
      const rss = await rssOf(server.child.pid!);
      samples.push(rss);
      rssMax = Math.max(rssMax, rss);
    }
    slow.kill('SIGKILL');
    slow2.kill('SIGKILL');
    const rssEnd = samples.at(-1) ?? rssStart;
    process.stdout.write(`Server RSS streaming a ${formatBytes(rssSize)} archive to two slow clients (20 MB/s and 1 MB/s) for ${rssSeconds} s\n\n`);
    process.stdout.write(`| RSS before | RSS max | RSS at end | growth |\n| ---: | ---: | ---: | ---: |\n| ${formatBytes(rssStart)} | ${formatBytes(rssMax)} | ${formatBytes(rssEnd)} | ${formatBytes(rssMax - rssStart)} |\n`);
  } finally {
    await server?.stop();
    await rm(base, { recursive: true, force: true });
  }
}

await main();
