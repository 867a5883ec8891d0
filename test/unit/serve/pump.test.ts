/**
 * The body pump over a real socket, with both kinds of storage reader: stream windows
 * (LocalStorage today) and positional reads into pooled buffers (`readAt`). Both must send
 * exactly the planned bytes for every part layout and release the file when the client goes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { open, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { pumpParts, hasReadAt, SMALL_CHUNK_BYTES, type BodyPart, type BodyPacing } from '../../../src/serve/pump.ts';
import { createBytePacer, MemoryLimitStore, TokenBucket } from '../../../src/limits/index.ts';
import { LocalStorage, type FileHandleReader, type FileStat, type ByteRange } from '../../../src/storage/index.ts';
import { parseSafePath } from '../../../src/core/index.ts';
import { makeTempDir } from '../../helpers/temp-dir.ts';

/** A real positional reader over a FileHandle (what a storage backend with readAt provides). */
class PositionalReader implements FileHandleReader {
  readonly #fh: FileHandle;
  readonly stat: FileStat;
  reads = 0;
  constructor(fh: FileHandle, size: number) {
    this.#fh = fh;
    this.stat = { type: 'file', size, mtimeMs: 0, mtimeNs: 0n, ino: 0n, dev: 0n, mode: 0 };
  }
  async readAt(buffer: Uint8Array, position: number): Promise<number> {
    this.reads++;
    const { bytesRead } = await this.#fh.read(buffer, 0, buffer.length, position);
    return bytesRead;
  }
  openRead(): Readable { throw new Error('not used when readAt exists'); }
  async restat(): Promise<FileStat> { return this.stat; }
  async close(): Promise<void> { await this.#fh.close(); }
  async [Symbol.asyncDispose](): Promise<void> { await this.close(); }
}

/** The storage reader restricted to the stream API (whatever else the backend offers). */
function streamOnly(r: FileHandleReader): FileHandleReader {
  return {
    get stat() { return r.stat; },
    openRead: (range, options) => r.openRead(range, options),
    restat: () => r.restat(),
    close: () => r.close(),
    [Symbol.asyncDispose]: () => r.close(),
  };
}

async function serveOnce(reader: FileHandleReader, parts: BodyPart[], maxChunkBytes: number, paced?: { pacing: BodyPacing; onBytes: (n: number) => void }): Promise<{ url: string; done: Promise<unknown>; server: http.Server }> {
  let resolveDone!: (v: unknown) => void;
  const done = new Promise((r) => { resolveDone = r; });
  const server = http.createServer((req, res) => {
    const ac = new AbortController();
    res.once('close', () => { if (!res.writableFinished) ac.abort(); });
    res.writeHead(200);
    pumpParts(reader, parts, res, { maxChunkBytes, signal: ac.signal, onBytes: paced?.onBytes ?? (() => {}), pacing: paced?.pacing }).then(() => resolveDone('ok'), (err: unknown) => { resolveDone(err); res.destroy(); });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, done, server };
}

function expected(content: Buffer, parts: BodyPart[]): Buffer {
  return Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : content.subarray(p.start, p.end + 1))));
}

test('both reader kinds send exactly the parts, for small and large windows', async (t) => {
  const tmp = await makeTempDir();
  t.after(() => tmp.remove());
  const size = 9 * 1024 * 1024 + 12345; // crosses the "prove" window, odd tail
  const content = randomBytes(size);
  await writeFile(path.join(tmp.dir, 'f.bin'), content);
  const storage = await LocalStorage.create({ root: tmp.dir, dotfiles: 'deny', followSymlinks: 'inside' });
  const layouts: Array<[string, BodyPart[]]> = [
    ['whole file', [{ start: 0, end: size - 1 }]],
    ['one byte', [{ start: 77, end: 77 }]],
    ['framed parts', [Buffer.from('--b\r\n'), { start: 0, end: 99 }, Buffer.from('\r\n--b\r\n'), { start: size - 100, end: size - 1 }, Buffer.from('\r\n--b--\r\n')]],
    ['chunk-size boundaries', [{ start: 0, end: SMALL_CHUNK_BYTES - 1 }, { start: SMALL_CHUNK_BYTES, end: SMALL_CHUNK_BYTES }]],
    ['no parts', []],
  ];
  for (const kind of ['stream', 'positional'] as const) {
    for (const [name, parts] of layouts) {
      const reader: FileHandleReader = kind === 'stream'
        ? streamOnly(await storage.open(parseSafePath('f.bin')))
        : new PositionalReader(await open(path.join(tmp.dir, 'f.bin'), 'r'), size);
      assert.equal(hasReadAt(reader), kind === 'positional');
      const s = await serveOnce(reader, parts, 256 * 1024);
      try {
        const res = await fetch(s.url);
        const body = Buffer.from(await res.arrayBuffer());
        assert.equal(await s.done, 'ok');
        const want = expected(content, parts);
        assert.equal(body.length, want.length, `${kind} ${name}: length`);
        assert.equal(createHash('sha256').update(body).digest('hex'), createHash('sha256').update(want).digest('hex'), `${kind} ${name}: bytes`);
      } finally {
        s.server.close();
        await reader.close();
      }
    }
  }
});

