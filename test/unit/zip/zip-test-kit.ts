/**
 * Test kit for archives: a file-system data source (counting open files), a writer that stores
 * an archive as a sparse file (holes where the archive holds long runs of zeros, so multi-GiB
 * test archives cost little disk), and the external validators the issue names — `unzip -t`,
 * `7z t`, Python `zipfile.testzip()`, `bsdtar -tf` (file) and `bsdtar -xOf -` (stdin) — run in
 * parallel, with the extracted bytes compared by sha-256.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, openSync, closeSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import type { ZipDataSource, ZipSourceEntry } from '../../../src/zip/index.ts';

export interface FsRef { readonly file: string }

export interface CountingSource extends ZipDataSource<FsRef> {
  /** Files open right now / most ever open at once. */
  readonly openNow: number;
  readonly maxOpen: number;
  readonly opens: number;
  readonly resolved: string[];
  readonly computed: Map<string, number>;
}

/** Reads members from disk with fs streams; CRCs from `crcs` or by reading the file. */
export function createFsSource(options: { crcs?: Map<string, number>; highWaterMark?: number } = {}): CountingSource {
  let openNow = 0;
  let maxOpen = 0;
  let opens = 0;
  const resolved: string[] = [];
  const computed = new Map<string, number>();
  const hwm = options.highWaterMark ?? 1024 * 1024;
  const source: CountingSource = {
    get openNow() { return openNow; },
    get maxOpen() { return maxOpen; },
    get opens() { return opens; },
    resolved,
    computed,
    async *openMember(entry: ZipSourceEntry<FsRef>, start: number, end: number, signal: AbortSignal) {
      opens++;
      openNow++;
      maxOpen = Math.max(maxOpen, openNow);
      const stream = createReadStream(entry.ref.file, { start, end, highWaterMark: hwm, signal });
      try {
        for await (const chunk of stream) yield chunk as Buffer;
      } finally {
        stream.destroy();
        openNow--;
      }
    },
    async resolveCrc(entry, signal) {
      resolved.push(entry.name);
      const known = options.crcs?.get(entry.ref.file);
      if (known !== undefined) return known;
      let c = 0;
      for await (const chunk of createReadStream(entry.ref.file, { highWaterMark: hwm, signal })) c = crc32(chunk as Buffer, c);
      return c >>> 0;
    },
    onCrcComputed(entry, crc) { computed.set(entry.name, crc); },
  };
  return source;
}

const ZERO = Buffer.alloc(1024 * 1024);

function isZero(buf: Buffer): boolean {
  for (let o = 0; o < buf.length; o += ZERO.length) {
    const part = buf.subarray(o, Math.min(buf.length, o + ZERO.length));
    if (!part.equals(ZERO.subarray(0, part.length))) return false;
  }
  return true;
}

/** Writes chunks to `file`, leaving holes for all-zero chunks (≥ 4 KiB). Returns bytes and sha-256. */
export async function writeSparse(file: string, chunks: AsyncIterable<Buffer>, options: { hash?: boolean } = {}): Promise<{ bytes: number; sha256: string | undefined }> {
  const fh = await open(file, 'w');
  const h = options.hash === true ? createHash('sha256') : undefined;
  let pos = 0;
  try {
    for await (const chunk of chunks) {
      h?.update(chunk);
      if (!(chunk.length >= 4096 && isZero(chunk))) {
        let off = 0;
        while (off < chunk.length) {
          const { bytesWritten } = await fh.write(chunk, off, chunk.length - off, pos + off);
          off += bytesWritten;
        }
      }
      pos += chunk.length;
    }
    await fh.truncate(pos);
  } finally {
    await fh.close();
  }
  return { bytes: pos, sha256: h?.digest('hex') };
}

/** Collects an async iterable of buffers (small archives only). */
export async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

/**
 * Creates a sparse file of `size` bytes: zeros with a few marker strings (at the start, around
 * the 4 GiB boundary, the middle and the end) so that misplaced or missing data changes the
 * sha-256. The sha-256 is computed from the known content, without reading the file back.
 */
