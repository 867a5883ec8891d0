/**
 * The S3 backend against local disk (issue 9), in one run: `node bench/s3.ts [--size 1G]
 * [--ranges-seconds 5] [--stalled 100]` (also run by `npm run bench`; env FERRY_BENCH_S3_SIZE,
 * FERRY_BENCH_S3_STALLED).
 *
 * The object store is the real S3-compatible test server the tests use (@20minutes/s3rver, a
 * Node.js process on loopback), so the S3 numbers are bounded by that server, not by AWS:
 * read them as "what Ferry adds on top of the store", next to the same store reached by the
 * SDK alone.
 *
 * 1. `/files` through the same Ferry build: local disk vs the S3 backend — a single stream of
 *    the whole file (curl), and random 256 KiB ranges over 32 keep-alive connections.
 * 2. RSS per stalled client on the S3 backend: clients that request the file and never read.
 * 3. Upload ingest into the bucket: one tus PATCH of the file into Ferry `--storage s3` vs a
 *    plain SDK multipart upload of the same bytes (same part size, one part at a time).
 */
import { spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'undici';
import { GetObjectCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, PutObjectCommand, UploadPartCommand, type CompletedPart } from '@aws-sdk/client-s3';
import { median, option, sizeOption, spawnServerProcess, type ServerProcess } from './lib.ts';
import { startS3Server, type S3TestServer } from '../test/helpers/s3-server.ts';
import { formatBytes } from '../src/core/units.ts';

const MiB = 1024 * 1024;
const SIZE = sizeOption('size', 'FERRY_BENCH_S3_SIZE', '1G');
const RANGE_SECONDS = Number(option('ranges-seconds', 'FERRY_BENCH_S3_RANGES_SECONDS', '5'));
const STALLED = Number(option('stalled', 'FERRY_BENCH_S3_STALLED', '100'));
const ROUNDS = 3;
const RANGE_BYTES = 256 * 1024;
const RANGE_CONNECTIONS = 32;
const PART = 8 * MiB;
const CLI = path.resolve(import.meta.dirname, '..', 'src', 'cli.ts');
const TOKEN = 'ferry-bench-s3-token';

const log = (line: string): void => { process.stdout.write(`${line}\n`); };

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1] ?? 0) * 1024;
}

function streamOnce(url: string): number {
  const r = spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{speed_download} %{size_download}', `${url}/files/big.bin`], { encoding: 'utf8' });
  const [speed, size] = r.stdout.trim().split(' ').map(Number);
  if (size !== SIZE) throw new Error(`${url}: got ${size} of ${SIZE} bytes`);
  return speed! / MiB;
}

async function measureRanges(url: string, seconds: number): Promise<number> {
  const pool = new Pool(url, { connections: RANGE_CONNECTIONS, pipelining: 1 });
  const maxStart = SIZE - RANGE_BYTES;
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
  await Promise.all(Array.from({ length: RANGE_CONNECTIONS }, () => until(Date.now() + 500)));
  done = 0;
  const t0 = Date.now();
  await Promise.all(Array.from({ length: RANGE_CONNECTIONS }, () => until(t0 + seconds * 1000)));
  const elapsed = (Date.now() - t0) / 1000;
  await pool.close();
  if (failed > 0) throw new Error(`${url}: ${failed} range requests failed`);
  return done / elapsed;
}

/**
 * RSS growth per client that asks for the file and never reads, for a first batch and for a
 * second one on top (the marginal cost, without one-off growth such as V8 enlarging its young
 * generation once many requests are in flight). Waits until RSS is stable after each batch.
 */
async function measureStalled(server: ServerProcess, count: number): Promise<{ perClient: number; marginal: number }> {
  const pid = server.child.pid!;
  const base = await rssOf(pid);
  const { port } = new URL(server.url);
  const socks: net.Socket[] = [];
  const addStalled = async (): Promise<number> => {
    for (let i = 0; i < count; i++) {
      const s = net.connect(Number(port), '127.0.0.1');
      s.on('error', () => {});
      s.pause();
      s.write('GET /files/big.bin HTTP/1.1\r\nHost: bench\r\n\r\n');
      socks.push(s);
    }
    let last = await rssOf(pid);
    for (let i = 0; i < 60; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      const now = await rssOf(pid);
      if (Math.abs(now - last) < 256 * 1024 && i >= 2) return now;
      last = now;
    }
    return last;
  };
  try {
    const first = await addStalled();
    const second = await addStalled();
    return { perClient: (first - base) / count, marginal: (second - first) / count };
  } finally {
    for (const s of socks) s.destroy();
  }
}

