/**
 * The real tus-js-client (Node build) against Ferry: a 512 MiB upload interrupted twice and
 * resumed from the URL it stored (a fresh Upload each time, as a reopened tab would), and a
 * `parallelUploads: 4` upload through concatenation. The published files' sha-256 equals the
 * source's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import * as tus from 'tus-js-client';
import type { UploadOptions, UrlStorage } from 'tus-js-client';
import { makeTempDir } from '../helpers/temp-dir.ts';
import { sha256File, writeSeededFile } from '../helpers/files.ts';
import { AUTH, startUploadServer } from '../integration/uploads-kit.ts';

const MiB = 1024 * 1024;

// FileUrlStorage is exported by the Node build but missing from the package's type definitions.
const { FileUrlStorage } = tus as unknown as { FileUrlStorage: new (file: string) => UrlStorage };

/**
 * Runs one Upload until it succeeds, or until `stopAt` bytes were sent (then aborts it, as a
 * closed laptop lid would). Resolves with the offset the client started from.
 */
function runUpload(file: string, options: UploadOptions, stopAt?: number): Promise<{ outcome: 'success' | 'aborted'; startedAt: number }> {
  return new Promise((resolve, reject) => {
    let startedAt = -1;
    let stopped = false;
    const upload = new tus.Upload(createReadStream(file) as unknown as Buffer, {
      ...options,
      onProgress: (sent) => {
        if (startedAt < 0) startedAt = sent;
        if (stopAt !== undefined && sent >= stopAt && !stopped) {
          stopped = true;
          void upload.abort(false).then(() => { resolve({ outcome: 'aborted', startedAt }); }, reject);
        }
      },
      onSuccess: () => { resolve({ outcome: 'success', startedAt }); },
      onError: reject,
    });
    void upload.findPreviousUploads().then((previous) => {
      const last = previous.at(-1);
      if (last !== undefined) upload.resumeFromPreviousUpload(last);
      upload.start();
    }, reject);
  });
}

test('tus-js-client: 512 MiB interrupted twice, resumed from the stored URL, byte-identical', async (t) => {
  const s = await startUploadServer(t);
  const tmp = await makeTempDir('ferry-tusjs-');
  t.after(() => tmp.remove());
  const size = 512 * MiB;
  const src = path.join(tmp.dir, 'big.bin');
  const sha = await writeSeededFile(src, size, 77);
  const options: UploadOptions = {
    endpoint: `${s.url}/uploads/`,
    headers: { ...AUTH },
    metadata: { filename: 'big.bin', path: 'tus', filetype: 'application/octet-stream' },
    urlStorage: new FileUrlStorage(path.join(tmp.dir, 'tus-urls.json')),
    storeFingerprintForResuming: true,
    removeFingerprintOnSuccess: true,
    retryDelays: [0, 200, 500],
  };

  const first = await runUpload(src, options, size / 3);
  assert.equal(first.outcome, 'aborted');
  const second = await runUpload(src, options, (2 * size) / 3);
  assert.equal(second.outcome, 'aborted');
  assert.ok(second.startedAt >= size / 4, `second run resumed at ${second.startedAt}`);
  const third = await runUpload(src, options);
  assert.equal(third.outcome, 'success');
  assert.ok(third.startedAt >= size / 2, `third run resumed at ${third.startedAt}`);

  assert.equal(await sha256File(path.join(s.root, 'tus', 'big.bin')), sha);
  const resumed = s.logs.filter((l) => l.event === 'resumed');
  assert.equal(resumed.length, 2, 'two resumes, each from a stored offset');
  assert.ok(resumed.every((l) => typeof l.offset === 'number' && l.offset > 0));
  assert.equal(s.logs.filter((l) => l.event === 'created').length, 1, 'one upload, never restarted from scratch');
});

test('tus-js-client: parallelUploads 4 through concatenation', async (t) => {
  const s = await startUploadServer(t);
  const tmp = await makeTempDir('ferry-tusjs-');
  t.after(() => tmp.remove());
  const size = 96 * MiB + 12345;
  const src = path.join(tmp.dir, 'parallel.bin');
  const sha = await writeSeededFile(src, size, 78);
  const result = await runUpload(src, {
    endpoint: `${s.url}/uploads/`,
    headers: { ...AUTH },
    parallelUploads: 4,
    metadata: { filename: 'parallel.bin' },
    retryDelays: [0, 200],
  });
  assert.equal(result.outcome, 'success');
  assert.equal(await sha256File(path.join(s.root, 'parallel.bin')), sha);
  assert.equal(s.logs.filter((l) => l.event === 'created' && l.partial === true).length, 4);
  assert.equal(s.logs.filter((l) => l.event === 'created' && l.final === true).length, 1);
  assert.deepEqual((await readdir(path.join(s.stateDir, 'uploads'))).filter((n) => n.endsWith('.part')), [], 'partials consumed, no copy left');
  assert.ok(!s.logs.some((l) => l.event === 'digest-from-disk'), 'the final digest continued from the first partial\'s running state');
});

test('tus-js-client: creation-with-upload with 1 MiB chunks, and a deferred-length stream', async (t) => {
  const s = await startUploadServer(t);
  const data = randomBytes(5 * MiB + 77);
  // Buffer input, first chunk in the POST, then 1 MiB PATCHes.
  await new Promise<void>((resolve, reject) => {
    new tus.Upload(data, {
      endpoint: `${s.url}/uploads/`, headers: { ...AUTH }, metadata: { filename: 'cwu.bin' },
      uploadDataDuringCreation: true, chunkSize: MiB, onSuccess: () => { resolve(); }, onError: reject,
    }).start();
  });
  assert.ok((await readFile(path.join(s.root, 'cwu.bin'))).equals(data));
  // A stream of unknown length: Upload-Defer-Length, the length sent with the last PATCH.
  await new Promise<void>((resolve, reject) => {
    new tus.Upload(Readable.from([data.subarray(0, 3 * MiB), data.subarray(3 * MiB)]) as unknown as Buffer, {
      endpoint: `${s.url}/uploads/`, headers: { ...AUTH }, metadata: { filename: 'deferred.bin', sha256: createHash('sha256').update(data).digest('hex') },
      uploadLengthDeferred: true, chunkSize: 2 * MiB, onSuccess: () => { resolve(); }, onError: reject,
    }).start();
  });
  assert.ok((await readFile(path.join(s.root, 'deferred.bin'))).equals(data));
  assert.ok(s.logs.some((l) => l.event === 'created' && l.deferred === true));
});
