/**
 * Serving benchmark (issue 2): Ferry against @fastify/static, a naive
 * `createReadStream().pipe(res)` server and nginx (when /usr/sbin/nginx exists), on the same
 * files, in one run. Each server is its own process, measured from outside:
 *
 * 1. one 1 GiB stream (client: curl -o /dev/null): throughput and server CPU seconds per GiB,
 *    median of FERRY_BENCH_REPS runs, servers interleaved round by round;
 * 2. random 256 KiB ranges over 64 connections (client: undici Pool in this process): req/s,
 *    median of three interleaved windows;
 * 3. 200 stalled readers (GET the 1 GiB file, never read) on a fresh server process: RSS growth
 *    per client, and the marginal growth for 200 more.
 *
 * Run: `node bench/serve.ts` (or `npm run bench -- serve`). Knobs: FERRY_BENCH_DIR (reuse a
 * folder with the 1 GiB file), FERRY_BENCH_SECONDS (range test duration, default 8),
 * FERRY_BENCH_REPS (stream repetitions, default 3), FERRY_BENCH_ONLY (comma list of servers).
 */
import { median } from './lib.ts';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Pool } from 'undici';

const REPO = path.resolve(import.meta.dirname, '..');
const GiB = 1024 ** 3;
const FILE_SIZE = GiB;
const RANGE_BYTES = 256 * 1024;
const RANGE_CONNECTIONS = 64;
const STALLED = 200;
const RANGE_SECONDS = Number(process.env.FERRY_BENCH_SECONDS ?? 8);
const REPS = Number(process.env.FERRY_BENCH_REPS ?? 3);
const NGINX = '/usr/sbin/nginx';

interface Server {
  readonly name: string;
  readonly url: string;
  /** The process whose CPU and RSS are measured (nginx: its single worker). */
  readonly pid: number;
  stop(): Promise<void>;
}

interface Result {
  name: string;
  streamMBps?: number;
  cpuSecPerGiB?: number;
  rangeReqPerSec?: number;
  stalledKiBPerClient?: number;
  stalledMarginalKiB?: number;
}

// ---------------------------------------------------------------------------------------------

async function freePort(): Promise<number> {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as net.AddressInfo;
  srv.close();
  await once(srv, 'close');
  return port;
}

async function waitForPort(port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`port ${port} never opened`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14 and 15)
  return ticks / 100; // USER_HZ is 100 on Linux
}

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

function spawnNode(args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...env } });
  return child;
}

// --- the servers ----------------------------------------------------------------------------

async function startFerry(root: string, state: string): Promise<Server> {
  const port = await freePort();
  const child = spawnNode(['src/cli.ts', 'serve', '--root', root, '--state-dir', state, '--host', '127.0.0.1', '--port', String(port), '--log-level', 'warn']);
  await waitForPort(port);
  return { name: 'ferry', url: `http://127.0.0.1:${port}`, pid: child.pid!, stop: () => stopChild(child) };
}

const FASTIFY_STATIC = `
import Fastify from 'fastify';
import fastifyStatic from '@fastify/static';
const app = Fastify({ logger: false });
await app.register(fastifyStatic, { root: process.env.ROOT, prefix: '/files/' });
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
`;

/** The naive peer: createReadStream().pipe(res), with just enough Range support for test 2. */
const NAIVE = `
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
http.createServer((req, res) => {
  const file = path.join(process.env.ROOT, decodeURIComponent(req.url.replace(/^\\/files\\//, '').split('?')[0]));
  fs.stat(file, (err, st) => {
    if (err) { res.writeHead(404); res.end(); return; }
    const m = /^bytes=(\\d+)-(\\d+)$/.exec(req.headers.range ?? '');
    if (m) {
      const start = Number(m[1]); const end = Math.min(Number(m[2]), st.size - 1);
      res.writeHead(206, { 'content-length': end - start + 1, 'content-range': 'bytes ' + start + '-' + end + '/' + st.size });
      fs.createReadStream(file, { start, end }).pipe(res);
    } else {
      res.writeHead(200, { 'content-length': st.size });
      fs.createReadStream(file).pipe(res);
    }
  });
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

async function startScript(name: string, code: string, root: string): Promise<Server> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ROOT: root, PORT: String(port) } });
  await waitForPort(port);
  return { name, url: `http://127.0.0.1:${port}`, pid: child.pid!, stop: () => stopChild(child) };
}