export async function makeSparseFile(file: string, size: number, seed: number): Promise<string> {
  const markers = new Map<number, Buffer>();
  for (const p of [0, 0xffff_ffff - 7, 0xffff_ffff, 2 ** 32 + 3, Math.floor(size / 2), size - 16]) {
    if (p < 0 || p >= size) continue;
    const b = Buffer.from(`<${seed}@${p}>`);
    markers.set(p, b.subarray(0, Math.min(b.length, size - p)));
  }
  // Markers may overlap: write them in order and hash the final content.
  const sorted = [...markers.entries()].sort((x, y) => x[0] - y[0]);
  const fh = await open(file, 'w');
  try {
    await fh.truncate(size);
    for (const [pos, b] of sorted) await fh.write(b, 0, b.length, pos);
  } finally {
    await fh.close();
  }
  const content = new Map<number, number>(); // byte position → value, last write wins
  for (const [pos, b] of sorted) for (let i = 0; i < b.length; i++) content.set(pos + i, b[i]!);
  const positions = [...content.keys()].sort((x, y) => x - y);
  const h = createHash('sha256');
  let at = 0;
  const zeros = (n: number): void => {
    while (n > 0) { const k = Math.min(n, ZERO.length); h.update(ZERO.subarray(0, k)); n -= k; }
  };
  for (const p of positions) {
    zeros(p - at);
    h.update(Buffer.of(content.get(p)!));
    at = p + 1;
  }
  zeros(size - at);
  return h.digest('hex');
}

export async function sha256OfFile(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file, { highWaterMark: 4 * 1024 * 1024 })) h.update(c as Buffer);
  return h.digest('hex');
}

export interface ExpectedEntry {
  /** As in the archive (folders end with `/`). */
  readonly name: string;
  readonly size: number;
  /** sha-256 of the content (files). */
  readonly sha256?: string;
}

interface RunResult { code: number | null; stdout: string; stderr: string; sha256?: string; bytes?: number; pieces?: string[]; overflow?: number }

/** Hashes a byte stream in consecutive pieces of the given sizes (the members, in archive order). */
class SplitHasher {
  readonly #sizes: readonly number[];
  readonly hashes: string[] = [];
  #i = 0;
  #left: number;
  #h = createHash('sha256');
  overflow = 0;
  constructor(sizes: readonly number[]) {
    this.#sizes = sizes;
    this.#left = sizes[0] ?? 0;
    this.#settle();
  }
  #settle(): void {
    while (this.#i < this.#sizes.length && this.#left === 0) {
      this.hashes.push(this.#h.digest('hex'));
      this.#h = createHash('sha256');
      this.#i++;
      this.#left = this.#sizes[this.#i] ?? 0;
    }
  }
  update(d: Buffer): void {
    let o = 0;
    while (o < d.length) {
      if (this.#i >= this.#sizes.length) { this.overflow += d.length - o; return; }
      const k = Math.min(this.#left, d.length - o);
      this.#h.update(d.subarray(o, o + k));
      o += k;
      this.#left -= k;
      this.#settle();
    }
  }
}

/** Runs a command; stdout hashed (not kept) when `hashStdout`; stdin from a file when `stdinFile`. */
export function run(cmd: string, args: string[], options: { stdinFile?: string; hashStdout?: boolean; splitSizes?: readonly number[]; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    let stdinFd: number | undefined;
    if (options.stdinFile !== undefined) stdinFd = openSync(options.stdinFile, 'r');
    const child = spawn(cmd, args, { stdio: [stdinFd ?? 'ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8' } });
    if (stdinFd !== undefined) closeSync(stdinFd);
    const h = options.hashStdout === true ? createHash('sha256') : undefined;
    const split = options.splitSizes === undefined ? undefined : new SplitHasher(options.splitSizes);
    let bytes = 0;
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => {
      if (split !== undefined) { split.update(d); bytes += d.length; } else if (h !== undefined) { h.update(d); bytes += d.length; } else if (stdout.length < 64 * 1024 * 1024) stdout += d.toString('utf8');
    });
    child.stderr!.on('data', (d: Buffer) => { if (stderr.length < 1024 * 1024) stderr += d.toString('utf8'); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); }, options.timeoutMs ?? 600_000);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({
        code, stdout, stderr,
        ...(h === undefined ? {} : { sha256: h.digest('hex'), bytes }),
        ...(split === undefined ? {} : { pieces: split.hashes, overflow: split.overflow, bytes }),
      });
    });
  });
}

const PY_VALIDATE = `
import hashlib, json, sys, zipfile
path, want_hash = sys.argv[1], sys.argv[2] == '1'
with zipfile.ZipFile(path) as z:
    bad = z.testzip()
    out = []
    for i in z.infolist():
        e = {'name': i.filename, 'size': i.file_size, 'crc': i.CRC, 'flags': i.flag_bits, 'system': i.create_system,
             'attr': i.external_attr, 'date_time': list(i.date_time), 'compress': i.compress_type, 'extra': i.extra.hex()}
        if want_hash and not i.is_dir():
            h = hashlib.sha256()
            with z.open(i) as f:
                while True:
                    b = f.read(4 << 20)
                    if not b: break
                    h.update(b)
            e['sha256'] = h.hexdigest()
        out.append(e)
print(json.dumps({'bad': bad, 'entries': out}))
`;

