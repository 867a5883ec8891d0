/**
 * ZIP64 with real sizes, on sparse files (cheap to create, fast to read) written to sparse
 * archives: an entry over 4 GiB followed by a small one, an entry of exactly 4,294,967,295 bytes
 * (the value that must already go to ZIP64, APPNOTE 4.4.8), and an archive over 4 GiB made of
 * smaller files. Each archive is checked by unzip, 7-Zip, Python zipfile and bsdtar, from the
 * file and streamed through stdin (which only works if the local headers carry the ZIP64 sizes).
 *
 * If the ZIP64 rule used `>` instead of `>=`, the 0xFFFFFFFF entry would have no ZIP64 extra and
 * every reader would look for its size in a record that does not exist: the test fails.
 */
import { test, before, after, suite } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { planZip, readZipRange, type ZipLayout, type ZipMemberInput } from '../../../src/zip/index.ts';
import { createFsSource, makeSparseFile, validateArchive, writeSparse, type ExpectedEntry, type FsRef } from './zip-test-kit.ts';

const GiB = 1024 ** 3;
let tmp = '';
before(async () => { tmp = await mkdtemp(path.join(os.tmpdir(), 'ferry-zip64-')); });
after(async () => { if (tmp !== '') await rm(tmp, { recursive: true, force: true }); });

interface Spec { name: string; size: number }

async function buildAndValidate(label: string, specs: Spec[], layout: ZipLayout): Promise<{ file: string; members: ZipMemberInput<FsRef>[] }> {
  const members: ZipMemberInput<FsRef>[] = [];
  const expected: ExpectedEntry[] = [];
  for (const [i, s] of specs.entries()) {
    const file = path.join(tmp, `${label}-${i}.bin`);
    let sha: string;
    if (s.size < 1024 * 1024) {
      const content = Buffer.from(`${label} small member ${i}\n`.repeat(Math.ceil(s.size / 20))).subarray(0, s.size);
      await writeFile(file, content);
      sha = createHash('sha256').update(content).digest('hex');
    } else {
      sha = await makeSparseFile(file, s.size, i + 1);
    }
    members.push({ name: s.name, type: 'file', size: s.size, mtimeMs: Date.UTC(2025, 0, 2, 3, 4, 6), mode: 0o100644, ref: { file } });
    expected.push({ name: s.name, size: s.size, sha256: sha });
  }
  const plan = planZip(members, { layout });
  const archive = path.join(tmp, `${label}.zip`);
  const source = createFsSource({ highWaterMark: 4 * 1024 * 1024 });
  const { bytes } = await writeSparse(archive, readZipRange(plan, undefined, source, { signal: new AbortController().signal }));
  assert.equal(bytes, plan.totalBytes, 'exact planned length');
  assert.equal(source.maxOpen, 1);
  // Python's per-member hashing would read every GiB once more; bsdtar's stdin extraction is hashed per member instead.
  await validateArchive(archive, expected, { pythonHashes: false, timeoutMs: 300_000 });
  return { file: archive, members };
}

/** Reads the local header at `offset`: the 32-bit size fields and the ZIP64 extra's values. */
async function readLocalHeader(file: string, offset: number): Promise<{ csize32: number; usize32: number; zip64?: { u: bigint; c: bigint }; flags: number; version: number }> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(30 + 65535 * 2);
    await fh.read(buf, 0, buf.length, offset);
    assert.equal(buf.readUInt32LE(0), 0x04034b50, 'local header signature');
    const nameLen = buf.readUInt16LE(26);
    const extraLen = buf.readUInt16LE(28);
    let o = 30 + nameLen;
    let zip64: { u: bigint; c: bigint } | undefined;
    while (o < 30 + nameLen + extraLen) {
      const id = buf.readUInt16LE(o);
      const len = buf.readUInt16LE(o + 2);
      if (id === 1) zip64 = { u: buf.readBigUInt64LE(o + 4), c: buf.readBigUInt64LE(o + 12) };
      o += 4 + len;
    }
    return { csize32: buf.readUInt32LE(18), usize32: buf.readUInt32LE(22), flags: buf.readUInt16LE(6), version: buf.readUInt16LE(4), ...(zip64 === undefined ? {} : { zip64 }) };
  } finally {
    await fh.close();
  }
}

// The three archives are built and validated at the same time: the validators (unzip's CRC at
// ~170 MB/s above all) dominate, and they run in separate processes.
suite('ZIP64 on multi-GiB sparse members', { concurrency: true }, () => {
  test('an entry over 4 GiB followed by a small one (descriptor layout: CRCs learnt while streaming)', async () => {
    const big = 4 * GiB + 1024 * 1024 + 5;
    const { file, members } = await buildAndValidate('over4g', [{ name: 'huge/大文件.bin', size: big }, { name: 'after.txt', size: 1000 }], 'descriptor');
    const plan = planZip(members, { layout: 'descriptor' });
    const lh = await readLocalHeader(file, 0);
    assert.equal(lh.csize32, 0xffffffff);
    assert.equal(lh.usize32, 0xffffffff);
    assert.deepEqual(lh.zip64, { u: BigInt(big), c: BigInt(big) }, 'local ZIP64 extra with BOTH sizes (APPNOTE 4.5.3)');
    assert.equal(lh.version, 45);
    assert.equal(plan.entries[0]!.descriptorSize, 24, '8-byte sizes in the descriptor after a ZIP64 local header');
    const small = await readLocalHeader(file, plan.entries[1]!.localHeaderOffset);
    assert.ok(plan.entries[1]!.localHeaderOffset > 0xffffffff);
    assert.equal(small.zip64, undefined, 'a small entry needs no ZIP64 in its local header, even past 4 GiB');
    assert.equal(plan.zip64End, true);
  });

  test('an entry of exactly 4,294,967,295 bytes (crc-first layout)', async () => {
    const { file, members } = await buildAndValidate('exact', [{ name: 'exact-0xFFFFFFFF.bin', size: 0xffffffff }, { name: 'tail.txt', size: 77 }], 'crc-first');
    const lh = await readLocalHeader(file, 0);
    assert.deepEqual(lh.zip64, { u: 0xffffffffn, c: 0xffffffffn }, '0xFFFFFFFF itself means "see ZIP64": the extra is required');
    assert.equal(lh.flags & 0x8, 0, 'no data descriptor in crc-first');
    const plan = planZip(members, { layout: 'crc-first' });
    assert.equal(plan.entries[1]!.localHeaderOffset > 0xffffffff, true, 'the next entry starts past 4 GiB: its offset goes to ZIP64 in the central header');
  });

  test('an archive over 4 GiB made of smaller files (ZIP64 offsets and end records only)', async () => {
    // Two members of ~2.05 GiB and a small one that starts past 4 GiB.
    const specs = [{ name: 'part-0.bin', size: 2100 * 1024 * 1024 }, { name: 'part-1.bin', size: 2100 * 1024 * 1024 + 1 }, { name: 'part-2.txt', size: 5000 }];
    const { file, members } = await buildAndValidate('many-small', specs, 'crc-first');
    const plan = planZip(members, { layout: 'crc-first' });
    assert.ok(plan.totalBytes > 4 * GiB);
    assert.ok(plan.entries.every((e) => !e.zip64), 'no entry needs ZIP64 sizes');
    assert.ok(plan.entries[2]!.localHeaderOffset > 0xffffffff);
    assert.equal(plan.zip64End, true);
    const lh = await readLocalHeader(file, plan.entries[2]!.localHeaderOffset);
    assert.equal(lh.zip64, undefined);
    assert.equal(lh.csize32, specs[2]!.size);
  });
});
