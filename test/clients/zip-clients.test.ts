/**
 * Real clients on /zip (issue 3): a download cut at a random point and resumed with `curl -C -`
 * (which sends `Range: bytes=N-` and no If-Range) or `wget -c` is byte-identical to the full one;
 * aria2c's segmented download (several ranged connections at once) too; `curl | bsdtar -xOf -`
 * extracts from the pipe as it arrives. For both layouts: crc-first (CRCs known) and descriptor
 * (a selection too big to checksum before the first byte, resumed mid-member).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startZipServer, waitFor, type ZipTestServer } from '../unit/zip/zip-server-kit.ts';
import { run, validateArchive, type ExpectedEntry } from '../unit/zip/zip-test-kit.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

let root = '';
let tmp: { dir: string; remove: () => Promise<void> };
const expected: ExpectedEntry[] = [];
let crcFirst: ZipTestServer;
let descriptor: ZipTestServer;

before(async () => {
  tmp = await makeTempDir('ferry-zip-clients-');
  root = path.join(tmp.dir, 'files');
  const put = async (rel: string, content: Buffer): Promise<void> => {
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await writeFile(path.join(root, rel), content);
    expected.push({ name: rel, size: content.length, sha256: sha(content) });
  };
  // Walk order (sorted names): keep `expected` in that order. The first member is far larger
  // than loopback socket buffers, so a cut lands inside it (random head, sparse tail).
  await put('set/a-large.bin', Buffer.concat([randomBytes(1024 * 1024), Buffer.alloc(40 * 1024 * 1024), randomBytes(11)]));
  await put('set/b-文档.txt', Buffer.from('文档内容\n'.repeat(20_000)));
  await put('set/c-🎉.bin', randomBytes(900_000));
  await put('set/d-empty.txt', Buffer.alloc(0));
  crcFirst = await startZipServer({ root });
  descriptor = await startZipServer({ root, options: { zipCrcPrefetch: '1k' } });
});
after(async () => { await crcFirst?.close(); await descriptor?.close(); await tmp?.remove(); });

const servers = (): Array<[string, ZipTestServer]> => [['crc-first', crcFirst], ['descriptor', descriptor]];

async function curl(args: string[]): Promise<void> {
  const r = await run('curl', ['--silent', '--show-error', '--fail', ...args]);
  assert.equal(r.code, 0, `curl ${args.join(' ')}: ${r.stderr}`);
}

for (const [layout, getServer] of [['crc-first', () => crcFirst], ['descriptor', () => descriptor]] as const) {
  test(`${layout}: curl full download, then a cut one resumed with curl -C - and wget -c, and aria2c -x4: identical; valid everywhere`, async () => {
    const s = getServer();
    const url = `${s.url}/zip/set`;

    // First contact is a download that gets cut: a slow curl killed inside the first member,
    // then resumed with `curl -C -` (Range: bytes=N-, no If-Range).
    const part = path.join(tmp.dir, `${layout}-cut.zip`);
    const slow = spawn('curl', ['--silent', '--limit-rate', '2M', '-o', part, url], { stdio: 'ignore' });
    const exited = once(slow, 'exit');
    await waitFor(async () => { try { return (await stat(part)).size > 1024 * 1024; } catch { return false; } }, 20_000, 'curl to write 1 MiB');
    slow.kill('SIGKILL');
    await exited;
    const cutAt = (await stat(part)).size;
    if (layout === 'descriptor') {
      // The CRC of the member being streamed was not finished: its progress is kept for the resume.
      await waitFor(async () => (await s.server.meta.list('crc32-progress')).length > 0, 2000, 'the partial CRC to be saved');
    }
    await curl(['-C', '-', '-o', part, url]);

    const full = path.join(tmp.dir, `${layout}-full.zip`);
    await curl(['-o', full, url]);
    const fullBytes = await readFile(full);
    assert.ok(cutAt > 0 && cutAt < fullBytes.length);
    assert.ok((await readFile(part)).equals(fullBytes), `curl -C - from ${cutAt} is byte-identical to the uninterrupted download`);
    const etag = (await fetch(url, { method: 'HEAD' })).headers.get('etag')!;
    assert.match(etag, layout === 'crc-first' ? /^"z1-c-/ : /^"z1-d-/);
    await validateArchive(full, expected);

    // Cuts at chosen points (random, and inside the last member and the central directory).
    for (const at of [Math.floor(fullBytes.length * 0.6), fullBytes.length - 2000, fullBytes.length - 50]) {
      const f = path.join(tmp.dir, `${layout}-wget-${at}.zip`);
      await writeFile(f, fullBytes.subarray(0, at));
      const w = await run('wget', ['-q', '-c', '-O', f, url]);
      assert.equal(w.code, 0, w.stderr);
      assert.ok((await readFile(f)).equals(fullBytes), `wget -c from ${at}`);
      await writeFile(f, fullBytes.subarray(0, at));
      await curl(['-C', '-', '-o', f, url]);
      assert.ok((await readFile(f)).equals(fullBytes), `curl -C - from ${at}`);
    }

    const aria = await run('aria2c', ['-q', '-x4', '-s4', '-k1M', '--allow-overwrite=true', '--auto-file-renaming=false', '-d', tmp.dir, '-o', `${layout}-aria.zip`, url]);
    assert.equal(aria.code, 0, aria.stderr + aria.stdout);
    assert.ok((await readFile(path.join(tmp.dir, `${layout}-aria.zip`))).equals(fullBytes), 'aria2c segmented download identical');
  });
}

test('curl | bsdtar -xOf -: extraction straight from the network pipe (both layouts)', async () => {
  for (const [layout, s] of servers()) {
    const got = await new Promise<{ code: number | null; pieces: string[] }>((resolve, reject) => {
      const c = spawn('curl', ['--silent', '--fail', `${s.url}/zip/set`], { stdio: ['ignore', 'pipe', 'ignore'] });
      const t = spawn('bsdtar', ['-xOf', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
      c.stdout.pipe(t.stdin);
      const sizes = expected.map((e) => e.size);
      const pieces: string[] = [];
      let i = 0;
      let left = sizes[0]!;
      let h = createHash('sha256');
      const settle = (): void => { while (i < sizes.length && left === 0) { pieces.push(h.digest('hex')); h = createHash('sha256'); i++; left = sizes[i] ?? 0; } };
      settle();
      t.stdout.on('data', (d: Buffer) => {
        let o = 0;
        while (o < d.length && i < sizes.length) { const k = Math.min(left, d.length - o); h.update(d.subarray(o, o + k)); o += k; left -= k; settle(); }
      });
      t.on('error', reject);
      t.on('close', (code) => { resolve({ code, pieces }); });
    });
    assert.equal(got.code, 0, layout);
    assert.deepEqual(got.pieces, expected.map((e) => e.sha256), `${layout}: every member's bytes from the pipe`);
  }
});
