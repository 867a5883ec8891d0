/**
 * Path caps (security hardening: "quadratic work on deep folders" and "a 300-byte name answers
 * 500 ENAMETOOLONG after the whole body"): every route refuses a path deeper than 128 levels,
 * longer than 4096 bytes or with a name longer than 255 bytes with 400
 * FERRY_ERR_PATH_TOO_LONG, and a PUT is refused before its body is read.
 * On the old code the 300-byte PUT answered 500 after curl had sent the whole 64 MiB, and the
 * 200-level PUT created 200 nested folders (201).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import diagnosticsChannel from 'node:diagnostics_channel';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { CHANNEL_NAMES } from '../../src/core/channels.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';
import { writeSeededFile } from '../helpers/files.ts';
import { WRITE_TOKEN, startUploadServer } from './uploads-kit.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;

/** curl's status line, body and `%{size_upload}` (bytes of the request body it sent). */
async function curlPut(file: string, url: string): Promise<{ status: number; body: string; uploaded: number }> {
  const { stdout } = await run('curl', ['-sS', '-o', '-', '-w', '\n%{http_code} %{size_upload}', '-H', `Authorization: Bearer ${WRITE_TOKEN}`, '--data-binary', `@${file}`, '-X', 'PUT', url], { maxBuffer: 4 * MiB });
  const nl = stdout.lastIndexOf('\n');
  const [status, uploaded] = stdout.slice(nl + 1).split(' ').map(Number);
  return { status: status!, body: stdout.slice(0, nl), uploaded: uploaded! };
}

test('PUT with a 300-byte name: 400 FERRY_ERR_PATH_TOO_LONG before the body is read', async (t) => {
  const s = await startUploadServer(t);
  const tmp = await makeTempDir('ferry-plim-');
  t.after(() => tmp.remove());
  const src = path.join(tmp.dir, 'big.bin');
  await writeSeededFile(src, 64 * MiB, 3);
  let received = 0;
  const onBytes = (m: unknown): void => { received += (m as { bytes: number }).bytes; };
  diagnosticsChannel.subscribe(CHANNEL_NAMES.uploadBytes, onBytes);
  t.after(() => diagnosticsChannel.unsubscribe(CHANNEL_NAMES.uploadBytes, onBytes));

  const name = `${'n'.repeat(296)}.bin`;
  const r = await curlPut(src, `${s.url}/files/${name}`);
  assert.equal(r.status, 400, r.body);
  const problem = JSON.parse(r.body) as { code: string; detail: string; limit: number };
  assert.equal(problem.code, 'FERRY_ERR_PATH_TOO_LONG');
  assert.match(problem.detail, /255 bytes/);
  assert.equal(problem.limit, 255);
  assert.equal(received, 0, 'the server read no body byte');
  assert.ok(r.uploaded < 64 * MiB, `curl sent ${r.uploaded} of ${64 * MiB} bytes`);
  assert.deepEqual(await readdir(s.root).catch(() => []), []);
});

test('a path 129 levels deep is refused by every route; 128 levels still work', async (t) => {
  const s = await startUploadServer(t);
  const deep = (n: number): string => Array.from({ length: n }, (_, i) => `d${i % 10}`).join('/');
  const auth = { authorization: `Bearer ${WRITE_TOKEN}` };
  for (const url of [`/files/${deep(129)}`, `/files/${deep(200)}/x`, `/api/list/${deep(129)}`, `/zip/${deep(129)}`, `/zip?path=${deep(129)}`]) {
    for (const method of url.startsWith('/files/') ? ['GET', 'HEAD', 'PUT'] : ['GET']) {
      const res = await fetch(`${s.url}${url}`, { method, headers: auth, ...(method === 'PUT' ? { body: 'hello' } : {}) });
      assert.equal(res.status, 400, `${method} ${url.slice(0, 30)}`);
      if (method !== 'HEAD') assert.equal(((await res.json()) as { code: string }).code, 'FERRY_ERR_PATH_TOO_LONG');
    }
  }
  assert.deepEqual(await readdir(s.root).catch(() => []), [], 'nothing created');
  const ok = await fetch(`${s.url}/files/${deep(127)}/f.txt`, { method: 'PUT', headers: auth, body: 'hello' });
  assert.equal(ok.status, 201);
  assert.equal(await (await fetch(`${s.url}/files/${deep(127)}/f.txt`)).text(), 'hello');
  await mkdir(path.join(s.root, ...deep(128).split('/')), { recursive: true });
  assert.equal((await fetch(`${s.url}/api/list/${deep(128)}`)).status, 200);
});