/** The store's own speed: one GetObject of the whole file through the SDK, drained (MiB/s). */
async function sdkGet(s3: S3TestServer): Promise<number> {
  const client = s3.client();
  const t0 = process.hrtime.bigint();
  const res = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'big.bin' }));
  let n = 0;
  for await (const chunk of res.Body as AsyncIterable<Buffer>) n += chunk.length;
  if (n !== SIZE) throw new Error(`SDK GetObject: got ${n} of ${SIZE} bytes`);
  return SIZE / MiB / (Number(process.hrtime.bigint() - t0) / 1e9);
}

/** One tus upload of `size` generated bytes (a reused block) into Ferry: seconds. */
function sendGenerated(url: string, method: string, headers: Record<string, string | number>, size: number, block: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; seconds: number }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const t0 = process.hrtime.bigint();
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method, headers: { ...headers, 'content-length': size }, agent: false });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, seconds: Number(process.hrtime.bigint() - t0) / 1e9 }); });
    });
    req.on('error', reject);
    let sent = 0;
    const pump = (): void => {
      while (sent < size) {
        const n = Math.min(block.length, size - sent);
        sent += n;
        if (!req.write(n === block.length ? block : block.subarray(0, n))) { req.once('drain', pump); return; }
      }
      req.end();
    };
    pump();
  });
}

async function tusIngest(url: string, name: string, block: Buffer): Promise<number> {
  const auth = { authorization: `Bearer ${TOKEN}`, 'tus-resumable': '1.0.0' };
  const created = await sendGenerated(`${url}/uploads/`, 'POST', { ...auth, 'upload-length': SIZE, 'upload-metadata': `filename ${Buffer.from(name).toString('base64')}` }, 0, block);
  if (created.status !== 201) throw new Error(`tus create: ${created.status}`);
  const r = await sendGenerated(created.headers.location!, 'PATCH', { ...auth, 'content-type': 'application/offset+octet-stream', 'upload-offset': 0 }, SIZE, block);
  if (r.status !== 204) throw new Error(`tus PATCH: ${r.status}`);
  return r.seconds;
}

