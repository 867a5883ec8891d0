// `ferry get` against real servers, nginx and Ferry's own, serving the same 512 MiB file:
// 8 ranged segments must give a byte-identical file; a wrong --sha256 must leave nothing at
// the final name; `-o -` streams to stdout.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { sha256File, writeSeededFile } from '../helpers/files.ts';
import { startNginx, type Nginx } from '../helpers/nginx.ts';
import { runFerry, spawnFerry } from '../helpers/spawn-client.ts';
import { startServer, type TestServer } from '../helpers/start-server.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';

const MIB = 1024 * 1024;
const SIZE = 512 * MIB;
let dir: string;
let root: string;
let sha: string;
let nginx: Nginx | undefined;
let ferry: TestServer | undefined;
let removeTmp: () => Promise<void> = async () => {};

before(async () => {
  const tmp = await makeTempDir('ferry-get-servers-');
  removeTmp = tmp.remove;
  dir = tmp.dir;
  root = path.join(dir, 'root');
  await mkdir(root);
  sha = await writeSeededFile(path.join(root, 'big.bin'), SIZE, 21);
  nginx = await startNginx({ root });
  ferry = await startServer({ root });
});
after(async () => {
  await nginx?.stop();
  await ferry?.close();
  await removeTmp();
});

for (const server of ['nginx', 'ferry'] as const) {
  test(`${server}: 8 segments, byte-identical`, { timeout: 120_000 }, async (t) => {
    const base = server === 'nginx' ? nginx!.url : `${ferry!.url}/files`;
    const out = path.join(dir, `${server}.bin`);
    t.after(() => rm(out, { force: true }));
    const r = await runFerry(['get', `${base}/big.bin`, '-o', out, '--segments', '8', '--sha256', sha]);
    assert.equal(r.code, 0, `${r.lines.join('\n')}${JSON.stringify(r.events.filter((e) => e.type !== 'progress'))}`);
    const start = r.events.find((e) => e.type === 'start');
    assert.equal(start?.mode, 'segmented');
    assert.equal(start?.segments, 8);
    assert.ok(typeof start?.validator === 'string', 'the server offered a strong validator for If-Range');
    assert.equal(await sha256File(out), sha, 'byte-identical');
    assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith(`${server}.bin.`)), [], 'no .part or state left');
    if (server === 'nginx') {
      const log = await nginx!.accessLog();
      assert.ok(log.filter((l) => l.status === 206).length >= 8, 'ranged requests');
    }
  });
}

test('wrong --sha256: exit 5, nothing at the final name, no .part', { timeout: 120_000 }, async (t) => {
  const out = path.join(dir, 'wrong.bin');
  t.after(() => Promise.all([rm(out, { force: true }), rm(`${out}.part`, { force: true })]));
  const wrong = createHash('sha256').update('not the file').digest('hex');
  const r = await runFerry(['get', `${nginx!.url}/big.bin`, '-o', out, '-s', '8', '--sha256', wrong]);
  assert.equal(r.code, 5);
  assert.match(String(r.events.find((e) => e.type === 'error')?.message), new RegExp(`sha-256 mismatch: expected ${wrong}.*got ${sha}`));
  for (const f of [out, `${out}.part`, `${out}.part.json`]) await assert.rejects(stat(f), { code: 'ENOENT' }, f);

  // --keep-part keeps the data for inspection (still nothing at the final name).
  const kept = await runFerry(['get', `${nginx!.url}/big.bin`, '-o', out, '-s', '8', '--sha256', wrong, '--keep-part']);
  assert.equal(kept.code, 5);
  await assert.rejects(stat(out), { code: 'ENOENT' });
  assert.equal(await sha256File(`${out}.part`), sha);
});

test('-o - streams the file to stdout', { timeout: 120_000 }, async () => {
  const c = spawnFerry(['get', `${ferry!.url}/files/big.bin`, '-o', '-', '--sha256', sha], { stdout: 'pipe' });
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of c.child.stdout! as AsyncIterable<Buffer>) { hash.update(chunk); bytes += chunk.length; }
  const { code } = await c.exited;
  assert.equal(code, 0, c.lines.join('\n'));
  assert.equal(bytes, SIZE);
  assert.equal(hash.digest('hex'), sha);
});
