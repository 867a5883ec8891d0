/** What a sweep may delete (decide-sweep.ts): only files that no live process can be writing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ORPHAN_IDLE_MS, decidePublishTemp, isDataIdle, isTempOrphan, tempOwnerPid } from '../../../src/uploads/decide-sweep.ts';

const NOW = 1_800_000_000_000;
const OLD = NOW - ORPHAN_IDLE_MS;
const FRESH = NOW - 1000;
const alive = new Set([100, 200]);
const base = { nowMs: NOW, ownPid: 100, active: false, isProcessAlive: (pid: number) => alive.has(pid) };

test('temp names: the pid, none for the old form, not a temp otherwise', () => {
  assert.equal(tempOwnerPid('put-4242-0a1b2c.tmp'), 4242);
  assert.equal(tempOwnerPid('put-0a1b2c3d.tmp'), null);
  for (const n of ['put-.tmp', 'put-12-.tmp', 'put-0-ab.tmp', 'x-12-ab.tmp', 'put-12-ab.tmp.bak', 'AAAAAAAAAAAAAAAAAAAAAA.part']) assert.equal(tempOwnerPid(n), undefined, n);
});

test('temp files: deleted only when idle and their writer is gone (or is this process and not writing)', () => {
  // [name, mtime, active, expected, why] — this process is pid 100; 200 is another live one; 300 is gone.
  const cases: Array<[string, number, boolean, boolean, string]> = [
    ['put-300-ab.tmp', OLD, false, true, 'writer gone, idle'],
    ['put-300-ab.tmp', FRESH, false, false, 'writer gone but written recently (another pid namespace?)'],
    ['put-200-ab.tmp', OLD, false, false, 'another live process (a draining server) owns it'],
    ['put-200-ab.tmp', FRESH, false, false, 'another live process, in flight'],
    ['put-100-ab.tmp', OLD, false, true, 'ours, not in flight, idle'],
    ['put-100-ab.tmp', OLD, true, false, 'ours and in flight'],
    ['put-100-ab.tmp', FRESH, false, false, 'ours by pid but fresh: a same-pid process in another container'],
    ['put-abcdef.tmp', OLD, false, true, 'old-style name, idle'],
    ['put-abcdef.tmp', FRESH, false, false, 'old-style name, fresh'],
    ['notes.txt', OLD, false, false, 'not a temp'],
  ];
  for (const [name, mtimeMs, active, expected, why] of cases) {
    assert.equal(isTempOrphan({ ...base, name, mtimeMs, active }), expected, `${name}: ${why}`);
  }
});

test('an expired tus upload\'s data: idle when absent, unchanged since its last commit, or untouched for long', () => {
  assert.equal(isDataIdle(undefined, undefined, NOW), true, 'no data file');
  assert.equal(isDataIdle(FRESH, FRESH, NOW), true, 'not written since the last commit');
  assert.equal(isDataIdle(FRESH + 0.7, FRESH, NOW), true, 'file times are finer than Date.now()');
  assert.equal(isDataIdle(FRESH + 5, FRESH, NOW), false, 'written after the last commit: a writer is at work');
  assert.equal(isDataIdle(FRESH, undefined, NOW), false, 'never committed, written recently');
  assert.equal(isDataIdle(OLD, undefined, NOW), true, 'untouched for ORPHAN_IDLE_MS (a crashed writer)');
  assert.equal(isDataIdle(OLD - 10, OLD - 20, NOW), true, 'uncommitted bytes of a writer long gone');
});

test('cross-filesystem temp copies: deleted when idle and their writer is gone; a note without a file is forgotten only when its writer is gone', () => {
  // [pid, mtime, active, expected, why] — this process is pid 100; 200 is another live one; 300 is gone.
  const cases: Array<[number, number | undefined, boolean, 'delete' | 'forget' | 'keep', string]> = [
    [300, OLD, false, 'delete', 'writer gone, idle'],
    [300, FRESH, false, 'keep', 'writer gone but written recently'],
    [200, OLD, false, 'keep', 'another live process owns it'],
    [100, OLD, false, 'delete', 'ours from an earlier life, idle'],
    [100, OLD, true, 'keep', 'ours and being copied'],
    [100, FRESH, false, 'keep', 'ours by pid but fresh'],
    [300, undefined, false, 'forget', 'no file and its writer is gone: only the note remains'],
    [200, undefined, false, 'keep', 'no file yet: a live writer noted it and is about to create it'],
    [100, undefined, true, 'keep', 'ours, about to be created'],
  ];
  for (const [pid, mtimeMs, active, expected, why] of cases) {
    assert.equal(decidePublishTemp({ ...base, pid, mtimeMs, active }), expected, why);
  }
});
