/**
 * State dir and root on different filesystems (issue 4 §4): rename(2)/link(2) fail with EXDEV,
 * so the data is copied to a hidden temp file inside the target folder and published from
 * there. The file appears whole, nothing is left behind on either side.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { startServer } from '../helpers/start-server.ts';
import { AUTH, TUS, b64, bytes, patchHeaders, rawRequest, writeTokensFile } from './uploads-kit.ts';
import { tmpfsFixture } from '../helpers/tmpfs.ts';

test('root on another filesystem than the state dir: copy beside the target, then publish', async (t) => {
  const fx = await tmpfsFixture(t, { prefix: 'ferry-xfs-', name: 'root', size: '64m' });
  if (fx === undefined) return;
  const { dir: tmpDir, mnt: root } = fx;
  const tokensFile = await writeTokensFile(tmpDir);
  const stateDir = path.join(tmpDir, 'state');
  const s = await startServer({ root, stateDir, options: { tokensFile } });
  fx.beforeUnmount(() => s.close());

  const data = bytes(3 * 1024 * 1024, 8);
  const created = await rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-length': data.length, 'upload-metadata': `filename ${b64('x.bin')},path ${b64('in/here')}` } });
  assert.equal(created.status, 201);
  const r = await rawRequest(created.headers.location!, { method: 'PATCH', headers: patchHeaders(0), body: data });
  assert.equal(r.status, 204, r.text);
  assert.ok((await readFile(path.join(root, 'in', 'here', 'x.bin'))).equals(data));

  const put = await rawRequest(`${s.url}/files/in/put.bin`, { method: 'PUT', headers: AUTH, body: data });
  assert.equal(put.status, 201);
  assert.ok((await readFile(path.join(root, 'in', 'put.bin'))).equals(data));

  assert.deepEqual((await readdir(path.join(root, 'in', 'here'))).sort(), ['x.bin'], 'no hidden temp file left in the target folder');
  assert.deepEqual((await readdir(path.join(root, 'in'))).sort(), ['here', 'put.bin']);
  assert.deepEqual((await readdir(path.join(stateDir, 'uploads'))).filter((n) => !n.startsWith('.')), [], 'nothing left in the state dir');
});
