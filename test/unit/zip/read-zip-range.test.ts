/**
 * The range writer on a small mixed archive (CJK and emoji names, empty files and folders,
 * multi-chunk members, times outside the DOS range), in both layouts and in the one-pass deflate
 * writer: every archive is checked by unzip, 7-Zip, Python zipfile and bsdtar (file and stdin),
 * and every byte range must equal the same slice of the whole archive.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  planZip, readZipRange, streamZip, isCompressible, type CrcProgress, type ZipDataSource, type ZipLayout, type ZipMemberInput,
} from '../../../src/zip/index.ts';
import { FerryError } from '../../../src/core/errors.ts';
import { collect, createFsSource, validateArchive, writeSparse, type ExpectedEntry, type FsRef } from './zip-test-kit.ts';

interface Fixture { rel: string; content?: Buffer; dir?: boolean; mtimeMs: number }

let tmp = '';
const fixtures: Fixture[] = [
  { rel: '季度报告 2026.pdf', content: randomBytes(100_000), mtimeMs: Date.UTC(2026, 2, 14, 9, 26, 53) },
  { rel: '日本語', dir: true, mtimeMs: Date.UTC(2024, 0, 1) },
  { rel: '日本語/ファイル.txt', content: Buffer.from('こんにちは世界\n'.repeat(500)), mtimeMs: Date.UTC(2025, 5, 30, 23, 59, 59) },
  { rel: 'emoji 🎉/🦄.bin', content: randomBytes(300_000), mtimeMs: Date.UTC(2023, 6, 4, 12, 0, 0) },
  { rel: 'empty.txt', content: Buffer.alloc(0), mtimeMs: Date.UTC(2022, 1, 2) },
  { rel: 'empty-folder', dir: true, mtimeMs: Date.UTC(2021, 3, 5) },
  { rel: 'nested/a/b/c.txt', content: Buffer.from('deep\n'), mtimeMs: Date.UTC(1975, 0, 1) }, // before 1980: DOS clamps
  { rel: 'big.bin', content: randomBytes(3 * 1024 * 1024 + 17), mtimeMs: Date.UTC(2020, 11, 31, 23, 59, 58) },
  { rel: 'photo.jpg', content: randomBytes(5000), mtimeMs: Date.UTC(2019, 4, 4) },
];
let members: ZipMemberInput<FsRef>[] = [];
let expected: ExpectedEntry[] = [];

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ferry-zip-range-'));
  for (const f of fixtures) {
    const abs = path.join(tmp, f.rel);
    if (f.dir === true) await mkdir(abs, { recursive: true });
    else {
      await mkdir(path.dirname(abs), { recursive: true });
      await writeFile(abs, f.content!);
    }
    await utimes(abs, f.mtimeMs / 1000, f.mtimeMs / 1000);
  }
  members = fixtures.map((f) => ({
    name: f.rel, type: f.dir === true ? 'directory' : 'file', size: f.content?.length ?? 0, mtimeMs: f.mtimeMs,
    mode: f.dir === true ? 0o40755 : 0o100640, ref: { file: path.join(tmp, f.rel) },
  }));
  expected = fixtures.map((f) => ({
    name: f.dir === true ? `${f.rel}/` : f.rel, size: f.content?.length ?? 0,
    ...(f.content === undefined ? {} : { sha256: createHash('sha256').update(f.content).digest('hex') }),
  }));
});
after(async () => { if (tmp !== '') await rm(tmp, { recursive: true, force: true }); });

const signal = (): AbortSignal => new AbortController().signal;

async function wholeArchive(layout: ZipLayout, source = createFsSource()): Promise<Buffer> {
  const plan = planZip(members, { layout });
  const bytes = await collect(readZipRange(plan, undefined, source, { signal: signal() }));
  assert.equal(bytes.length, plan.totalBytes, 'planned length = produced length');
  return bytes;
}

for (const layout of ['crc-first', 'descriptor'] as const) {
  test(`${layout}: validated by unzip, 7z, python, bsdtar (file and stdin); headers as specified`, async () => {
    const source = createFsSource();
    const file = path.join(tmp, `${layout}.zip`);
    const plan = planZip(members, { layout });
    const { bytes } = await writeSparse(file, readZipRange(plan, undefined, source, { signal: signal() }));
    assert.equal(bytes, plan.totalBytes);
    assert.equal(source.maxOpen, 1, 'one member file open at a time');
    assert.equal(source.openNow, 0);
    if (layout === 'crc-first') {
      assert.deepEqual(source.resolved.length, 6, 'CRC resolved before the local header of each non-empty file');
    } else {
      assert.equal(source.resolved.length, 0, 'descriptor layout never reads ahead');
      assert.equal(source.computed.size, 6, 'CRCs computed in-stream and reported for caching');
    }
    const py = await validateArchive(file, expected);
    for (const [i, e] of py.entries()) {
      const isDir = e.name.endsWith('/');
      assert.equal(e.flags & 0x800, 0x800, `${e.name}: bit 11 (UTF-8)`);
      const wantsDescriptor = layout === 'descriptor' && !isDir && e.size > 0;
      assert.equal(e.flags & 0x8, wantsDescriptor ? 0x8 : 0, `${e.name}: bit 3`);
      assert.equal(e.system, 3, 'version made by UNIX');
      assert.equal(e.compress, 0, 'stored');
      const unixMode = e.attr >>> 16;
      assert.equal(unixMode, isDir ? 0o40755 : 0o100640, `${e.name}: unix mode in external attributes`);
      if (isDir) assert.equal(e.attr & 0x10, 0x10, 'DOS directory bit');
      const m = fixtures[i]!;
      const ut = e.extra.indexOf('5554');
      if (m.mtimeMs >= 0) {
        assert.ok(ut >= 0, `${e.name}: extended timestamp extra present`);
        const secs = Buffer.from(e.extra.slice(ut + 10, ut + 18), 'hex').readInt32LE(0);
        assert.equal(secs, Math.floor(m.mtimeMs / 1000), `${e.name}: real mtime in 0x5455`);
      }
    }
    // DOS time in UTC, clamped to 1980 for the 1975 file.
    assert.deepEqual(py[6]!.date_time, [1980, 1, 1, 0, 0, 0]);
    assert.deepEqual(py[0]!.date_time, [2026, 3, 14, 9, 26, 52]);
  });
}

test('same members, same layout → same bytes and ETag; layout, names, times and versions change the ETag', async () => {
  const a = await wholeArchive('crc-first');
  const b = await wholeArchive('crc-first');
  assert.ok(a.equals(b));
  const p = planZip(members, { layout: 'crc-first' });
  assert.equal(planZip(members, { layout: 'crc-first' }).etag, p.etag);
  assert.match(p.etag, /^"[!#-~]+"$/, 'strong entity-tag syntax (RFC 9110 §8.8.3)');
  assert.notEqual(planZip(members, { layout: 'descriptor' }).etag, p.etag);
  const renamed = members.map((m, i) => (i === 0 ? { ...m, name: 'other.pdf' } : m));
  assert.notEqual(planZip(renamed, { layout: 'crc-first' }).etag, p.etag);
  const touched = members.map((m, i) => (i === 0 ? { ...m, mtimeMs: m.mtimeMs + 1000 } : m));
  assert.notEqual(planZip(touched, { layout: 'crc-first' }).etag, p.etag);
  const versioned = members.map((m, i) => (i === 0 ? { ...m, version: 'ino:2' } : m));
  assert.notEqual(planZip(versioned, { layout: 'crc-first' }).etag, p.etag);
  const withCrc = members.map((m) => ({ ...m, crc32: 1 }));
  assert.equal(planZip(withCrc, { layout: 'crc-first' }).etag, p.etag, 'knowing CRCs does not change the ETag');
});

/** Deterministic pseudo-random ranges, plus every boundary of every piece. */
function rangesFor(total: number, boundaries: number[], count: number): Array<[number, number]> {
  let x = 0x2545f491;
  const rnd = (n: number): number => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (x >>> 0) % n; };
  const out: Array<[number, number]> = [[0, total - 1], [0, 99], [total - 1, total - 1], [total - 22, total - 1]];
  for (const b of boundaries) {
    for (const s of [b - 1, b, b + 1]) {
      if (s < 0 || s >= total) continue;
      out.push([s, Math.min(total - 1, s + rnd(200))]);
      out.push([s, total - 1]);
    }
  }
  for (let i = 0; i < count; i++) {
    const s = rnd(total);
    out.push([s, s + rnd(total - s)]);
  }
  return out;
}

