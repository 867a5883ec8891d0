/**
 * Real download clients against a real server on an ephemeral port (issue 2): curl -C -
 * and wget -c resume an interrupted download, aria2c -x8 -s8 fetches eight ranges in
 * parallel — each byte-identical (sha-256) to a 256 MiB source.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, stat, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startServer, type TestServer } from '../helpers/start-server.ts';
import { writeSeededFile, sha256File } from '../helpers/files.ts';

const SIZE = 256 * 1024 * 1024;
let s: TestServer;
let expected: string;
let out: string;

function has(cmd: string): boolean {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
}

async function run(cmd: string, args: string[]): Promise<number | null> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${cmd} exited ${code}: ${stderr.slice(-2000)}`);
  return code;
}

/** Starts a rate-limited download and kills it once `file` holds at least `minBytes`. */
async function interrupted(cmd: string, args: string[], file: string, minBytes: number): Promise<number> {
  const child: ChildProcess = spawn(cmd, args, { stdio: 'ignore' });
  const exited = once(child, 'exit');
  const deadline = Date.now() + 60_000;
  for (;;) {
    const size = await stat(file).then((st) => st.size, () => 0);
    if (size >= minBytes) break;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${cmd} did not get far enough (${size} bytes)`);
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  await exited;
  const size = (await stat(file)).size;
  assert.ok(size > 0 && size < SIZE, `interrupted part: ${size} bytes`);
  return size;
}

before(async () => {
  s = await startServer();
  await mkdir(s.root, { recursive: true });
  expected = await writeSeededFile(path.join(s.root, 'big.bin'), SIZE, 42);
  out = await mkdtemp(path.join(os.tmpdir(), 'ferry-clients-'));
});
after(async () => {
  await s?.close();
  if (out !== undefined) await rm(out, { recursive: true, force: true });
});

test('curl -C - resumes an interrupted download byte-identically', { timeout: 180_000, skip: !has('curl') && 'curl not installed' }, async () => {
  const file = path.join(out, 'curl.bin');
  const partial = await interrupted('curl', ['-sS', '--limit-rate', '40M', '-o', file, `${s.url}/files/big.bin`], file, 8 * 1024 * 1024);
  await run('curl', ['-sS', '--fail', '-C', '-', '-o', file, `${s.url}/files/big.bin`]);
  assert.equal(await sha256File(file), expected);
  const resumed = s.logs.filter((l) => l.event === 'transfer' && l.status === 206);
  assert.ok(resumed.some((l) => Number(l.bytes) === SIZE - partial), 'the second request was a 206 for the rest only');
});

test('wget -c resumes an interrupted download byte-identically', { timeout: 180_000, skip: !has('wget') && 'wget not installed' }, async () => {
  const dir = path.join(out, 'wget');
  await mkdir(dir);
  const file = path.join(dir, 'big.bin');
  await interrupted('wget', ['-q', '--limit-rate=40m', '-P', dir, `${s.url}/files/big.bin`], file, 8 * 1024 * 1024);
  await run('wget', ['-q', '-c', '-P', dir, `${s.url}/files/big.bin`]);
  assert.equal(await sha256File(file), expected);
});

test('aria2c -x8 -s8 downloads eight ranges in parallel byte-identically', { timeout: 180_000, skip: !has('aria2c') && 'aria2c not installed' }, async () => {
  const before = s.logs.length;
  await run('aria2c', ['-q', '-x8', '-s8', '--min-split-size=1M', '--file-allocation=none', '--allow-overwrite=true',
    '--auto-file-renaming=false', '-d', out, '-o', 'aria.bin', `${s.url}/files/big.bin`]);
  assert.equal(await sha256File(path.join(out, 'aria.bin')), expected);
  const ranged = s.logs.slice(before).filter((l) => l.event === 'transfer' && l.status === 206);
  assert.ok(ranged.length >= 2, `aria2c used ranges (${ranged.length} ranged requests)`);
});
