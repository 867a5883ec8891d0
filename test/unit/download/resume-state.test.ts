// The resume state is a contract (docs/cli.md): strict parsing, atomic writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir } from '../../helpers/temp-dir.ts';
import { parseResumeState, readResumeState, writeResumeState, type ResumeState } from '../../../src/download/resume-state.ts';

const valid: ResumeState = {
  format: 'ferry-download-state', version: 1, url: 'http://h/f', finalUrl: 'http://h/f', sizeBytes: 3 * 1048576 + 1,
  etag: '"e"', lastModified: null, ranges: true, sha256: null, pieceBytes: 1048576,
  pieces: ['0badf00d', null, null, null], partial: [{ piece: 2, bytes: 10, crc32: 'deadbeef' }],
  createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:01.000Z',
};

test('a valid state round-trips', () => {
  const r = parseResumeState(JSON.parse(JSON.stringify(valid)));
  assert.ok(r.ok);
  assert.deepEqual(r.state, valid);
});

test('damaged states are refused with a reason', () => {
  const broken: [string, unknown][] = [
    ['not an object', 42],
    ['format', { ...valid, format: 'x' }],
    ['version', { ...valid, version: 2 }],
    ['size', { ...valid, sizeBytes: -1 }],
    ['piece count', { ...valid, pieces: ['0badf00d'] }],
    ['crc text', { ...valid, pieces: ['xyz', null, null, null] }],
    ['partial beyond the piece', { ...valid, partial: [{ piece: 2, bytes: 1048576, crc32: 'deadbeef' }] }],
    ['partial of a complete piece', { ...valid, partial: [{ piece: 0, bytes: 1, crc32: 'deadbeef' }] }],
    ['sha256', { ...valid, sha256: 'abc' }],
  ];
  for (const [name, value] of broken) {
    const r = parseResumeState(value);
    assert.equal(r.ok, false, name);
  }
});

test('writes are atomic and leave no temp file; a missing file reads as undefined', async (t) => {
  const tmp = await makeTempDir();
  t.after(() => tmp.remove());
  const file = path.join(tmp.dir, 'x.part.json');
  assert.equal(await readResumeState(file), undefined);
  await writeResumeState(file, valid);
  await writeResumeState(file, { ...valid, updatedAt: '2026-01-01T00:00:02.000Z' });
  const r = await readResumeState(file);
  assert.ok(r?.ok);
  assert.equal(r.state.updatedAt, '2026-01-01T00:00:02.000Z');
  assert.deepEqual(await readdir(tmp.dir), ['x.part.json']);
});
