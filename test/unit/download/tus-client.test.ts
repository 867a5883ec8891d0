// The tus client's pure decisions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseChecksum, encodeMetadata, planParts } from '../../../src/download/tus-upload.ts';

const MIB = 1024 * 1024;

test('parts cover the file exactly, at least 4 MiB each', () => {
  for (const [size, n, expected] of [[0, 4, 1], [3 * MIB, 4, 1], [10 * MIB, 4, 2], [512 * MIB + 3, 8, 8]] as const) {
    const parts = planParts(size, n);
    assert.equal(parts.length, expected, `${size}/${n}`);
    assert.equal(parts[0]!.start, 0);
    assert.equal(parts.at(-1)!.end, size);
    for (let i = 1; i < parts.length; i++) assert.equal(parts[i]!.start, parts[i - 1]!.end);
  }
});

test('checksum algorithm from Tus-Checksum-Algorithm (tus §Checksum)', () => {
  const caps = (ext: string[], alg: string[]) => ({ extensions: new Set(ext), algorithms: new Set(alg), maxSizeBytes: undefined });
  assert.equal(chooseChecksum('auto', caps(['checksum'], ['sha1', 'sha256'])), 'sha256');
  assert.equal(chooseChecksum('auto', caps(['checksum'], ['sha1', 'md5'])), 'sha1');
  assert.equal(chooseChecksum('auto', caps(['checksum'], ['md5'])), undefined);
  assert.equal(chooseChecksum('auto', caps([], [])), undefined);
  assert.equal(chooseChecksum('none', caps(['checksum'], ['sha256'])), undefined);
  assert.throws(() => chooseChecksum('sha256', caps(['checksum'], ['sha1'])));
  assert.throws(() => chooseChecksum('sha1', caps([], [])));
});

test('Upload-Metadata: key and Base64 value, comma-separated (tus §Upload-Metadata)', () => {
  assert.equal(encodeMetadata({ filename: 'world_domination_plan.pdf', path: 'a/b' }), 'filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,path YS9i');
});
