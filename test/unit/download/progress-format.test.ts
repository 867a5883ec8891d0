import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatEta, formatProgressLine } from '../../../src/download/progress-format.ts';

test('ETA formatting', () => {
  assert.equal(formatEta(0), '0:00');
  assert.equal(formatEta(5_000), '0:05');
  assert.equal(formatEta(3_723_000), '1:02:03');
});

test('one line with bar, percent, bytes, speed, ETA, connections, within the width', () => {
  const line = formatProgressLine({ doneBytes: 256 * 1048576, sizeBytes: 512 * 1048576, speedBytesPerSec: 64 * 1048576, etaMs: 4000, connections: 8 }, 100);
  assert.match(line, /^\[#+\.+\]\s+50%\s+256 MiB\/512 MiB\s+64\.0 MiB\/s\s+ETA 0:04\s+8 conn$/);
  assert.ok(line.length <= 100);
  assert.ok(formatProgressLine({ doneBytes: 1, sizeBytes: 2, speedBytesPerSec: 0, etaMs: null, connections: 1 }, 40).length <= 40);
  assert.match(formatProgressLine({ doneBytes: 2048, sizeBytes: null, speedBytesPerSec: 1024, etaMs: null, connections: 1 }, 80), /^2\.0 KiB\s+1\.0 KiB\/s$/);
});