async function startNginx(root: string, work: string): Promise<Server> {
  const port = await freePort();
  const prefix = path.join(work, 'nginx');
  await mkdir(prefix, { recursive: true });
  const conf = path.join(prefix, 'nginx.conf');
  // Workers run as `user` (root here): the default, nobody, cannot read a 0700 mkdtemp folder.
  await writeFile(conf, `
user root;
worker_processes 1;
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log;
events { worker_connections 2048; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path ${prefix}/cbt; proxy_temp_path ${prefix}/pt; fastcgi_temp_path ${prefix}/ft; uwsgi_temp_path ${prefix}/ut; scgi_temp_path ${prefix}/st;
  server { listen 127.0.0.1:${port}; location /files/ { alias ${root}/; } }
}
`);
  const child = spawn(NGINX, ['-c', conf, '-p', prefix], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(port);
  // Measure the worker (the master only supervises).
  let workerPid = child.pid!;
  for (let i = 0; i < 50; i++) {
    const kids = spawnSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
    if (kids.length > 0) { workerPid = Number(kids[0]); break; }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { name: 'nginx', url: `http://127.0.0.1:${port}`, pid: workerPid, stop: () => stopChild(child) };
}

// --- the measurements ----------------------------------------------------------------------

/** One 1 GiB download with curl: throughput (MB/s) and the server's CPU seconds for it. */
function streamOnce(server: Server): { MBps: number; cpuSec: number } {
  const c0 = cpuSeconds(server.pid);
  const r = spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{speed_download} %{size_download}', `${server.url}/files/big.bin`], { encoding: 'utf8' });
  const c1 = cpuSeconds(server.pid);
  const [speed, size] = r.stdout.trim().split(' ').map(Number);
  if (size !== FILE_SIZE) throw new Error(`${server.name}: got ${size} bytes`);
  return { MBps: speed! / 1e6, cpuSec: c1 - c0 };
}

/** Random 256 KiB ranges over 64 keep-alive connections for `seconds`: requests/s. */
async function measureRanges(server: Server, seconds: number): Promise<number> {
  const pool = new Pool(server.url, { connections: RANGE_CONNECTIONS, pipelining: 1 });
  const maxStart = FILE_SIZE - RANGE_BYTES;
  let done = 0;
  let failed = 0;
  const one = async (): Promise<void> => {
    const start = Math.floor(Math.random() * maxStart);
    const { statusCode, body } = await pool.request({ path: '/files/big.bin', method: 'GET', headers: { range: `bytes=${start}-${start + RANGE_BYTES - 1}` } });
    let n = 0;
    for await (const chunk of body) n += (chunk as Buffer).length;
    if (statusCode === 206 && n === RANGE_BYTES) done++;
    else failed++;
  };
  const until = async (endAt: number): Promise<void> => { while (Date.now() < endAt) await one(); };
  // Half a second to open the connections, then the measured window.
  await Promise.all(Array.from({ length: RANGE_CONNECTIONS }, () => until(Date.now() + 500)));
  done = 0;
  const t0 = Date.now();
  await Promise.all(Array.from({ length: RANGE_CONNECTIONS }, () => until(t0 + seconds * 1000)));
  const elapsed = (Date.now() - t0) / 1000;
  await pool.close();
  if (failed > 0) throw new Error(`${server.name}: ${failed} range requests failed`);
  return done / elapsed;
}

/**
 * RSS growth of the server with 200 clients that request the 1 GiB file and never read, per
 * client; and the marginal cost of 200 more (which leaves out one-off growth such as V8
 * enlarging its young generation once many requests are in flight).
 */
async function measureStalled(server: Server): Promise<{ perClient: number; marginal: number }> {
  const base = await rssBytes(server.pid);
  const { port } = new URL(server.url);
  const socks: net.Socket[] = [];
  const addStalled = async (count: number): Promise<number> => {
    for (let i = 0; i < count; i++) {
      const s = net.connect(Number(port), '127.0.0.1');
      s.on('error', () => {});
      s.pause();
      s.write('GET /files/big.bin HTTP/1.1\r\nHost: bench\r\n\r\n');
      socks.push(s);
    }
    // Stable: RSS moved less than 256 KiB over a second (every client has filled its buffers).
    let last = await rssBytes(server.pid);
    for (let i = 0; i < 60; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      const now = await rssBytes(server.pid);
      if (Math.abs(now - last) < 256 * 1024 && i >= 2) return now;
      last = now;
    }
    return last;
  };
  try {
    const at200 = await addStalled(STALLED);
    const at400 = await addStalled(STALLED);
    return { perClient: (at200 - base) / STALLED, marginal: (at400 - at200) / STALLED };
  } finally {
    for (const s of socks) s.destroy();
    await new Promise((r) => setTimeout(r, 1000));
  }
}


function fmt(n: number | undefined, digits = 1): string {
  return n === undefined || Number.isNaN(n) ? '—' : n.toFixed(digits);
}

function ratio(a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined || b === 0 ? '—' : `${(a / b).toFixed(2)}×`;
}

// ---------------------------------------------------------------------------------------------

export async function runServeBench(log: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<Result[]> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'ferry-bench-serve-'));
  const root = process.env.FERRY_BENCH_DIR ?? path.join(work, 'files');
  await mkdir(root, { recursive: true });
  const big = path.join(root, 'big.bin');
  if (!existsSync(big) || (await stat(big)).size !== FILE_SIZE) {
    log(`writing ${FILE_SIZE / GiB} GiB of random data to ${big} ...`);
    const out = createWriteStream(big);
    const block = randomBytes(4 * 1024 * 1024);
    for (let written = 0; written < FILE_SIZE; written += block.length) {
      if (!out.write(block)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
  }
  const only = process.env.FERRY_BENCH_ONLY?.split(',');
  const starters: Array<[string, () => Promise<Server>]> = [
    ['ferry', () => startFerry(root, path.join(work, 'state'))],
    ['@fastify/static', () => startScript('@fastify/static', FASTIFY_STATIC, root)],
    ['naive pipe', () => startScript('naive pipe', NAIVE, root)],
  ];
  if (existsSync(NGINX)) starters.push(['nginx', () => startNginx(root, work)]);
  else log('(nginx not installed: skipped)');

  log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const chosen = starters.filter(([name]) => only === undefined || only.includes(name));
  const results: Result[] = chosen.map(([name]) => ({ name }));
  try {
    // Throughput tests: all servers up at once (idle ones cost nothing) and measured in
    // interleaved rounds, so background load on a shared machine hits them alike.
    const servers: Server[] = [];
    try {
      for (const [, start] of chosen) servers.push(await start());
      for (const srv of servers) streamOnce(srv); // warm-up: page cache, JIT
      const speeds = servers.map(() => [] as number[]);
      const cpus = servers.map(() => [] as number[]);
      for (let rep = 0; rep < REPS; rep++) {
        servers.forEach((srv, i) => { const m = streamOnce(srv); speeds[i]!.push(m.MBps); cpus[i]!.push(m.cpuSec); });
      }
      const rounds = 3;
      const rates = servers.map(() => [] as number[]);
      for (let round = 0; round < rounds; round++) {
        for (let i = 0; i < servers.length; i++) rates[i]!.push(await measureRanges(servers[i]!, RANGE_SECONDS / rounds));
      }
      servers.forEach((_, i) => {
        results[i]!.streamMBps = median(speeds[i]!);
        results[i]!.cpuSecPerGiB = median(cpus[i]!);
        results[i]!.rangeReqPerSec = median(rates[i]!);
      });
    } finally {
      for (const srv of servers) await srv.stop();
    }
    // Memory: each server alone, on a fresh process.
    for (let i = 0; i < chosen.length; i++) {
      const fresh = await chosen[i]![1]();
      try {
        const small = await fetch(`${fresh.url}/files/big.bin`, { headers: { range: 'bytes=0-1048575' } });
        await small.arrayBuffer(); // warm-up: the first request loads lazily required code
        const stalled = await measureStalled(fresh);
        results[i]!.stalledKiBPerClient = stalled.perClient / 1024;
        results[i]!.stalledMarginalKiB = stalled.marginal / 1024;
      } finally {
        await fresh.stop();
      }
    }
    for (const r of results) {
      log(`${r.name.padEnd(16)} stream ${fmt(r.streamMBps, 0).padStart(6)} MB/s  cpu ${fmt(r.cpuSecPerGiB, 2)} s/GiB  ranges ${fmt(r.rangeReqPerSec, 0).padStart(6)} req/s  stalled ${fmt(r.stalledKiBPerClient, 0)} KiB/client (marginal ${fmt(r.stalledMarginalKiB, 0)})`);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }

  const ferry = results.find((r) => r.name === 'ferry');
  if (ferry !== undefined) {
    log('');
    log('| vs | 1 GiB stream (target) | 256 KiB ranges × 64 conns (target) | CPU s/GiB (ferry / peer) |');
    log('| --- | --- | --- | --- |');
    for (const peer of results) {
      if (peer === ferry) continue;
      const streamTarget = peer.name === '@fastify/static' ? ' (≥ 2×)' : peer.name === 'nginx' ? ' (≥ 0.8×)' : '';
      const rangeTarget = peer.name === '@fastify/static' ? ' (≥ 1.5×)' : '';
      log(`| ${peer.name} | ${ratio(ferry.streamMBps, peer.streamMBps)}${streamTarget} | ${ratio(ferry.rangeReqPerSec, peer.rangeReqPerSec)}${rangeTarget} | ${fmt(ferry.cpuSecPerGiB, 2)} / ${fmt(peer.cpuSecPerGiB, 2)} |`);
    }
    log(`ferry RSS per stalled client with ${STALLED} stalled: ${fmt(ferry.stalledKiBPerClient, 0)} KiB; marginal for ${STALLED} more: ${fmt(ferry.stalledMarginalKiB, 0)} KiB (target ≤ 128 KiB)`);
  }
  return results;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  await runServeBench();
}