export interface PyEntry { name: string; size: number; crc: number; flags: number; system: number; attr: number; date_time: number[]; compress: number; extra: string; sha256?: string }

export interface ValidateOptions {
  /** Python hashes every member (reads the archive a second time). Default true. */
  readonly pythonHashes?: boolean;
  readonly timeoutMs?: number;
}

/**
 * Validates `archive` with every tool, in parallel, and compares against `expected` (in archive order).
 * Returns Python's view of the entries for extra assertions.
 */
export async function validateArchive(archive: string, expected: readonly ExpectedEntry[], options: ValidateOptions = {}): Promise<PyEntry[]> {
  const pythonHashes = options.pythonHashes ?? true;
  const fileEntries = expected.filter((e) => !e.name.endsWith('/'));
  const timeoutMs = options.timeoutMs ?? 600_000;
  const [unzipT, sevenT, py, tarList, tarStdin] = await Promise.all([
    run('unzip', ['-tqq', archive], { timeoutMs }),
    run('7z', ['t', '-bd', '-bb0', archive], { timeoutMs }),
    run('python3', ['-c', PY_VALIDATE, archive, pythonHashes ? '1' : '0'], { timeoutMs }),
    run('bsdtar', ['-tf', archive], { timeoutMs }),
    // Streamed extraction from a pipe: only the local headers (and descriptors) are available.
    run('bsdtar', ['-xOf', '-'], { stdinFile: archive, splitSizes: fileEntries.map((e) => e.size), timeoutMs }),
  ]);
  assert.equal(unzipT.code, 0, `unzip -t failed: ${unzipT.stdout.slice(0, 2000)} ${unzipT.stderr.slice(0, 2000)}`);
  assert.equal(sevenT.code, 0, `7z t failed: ${sevenT.stdout.slice(-2000)} ${sevenT.stderr.slice(0, 2000)}`);
  assert.match(sevenT.stdout, /Everything is Ok/);
  assert.doesNotMatch(sevenT.stdout + sevenT.stderr, /WARNING|Headers Error|There are some data after the end/i);
  assert.equal(py.code, 0, `python zipfile failed: ${py.stderr.slice(0, 2000)}`);
  const pyOut = JSON.parse(py.stdout) as { bad: string | null; entries: PyEntry[] };
  assert.equal(pyOut.bad, null, `zipfile.testzip() reports ${pyOut.bad}`);
  assert.equal(pyOut.entries.length, expected.length, 'entry count (python)');
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    const p = pyOut.entries[i]!;
    if (p.name !== e.name || p.size !== e.size) assert.fail(`entry ${i}: python sees ${p.name} (${p.size}), expected ${e.name} (${e.size})`);
    if (pythonHashes && e.sha256 !== undefined && p.sha256 !== e.sha256) assert.fail(`entry ${i} ${e.name}: sha-256 differs (python)`);
  }
  assert.equal(tarList.code, 0, `bsdtar -tf failed: ${tarList.stderr.slice(0, 2000)}`);
  const listed = tarList.stdout.split('\n').filter((l) => l !== '');
  assert.equal(listed.length, expected.length, 'entry count (bsdtar -tf)');
  for (let i = 0; i < expected.length; i++) {
    if (listed[i] !== expected[i]!.name) assert.fail(`entry ${i}: bsdtar lists ${listed[i]}, expected ${expected[i]!.name}`);
  }
  assert.equal(tarStdin.code, 0, `bsdtar -xOf - (stdin) failed: ${tarStdin.stderr.slice(0, 2000)}`);
  assert.equal(tarStdin.bytes, fileEntries.reduce((n, e) => n + e.size, 0), 'bytes extracted from stdin');
  assert.equal(tarStdin.overflow, 0);
  for (const [i, e] of fileEntries.entries()) {
    if (e.sha256 !== undefined && tarStdin.pieces?.[i] !== e.sha256) assert.fail(`${e.name}: sha-256 of the bytes bsdtar extracts from stdin differs`);
  }
  return pyOut.entries;
}

export async function fileSize(file: string): Promise<number> {
  return (await stat(file)).size;
}