/** The peer: the SDK alone, a multipart upload of the same bytes, one part at a time. */
async function sdkMultipart(s3: S3TestServer, key: string, block: Buffer): Promise<number> {
  const client = s3.client();
  const t0 = process.hrtime.bigint();
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: key }));
  const parts: CompletedPart[] = [];
  const part = Buffer.alloc(PART);
  for (let i = 0; i < PART; i += block.length) block.copy(part, i);
  for (let offset = 0, n = 1; offset < SIZE; offset += PART, n++) {
    const body = part.subarray(0, Math.min(PART, SIZE - offset));
    const { ETag } = await client.send(new UploadPartCommand({ Bucket: s3.bucket, Key: key, UploadId, PartNumber: n, Body: body }));
    parts.push({ ETag, PartNumber: n });
  }
  await client.send(new CompleteMultipartUploadCommand({ Bucket: s3.bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'ferry-bench-s3-'));
  const root = path.join(work, 'files');
  await mkdir(root, { recursive: true });
  const big = path.join(root, 'big.bin');
  const out = createWriteStream(big);
  const chunk = randomBytes(4 * MiB);
  for (let written = 0; written < SIZE; written += chunk.length) {
    const piece = chunk.subarray(0, Math.min(chunk.length, SIZE - written));
    if (!out.write(piece)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  const tokensFile = path.join(work, 'tokens.json');
  await writeFile(tokensFile, JSON.stringify([{ name: 'bench', role: 'write', sha256: createHash('sha256').update(TOKEN).digest('hex') }]));

  const s3 = await startS3Server({ bucket: 'bench' });
  const servers: ServerProcess[] = [];
  try {
    await s3.client().send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'big.bin', Body: createReadStream(big), ContentLength: SIZE }));
    const common = ['serve', '--host', '127.0.0.1', '--port', '0', '--tokens-file', tokensFile];
    const s3Args = ['--storage', 's3', '--s3-bucket', s3.bucket, '--s3-endpoint', s3.endpoint, '--s3-path-style', '--s3-max-sockets', String(Math.max(64, STALLED * 2 + 8))];
    const startFerry = async (args: string[], env: Record<string, string> = {}): Promise<ServerProcess> => {
      const saved = { ...process.env };
      Object.assign(process.env, env);
      try {
        const s = await spawnServerProcess([CLI, ...common, '--log-level', 'info', ...args]);
        servers.push(s);
        return s;
      } finally {
        process.env = saved;
      }
    };
    const local = await startFerry(['--root', root, '--state-dir', path.join(work, 'state-local')]);
    const onS3 = await startFerry([...s3Args, '--state-dir', path.join(work, 'state-s3')], s3.env);
    log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}; file ${formatBytes(SIZE)}; store: @20minutes/s3rver on loopback (one Node.js process)`);

    const streams: Record<'local' | 's3' | 'sdk', number[]> = { local: [], s3: [], sdk: [] };
    for (let r = 0; r < ROUNDS; r++) {
      streams.local.push(streamOnce(local.url));
      streams.s3.push(streamOnce(onS3.url));
      streams.sdk.push(await sdkGet(s3));
    }
    const ranges = { local: await measureRanges(local.url, RANGE_SECONDS), s3: await measureRanges(onS3.url, RANGE_SECONDS) };
    log('');
    log('| /files through Ferry | local disk | S3 backend | S3 ÷ local |');
    log('| --- | ---: | ---: | ---: |');
    log(`| single stream, MiB/s (median of ${ROUNDS}) | ${median(streams.local).toFixed(0)} | ${median(streams.s3).toFixed(0)} | ${(median(streams.s3) / median(streams.local)).toFixed(2)} |`);
    log(`| (peer) the store alone: SDK GetObject of the file, MiB/s | | ${median(streams.sdk).toFixed(0)} | Ferry on S3 ÷ SDK alone: ${(median(streams.s3) / median(streams.sdk)).toFixed(2)} |`);
    log(`| random 256 KiB ranges, req/s (${RANGE_CONNECTIONS} connections, ${RANGE_SECONDS} s) | ${ranges.local.toFixed(0)} | ${ranges.s3.toFixed(0)} | ${(ranges.s3 / ranges.local).toFixed(2)} |`);

    const perLocal = await measureStalled(local, STALLED);
    const perS3 = await measureStalled(onS3, STALLED);
    log('');
    log(`| RSS per stalled client (clients that never read) | local disk | S3 backend |`);
    log('| --- | ---: | ---: |');
    log(`| KiB per client, first ${STALLED} | ${(perLocal.perClient / 1024).toFixed(0)} | ${(perS3.perClient / 1024).toFixed(0)} |`);
    log(`| KiB per client, ${STALLED} more (marginal) | ${(perLocal.marginal / 1024).toFixed(0)} | ${(perS3.marginal / 1024).toFixed(0)} |`);

    const block = Buffer.alloc(MiB);
    for (let i = 0; i < block.length; i += 8) block.writeUInt32LE((i * 2654435761) >>> 0, i);
    const sdk: number[] = [];
    const tus: number[] = [];
    let tusError: string | undefined;
    for (let r = 0; r < ROUNDS; r++) {
      sdk.push(await sdkMultipart(s3, `sdk-${r}.bin`, block));
      try {
        tus.push(await tusIngest(onS3.url, `tus-${r}.bin`, block));
      } catch (err) {
        tusError = (err as Error).message;
        break;
      }
    }
    const mibps = (s: number): string => (SIZE / MiB / s).toFixed(0);
    log('');
    log(`| ingest ${formatBytes(SIZE)} into the bucket (median of ${ROUNDS}) | seconds | MiB/s | × SDK |`);
    log('| --- | ---: | ---: | ---: |');
    log(`| SDK multipart, ${PART / MiB} MiB parts, one at a time | ${median(sdk).toFixed(2)} | ${mibps(median(sdk))} | 1.00 |`);
    if (tus.length > 0) log(`| tus PATCH into Ferry --storage s3 (sha-256 + CRC-32, checkpoints) | ${median(tus).toFixed(2)} | ${mibps(median(tus))} | ${(median(sdk) / median(tus)).toFixed(2)} |`);
    if (tusError !== undefined) log(`| tus PATCH into Ferry --storage s3 | failed: ${tusError} | | |`);
    if (tusError !== undefined) process.exitCode = 1;
  } finally {
    for (const s of servers) await s.stop();
    await s3.close();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
