/**
 * Publishing uploads safely (docs/security.md):
 * - kill -9 during a cross-filesystem publish leaves a hidden `.ferry-upload-*.tmp` copy in the
 *   target folder; the next start removes it (it is noted in a journal before it is created).
 *   On the old code 6 of 6 such runs left the orphan for good.
 * - A PUT never replaces a symbolic link (one out of the root that the jail hides, or one
 *   inside): on the old code it answered 204 and replaced the link.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { watch } from 'node:fs';
import { lstat, mkdir, readFile, readdir, readlink, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startChildServer, type ChildServer } from '../helpers/start-server.ts';
import { AUTH, rawRequest, startUploadServer, writeTokensFile, WRITE_TOKEN } from './uploads-kit.ts';
import { tmpfsFixture } from '../helpers/tmpfs.ts';

/** Resolves with the first stdout JSON line of `s` (already seen or still to come) that `match` accepts. */
function waitForLog(s: ChildServer, match: (rec: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  const parse = (line: string): Record<string, unknown> | undefined => {
    try { return JSON.parse(line) as Record<string, unknown>; } catch { return undefined; }
  };
  for (const line of s.lines) {
    const rec = parse(line);
    if (rec !== undefined && match(rec)) return Promise.resolve(rec);
  }
  return new Promise((resolve, reject) => {
    let buffered = '';
    const onData = (d: Buffer): void => {
      buffered += d.toString('utf8');
      const parts = buffered.split('\n');
      buffered = parts.pop()!;
      for (const line of parts) {
        const rec = parse(line);
        if (rec !== undefined && match(rec)) { s.child.stdout!.off('data', onData); resolve(rec); return; }
      }
    };
    s.child.stdout!.on('data', onData);
    void s.exited.then((code) => { reject(new Error(`server exited (${code}) before the expected log line`)); });
  });
}

test('kill -9 during a cross-filesystem publish: the next start removes the hidden temp copy', { timeout: 60_000 }, async (t) => {
  const fx = await tmpfsFixture(t, { prefix: 'ferry-orphan-', name: 'root', size: '600m' });
  if (fx === undefined) return;
  const { dir: tmpDir, mnt: root } = fx;
  const stateDir = path.join(tmpDir, 'state');
  const servers: ChildServer[] = [];
  fx.beforeUnmount(async () => {
    for (const s of servers) {
      s.kill('SIGCONT');
      s.kill('SIGKILL');
      await s.exited;
    }
  });
  await mkdir(path.join(root, 'in'));
  const tokensFile = await writeTokensFile(tmpDir);
  const body = path.join(tmpDir, 'body.bin');
  // 256 MiB: the copy onto the tmpfs takes long enough to be stopped while it runs.
  execFileSync('dd', ['if=/dev/zero', `of=${body}`, 'bs=1M', 'count=256', 'status=none']);

  const first = await startChildServer(['--tokens-file', tokensFile], { root, stateDir });
  servers.push(first);
  // The moment the hidden copy appears in the target folder, freeze the server, then kill it.
  const appeared = new Promise<string>((resolve) => {
    const w = watch(path.join(root, 'in'), (_event, name) => {
      if (typeof name === 'string' && name.startsWith('.ferry-upload-')) {
        first.kill('SIGSTOP');
        w.close();
        resolve(name);
      }
    });
  });
  const curl = spawn('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', `Authorization: Bearer ${WRITE_TOKEN}`, '-T', body, `${first.url}/files/in/big.bin`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let curlOut = '';
  curl.stdout.on('data', (d: Buffer) => { curlOut += d.toString(); });
  curl.stderr.on('data', (d: Buffer) => { curlOut += d.toString(); });
  const curlExit = once(curl, 'exit');
  // The PUT must still be running when the copy appears; if it ends first, say how it ended.
  const tempName = await Promise.race([appeared, curlExit.then(() => { throw new Error(`the PUT ended before the temp copy appeared: ${curlOut}`); })]);
  first.kill('SIGKILL');
  await first.exited;
  curl.kill();
  await curlExit;
  assert.ok((await readdir(path.join(root, 'in'))).includes(tempName), 'the kill left the temp copy behind (the case under test)');
  assert.ok(!(await readdir(path.join(root, 'in'))).includes('big.bin'), 'and nothing was published');
  // A sweep removes only copies idle for an hour (src/uploads/decide-sweep.ts): let that hour pass.
  const hourAgo = new Date(Date.now() - 2 * 3600_000);
  await utimes(path.join(root, 'in', tempName), hourAgo, hourAgo);

  const second = await startChildServer(['--tokens-file', tokensFile], { root, stateDir });
  servers.push(second);
  const swept = await waitForLog(second, (r) => r.event === 'sweep' && typeof r.publishTemps === 'number' && r.publishTemps > 0);
  assert.equal(swept.publishTemps, 1);
  assert.deepEqual(await readdir(path.join(root, 'in')), [], 'the orphaned temp copy is gone');
});

test('PUT never replaces a symbolic link, whether the jail hides it or not', async (t) => {
  const s = await startUploadServer(t);
  const outside = path.join(path.dirname(s.root), 'outside');
  await mkdir(outside, { recursive: true });
  await mkdir(s.root, { recursive: true });
  await writeFile(path.join(outside, 'victim.txt'), 'outside, untouched');
  await writeFile(path.join(s.root, 'real.txt'), 'inside');
  await symlink(path.join(outside, 'victim.txt'), path.join(s.root, 'out-link'));
  await symlink(path.join(s.root, 'real.txt'), path.join(s.root, 'in-link'));

  for (const name of ['out-link', 'in-link']) {
    const r = await rawRequest(`${s.url}/files/${name}`, { method: 'PUT', headers: AUTH, body: Buffer.from('replacement') });
    assert.ok(r.status === 409 || r.status === 404, `PUT over ${name}: ${r.status} ${r.text}`);
    assert.equal(r.headers['content-type'], 'application/problem+json; charset=utf-8');
    assert.ok((await lstat(path.join(s.root, name))).isSymbolicLink(), `${name} is still a link`);
  }
  assert.equal(await readlink(path.join(s.root, 'out-link')), path.join(outside, 'victim.txt'));
  assert.equal(await readFile(path.join(outside, 'victim.txt'), 'utf8'), 'outside, untouched');
  assert.equal(await readFile(path.join(s.root, 'real.txt'), 'utf8'), 'inside');
});
