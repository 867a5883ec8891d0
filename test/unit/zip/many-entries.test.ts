/**
 * Entry counts around the 16-bit limit: 65,535 entries (the count field's maximum, which already
 * means "see the ZIP64 end record", APPNOTE 4.4.21-4.4.22) and 70,000. Zero-byte files, small
 * files, empty folders and CJK/emoji names mixed in; members are generated in memory (the count
 * matters here, not the bytes), the archive is checked by every tool.
 */
import { test, before, after, suite } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { planZip, readZipRange, type ZipDataSource, type ZipLayout, type ZipMemberInput } from '../../../src/zip/index.ts';
import { validateArchive, writeSparse, type ExpectedEntry } from './zip-test-kit.ts';

let tmp = '';
before(async () => { tmp = await mkdtemp(path.join(os.tmpdir(), 'ferry-zip-many-')); });
after(async () => { if (tmp !== '') await rm(tmp, { recursive: true, force: true }); });

interface MemRef { readonly content: Buffer }

function makeMembers(count: number): { members: ZipMemberInput<MemRef>[]; expected: ExpectedEntry[] } {
  const members: ZipMemberInput<MemRef>[] = [];
  const expected: ExpectedEntry[] = [];
  const names = ['文件', 'ファイル', '🎉', 'plain'];
  for (let i = 0; i < count; i++) {
    const folder = `d${String(i % 97).padStart(2, '0')}`;
    let m: ZipMemberInput<MemRef>;
    if (i % 1000 === 999) {
      m = { name: `empty-${i}`, type: 'directory', size: 0, mtimeMs: Date.UTC(2024, 0, 1), mode: 0o40755, ref: { content: Buffer.alloc(0) } };
    } else {
      const content = i % 10 === 0 ? Buffer.from(`entry ${i}\n`.repeat((i % 7) + 1)) : Buffer.alloc(0);
      m = { name: `${folder}/${names[i % names.length]}-${i}.txt`, type: 'file', size: content.length, mtimeMs: Date.UTC(2024, 0, 1) + i * 1000, mode: 0o100644, ref: { content } };
    }
    members.push(m);
    expected.push({
      name: m.type === 'directory' ? `${m.name}/` : m.name, size: m.size,
      ...(m.type === 'file' ? { sha256: createHash('sha256').update(m.ref.content).digest('hex') } : {}),
    });
  }
  return { members, expected };
}

const memorySource: ZipDataSource<MemRef> = {
  async *openMember(entry, start, end) { yield entry.ref.content.subarray(start, end + 1); },
  async resolveCrc(entry) { const { crc32 } = await import('node:zlib'); return crc32(entry.ref.content); },
};

suite('many entries', { concurrency: true }, () => {
  for (const [count, layout] of [[65_535, 'crc-first'], [70_000, 'descriptor']] as Array<[number, ZipLayout]>) {
    test(`${count.toLocaleString('en')} entries (${layout})`, async () => {
      const { members, expected } = makeMembers(count);
      const plan = planZip(members, { layout });
      assert.equal(plan.zip64End, true);
      const file = path.join(tmp, `${count}.zip`);
      const { bytes } = await writeSparse(file, readZipRange(plan, undefined, memorySource, { signal: new AbortController().signal }));
      assert.equal(bytes, plan.totalBytes);
      await validateArchive(file, expected);
    });
  }
});
