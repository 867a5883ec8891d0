/**
 * Upload ingest limits (issue 5 §3): --limit-upload-rate paces each upload request's body
 * by reading it no faster than the rate (TCP flow control slows the sender); nothing is
 * buffered beyond a chunk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { startServer } from '../helpers/start-server.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';
import { hashToken } from '../../src/auth/index.ts';

const KiB = 1024;

test('--limit-upload-rate 256k: a 768 KiB PUT takes about two seconds past its burst', async (t) => {
  const tmp = await makeTempDir();
  t.after(() => tmp.remove());
  const tokensFile = path.join(tmp.dir, 'tokens.json');
  await writeFile(tokensFile, JSON.stringify([{ name: 'ci', role: 'write', sha256: hashToken('upload-token') }]));
  const s = await startServer({ options: { tokensFile, limitUploadRate: '256k' } });
  t.after(() => s.close());
  const body = Buffer.alloc(768 * KiB, 3);
  const t0 = performance.now();
  const res = await fetch(`${s.url}/files/up.bin`, { method: 'PUT', body, headers: { authorization: 'Bearer upload-token' } });
  const seconds = (performance.now() - t0) / 1000;
  assert.ok(res.status === 200 || res.status === 201 || res.status === 204, `PUT answered ${res.status}`);
  await res.arrayBuffer();
  assert.equal((await stat(path.join(s.root, 'up.bin'))).size, body.length);
  // The default burst (one second of the rate) is free; the other 512 KiB take 2 s.
  t.diagnostic(`768 KiB at 256 KiB/s in ${seconds.toFixed(2)} s`);
  assert.ok(seconds > 1.8 && seconds < 2.8, `took ${seconds} s, expected ~2 s`);
});