for (const layout of ['crc-first', 'descriptor'] as const) {
  test(`${layout}: every byte range equals the same slice of the whole archive`, async () => {
    const whole = await wholeArchive(layout);
    const plan = planZip(members, { layout });
    const boundaries: number[] = [plan.centralDirectoryOffset, plan.endRecordsOffset];
    for (const e of plan.entries) boundaries.push(e.localHeaderOffset, e.dataOffset, e.dataOffset + e.size, e.centralHeaderOffset);
    // A fresh source per range: nothing learnt from an earlier range helps (worst case).
    for (const [s, e] of rangesFor(plan.totalBytes, boundaries, 150)) {
      const source = createFsSource({ highWaterMark: 64 * 1024 });
      const got = await collect(readZipRange(plan, { start: s, end: e }, source, { signal: signal() }));
      if (!got.equals(whole.subarray(s, e + 1))) assert.fail(`${layout} range ${s}-${e} differs`);
      assert.ok(source.maxOpen <= 1);
    }
  });
}

test('descriptor layout: a resumed range uses the saved partial CRC instead of re-reading the prefix', async () => {
  const whole = await wholeArchive('descriptor');
  const plan = planZip(members, { layout: 'descriptor' });
  const big = plan.entries.find((e) => e.name === 'big.bin')!;
  const progress = new Map<number, CrcProgress>();
  const base = createFsSource({ highWaterMark: 64 * 1024 });
  const reads: Array<[number, number]> = [];
  const source: ZipDataSource<FsRef> = {
    ...base,
    openMember: (entry, s, e, sig) => { reads.push([s, e]); return base.openMember(entry, s, e, sig); },
    resolveCrc: (entry, sig) => base.resolveCrc(entry, sig),
    loadCrcProgress: async (entry) => progress.get(entry.index),
    saveCrcProgress: (entry, p) => { progress.set(entry.index, p); },
  };
  // First download: cut after ~1 MiB of big.bin's data.
  const ac = new AbortController();
  const cut = big.dataOffset + 1024 * 1024;
  let received = 0;
  const first: Buffer[] = [];
  await assert.rejects(async () => {
    for await (const chunk of readZipRange(plan, { start: big.localHeaderOffset, end: plan.totalBytes - 1 }, source, { signal: ac.signal })) {
      first.push(chunk);
      received += chunk.length;
      if (big.localHeaderOffset + received >= cut) ac.abort();
    }
  }, { name: 'AbortError' });
  const saved = progress.get(big.index);
  assert.ok(saved !== undefined && saved.bytes >= 1024 * 1024, 'partial CRC saved on abort');
  // Resume from what the client got.
  reads.length = 0;
  const resumeAt = big.localHeaderOffset + received;
  const rest = await collect(readZipRange(plan, { start: resumeAt, end: plan.totalBytes - 1 }, source, { signal: signal() }));
  assert.ok(Buffer.concat([...first, rest]).equals(whole.subarray(big.localHeaderOffset)), 'resumed bytes identical');
  const bigRead = reads.find(() => true)!;
  assert.ok(bigRead[0] >= resumeAt - big.dataOffset - 0 || bigRead[0] >= Math.min(saved.bytes, resumeAt - big.dataOffset), 'prefix not re-read from 0');
  assert.notEqual(bigRead[0], 0, 'resume did not re-read big.bin from its first byte');
});