test('a client that goes away makes the pump reject (source released, no hang)', async (t) => {
  const tmp = await makeTempDir();
  t.after(() => tmp.remove());
  const size = 64 * 1024 * 1024;
  const fh = await open(path.join(tmp.dir, 'big.bin'), 'w');
  await fh.truncate(size);
  await fh.close();
  for (const kind of ['stream', 'positional'] as const) {
    const storage = await LocalStorage.create({ root: tmp.dir, dotfiles: 'deny', followSymlinks: 'inside' });
    const reader: FileHandleReader = kind === 'stream' ? streamOnly(await storage.open(parseSafePath('big.bin'))) : new PositionalReader(await open(path.join(tmp.dir, 'big.bin'), 'r'), size);
    const s = await serveOnce(reader, [{ start: 0, end: size - 1 } satisfies ByteRange], 256 * 1024);
    const { port } = s.server.address() as net.AddressInfo;
    const sock = net.connect(port, '127.0.0.1');
    sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await once(sock, 'data');
    sock.destroy();
    const result = await s.done;
    assert.ok(result instanceof Error, `${kind}: rejected`);
    s.server.close();
    await reader.close();
  }
});

test('paced: every byte is paid for once, before it is sent, in blocks of at most chunkBytes', async (t) => {
  // Fails if the pump skips the pacer, pays after sending, pays twice, or sends blocks bigger
  // than chunkBytes. The client stalls first (the socket fills up: drain waits while paced), and
  // the file is past PROVE_BYTES (small blocks first, then chunkBytes).
  const tmp = await makeTempDir();
  t.after(() => tmp.remove());
  const size = 12 * 1024 * 1024 + 777;
  const content = randomBytes(size);
  await writeFile(path.join(tmp.dir, 'f.bin'), content);
  const storage = await LocalStorage.create({ root: tmp.dir, dotfiles: 'deny', followSymlinks: 'inside' });
  const chunkBytes = 48 * 1024; // above SMALL_CHUNK_BYTES
  const layouts: Array<[string, BodyPart[]]> = [
    ['whole file', [{ start: 0, end: size - 1 }]],
    ['framed overlapping parts', [Buffer.from('--b\r\n'), { start: 0, end: 99_999 }, Buffer.from('\r\n--b\r\n'), { start: 50_000, end: size - 1 }, Buffer.from('\r\n--b--\r\n')]],
  ];
  for (const kind of ['stream', 'positional'] as const) {
    for (const [name, parts] of layouts) {
      const what = `${kind} ${name}`;
      const reader: FileHandleReader = kind === 'stream'
        ? streamOnly(await storage.open(parseSafePath('f.bin')))
        : new PositionalReader(await open(path.join(tmp.dir, 'f.bin'), 'r'), size);
      // A real pacer (64 MiB/s, so some takes wait), counted.
      const inner = createBytePacer({ buckets: [{ kind: 'local', bucket: new TokenBucket({ ratePerSec: 64 * 1024 * 1024, burst: 256 * 1024 }, performance.now()), exemptBytes: 0 }], store: new MemoryLimitStore() });
      let paid = 0;
      let sent = 0;
      let largestTake = 0;
      let waits = 0;
      const pacing: BodyPacing = {
        chunkBytes,
        pacer: {
          take(n) {
            paid += n;
            largestTake = Math.max(largestTake, n);
            const w = inner.take(n);
            if (w !== undefined) waits++;
            return w;
          },
        },
      };
      const onBytes = (n: number): void => {
        sent += n;
        assert.ok(sent <= paid, `${what}: ${sent} bytes sent, only ${paid} paid`);
      };
      const s = await serveOnce(reader, parts, 256 * 1024, { pacing, onBytes });
      try {
        const body = await new Promise<Buffer>((resolve, reject) => {
          http.get(s.url, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.once('end', () => resolve(Buffer.concat(chunks)));
            res.once('error', reject);
            // Stall a while first: the socket fills and the pump meets congestion.
            res.pause();
            setTimeout(() => res.resume(), 300);
          }).once('error', reject);
        });
        assert.equal(await s.done, 'ok');
        const want = expected(content, parts);
        assert.equal(body.length, want.length, `${what}: length`);
        assert.ok(body.equals(want), `${what}: bytes`);
        assert.equal(sent, want.length, `${what}: bytes counted`);
        assert.equal(paid, want.length, `${what}: bytes paid`);
        assert.ok(largestTake <= chunkBytes, `${what}: a take of ${largestTake} bytes`);
        assert.ok(waits > 0, `${what}: the pacer made the pump wait`);
      } finally {
        s.server.close();
        await reader.close();
      }
    }
  }
});