test('abort mid-member: the member handle is released and the generator ends with AbortError', async () => {
  const plan = planZip(members, { layout: 'crc-first' });
  const source = createFsSource({ highWaterMark: 16 * 1024 });
  const ac = new AbortController();
  let n = 0;
  await assert.rejects(async () => {
    for await (const _chunk of readZipRange(plan, undefined, source, { signal: ac.signal })) {
      if (++n === 5) ac.abort();
    }
  }, { name: 'AbortError' });
  assert.equal(source.openNow, 0);
});

test('consumer stops early (return): the member handle is released', async () => {
  const plan = planZip(members, { layout: 'descriptor' });
  const source = createFsSource({ highWaterMark: 16 * 1024 });
  let n = 0;
  for await (const _chunk of readZipRange(plan, undefined, source, { signal: signal() })) if (++n === 4) break;
  assert.equal(source.openNow, 0);
});

test('a member shorter than planned, or whose bytes do not match the CRC given, fails the archive', async () => {
  const shrunk = members.map((m) => (m.name === 'big.bin' ? { ...m, size: m.size + 10 } : m));
  await assert.rejects(collect(readZipRange(planZip(shrunk, { layout: 'crc-first' }), undefined, createFsSource(), { signal: signal() })),
    (err: unknown) => err instanceof FerryError && err.code === 'FERRY_ERR_ZIP_MEMBER_CHANGED');
  const wrongCrc = members.map((m) => (m.name === 'big.bin' ? { ...m, crc32: 12345 } : m));
  const mismatches: string[] = [];
  const base = createFsSource();
  const source: ZipDataSource<FsRef> = { ...base, openMember: base.openMember, resolveCrc: base.resolveCrc, onCrcMismatch: (e) => { mismatches.push(e.name); } };
  await assert.rejects(collect(readZipRange(planZip(wrongCrc, { layout: 'crc-first' }), undefined, source, { signal: signal() })),
    (err: unknown) => err instanceof FerryError && err.code === 'FERRY_ERR_ZIP_MEMBER_CHANGED');
  assert.deepEqual(mismatches, ['big.bin']);
});

test('range outside the archive is a programming error', async () => {
  const plan = planZip(members, { layout: 'crc-first' });
  await assert.rejects(collect(readZipRange(plan, { start: plan.totalBytes, end: plan.totalBytes }, createFsSource(), { signal: signal() })), RangeError);
});

test('streamZip (compress=1): deflates compressible members, stores media; validated by every tool', async () => {
  const source = createFsSource();
  const file = path.join(tmp, 'deflate.zip');
  const gen = streamZip(members, source, { signal: signal(), compress: (m) => isCompressible(m.name, m.size) });
  const { bytes } = await writeSparse(file, gen);
  const py = await validateArchive(file, expected);
  const byName = new Map(py.map((e) => [e.name, e]));
  assert.equal(byName.get('日本語/ファイル.txt')!.compress, 8, 'text deflated');
  assert.equal(byName.get('photo.jpg')!.compress, 0, 'jpeg stored');
  assert.equal(byName.get('empty.txt')!.compress, 0);
  assert.ok(bytes < (await wholeArchive('crc-first')).length, 'smaller than the stored archive');
  assert.equal(source.maxOpen, 1);
});
