/**
 * Plain streaming PUT /files/{path} with the real curl (issue 4 §5): the file appears whole or
 * not at all; 413 before reading when Content-Length is over --max-upload-size and as soon as a
 * chunked body passes it; a client that goes away leaves nothing behind; If-None-Match: *,
 * Content-Digest / Repr-Digest, 201 / 204 per RFC 9110 §9.3.4.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { request } from 'node:http';
import { createHash } from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { CHANNEL_NAMES, type UploadEvent } from '../../src/core/channels.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';
import { startServer } from '../helpers/start-server.ts';
import { sha256File, writeSeededFile } from '../helpers/files.ts';
import { AUTH, WRITE_TOKEN, bytes, rawRequest, startUploadServer } from './uploads-kit.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;

async function curl(args: string[]): Promise<{ status: number; headers: string; body: string }> {
  const { stdout } = await run('curl', ['-sS', '-D', '-', '-H', `Authorization: Bearer ${WRITE_TOKEN}`, ...args], { maxBuffer: 4 * MiB });
  const blocks = stdout.split('\r\n\r\n');
  // The last header block (after any 100 Continue) and the body.
  let i = 0;
  while (i < blocks.length - 1 && /^HTTP\/\S+ 1\d\d/.test(blocks[i]!)) i++;
  const headers = blocks[i] ?? '';
  const status = Number(/^HTTP\/\S+ (\d{3})/.exec(headers)?.[1] ?? 0);
  return { status, headers, body: blocks.slice(i + 1).join('\r\n\r\n') };
}

async function leftovers(stateDir: string): Promise<string[]> {
  return (await readdir(path.join(stateDir, 'uploads')).catch(() => [] as string[])).filter((n) => n.endsWith('.tmp'));
}

function nextPutEvent(kind: UploadEvent['kind']): Promise<void> {
  return new Promise((resolve) => {
    const on = (m: unknown): void => {
      const e = m as UploadEvent;
      if (e.protocol === 'put' && e.kind === kind) { diagnosticsChannel.unsubscribe(CHANNEL_NAMES.upload, on); resolve(); }
    };
    diagnosticsChannel.subscribe(CHANNEL_NAMES.upload, on);
  });
}

test('curl -T: created, replaced, digests, If-None-Match: *', async (t) => {
  const s = await startUploadServer(t);
  const tmp = await makeTempDir('ferry-put-');
  t.after(() => tmp.remove());
  const src = path.join(tmp.dir, 'backup.tar');
  const sha = await writeSeededFile(src, 3 * MiB + 123, 9);

  const created = await curl(['-T', src, `${s.url}/files/backups/backup.tar`]);
  assert.equal(created.status, 201, created.body);
  assert.equal(await sha256File(path.join(s.root, 'backups', 'backup.tar')), sha);
  assert.match(created.headers, new RegExp(`repr-digest: sha-256=:${Buffer.from(sha, 'hex').toString('base64').replace(/[+/]/g, '\\$&')}:`, 'i'));
  assert.deepEqual(JSON.parse(created.body), { path: 'backups/backup.tar', size: 3 * MiB + 123, sha256: sha });

  const replaced = await curl(['-T', src, `${s.url}/files/backups/backup.tar`]);
  assert.equal(replaced.status, 204);

  const refused = await curl(['-T', src, '-H', 'If-None-Match: *', `${s.url}/files/backups/backup.tar`]);
  assert.equal(refused.status, 412);
  const fresh = await curl(['-T', src, '-H', 'If-None-Match: *', `${s.url}/files/backups/other.tar`]);
  assert.equal(fresh.status, 201);
  const mustExist = await curl(['-T', src, '-H', 'If-Match: *', `${s.url}/files/backups/missing.tar`]);
  assert.equal(mustExist.status, 412);

  // RFC 9110 §13.2.2 with the ETag downloads send: lost-update protection.
  const put1 = await rawRequest(`${s.url}/files/doc.txt`, { method: 'PUT', headers: AUTH, body: 'v1' });
  assert.equal(put1.status, 201);
  const head = await fetch(`${s.url}/files/doc.txt`, { method: 'HEAD' });
  const etag = head.headers.get('etag')!;
  assert.equal(put1.headers.etag, etag, 'the 201 carries the validator downloads use');
  assert.equal((await rawRequest(`${s.url}/files/doc.txt`, { method: 'PUT', headers: { ...AUTH, 'if-match': '"stale"' }, body: 'v2' })).status, 412);
  assert.equal((await rawRequest(`${s.url}/files/doc.txt`, { method: 'PUT', headers: { ...AUTH, 'if-none-match': etag }, body: 'v2' })).status, 412);
  assert.equal((await rawRequest(`${s.url}/files/doc.txt`, { method: 'PUT', headers: { ...AUTH, 'if-unmodified-since': 'Thu, 01 Jan 1970 00:00:00 GMT' }, body: 'v2' })).status, 412);
  assert.equal(await readFile(path.join(s.root, 'doc.txt'), 'utf8'), 'v1');
  const put2 = await rawRequest(`${s.url}/files/doc.txt`, { method: 'PUT', headers: { ...AUTH, 'if-match': etag }, body: 'v2' });
  assert.equal(put2.status, 204);
  assert.notEqual(put2.headers.etag, etag);
  assert.equal(await readFile(path.join(s.root, 'doc.txt'), 'utf8'), 'v2');

  const body = Buffer.from('{"hello": "world"}');
  // RFC 9530 Appendix D: sha-256 of {"hello": "world"}.
  const good = await rawRequest(`${s.url}/files/digest.json`, { method: 'PUT', headers: { ...AUTH, 'content-digest': 'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:' }, body });
  assert.equal(good.status, 201);
  const sha512 = createHash('sha512').update(body).digest('base64');
  const good512 = await rawRequest(`${s.url}/files/digest512.json`, { method: 'PUT', headers: { ...AUTH, 'repr-digest': `sha-512=:${sha512}:` }, body });
  assert.equal(good512.status, 201);
  const bad = await rawRequest(`${s.url}/files/bad.json`, { method: 'PUT', headers: { ...AUTH, 'content-digest': `sha-256=:${Buffer.alloc(32).toString('base64')}:` }, body });
  assert.equal(bad.status, 400);
  assert.equal(JSON.parse(bad.text).code, 'FERRY_ERR_UPLOAD_DIGEST_MISMATCH');
  await assert.rejects(stat(path.join(s.root, 'bad.json')), /ENOENT/);

  const empty = await rawRequest(`${s.url}/files/empty.txt`, { method: 'PUT', headers: { ...AUTH, 'content-length': 0 } });
  assert.equal(empty.status, 201);
  assert.equal((await readFile(path.join(s.root, 'empty.txt'))).length, 0);

  await mkdir(path.join(s.root, 'adir'));
  assert.equal((await rawRequest(`${s.url}/files/adir`, { method: 'PUT', headers: AUTH, body: 'x' })).status, 409);
  for (const bad of ['/files/a%2F..%2Fx', '/files/..%5Cx', '/files/.hidden', '/files/', '/files/x%00y']) {
    const r = await rawRequest(`${s.url}${bad}`, { method: 'PUT', headers: AUTH, body: 'x' });
    assert.equal(r.status, 400, bad);
  }
  const gz = await rawRequest(`${s.url}/files/x.gz`, { method: 'PUT', headers: { ...AUTH, 'content-encoding': 'gzip' }, body: 'x' });
  assert.equal(gz.status, 415);
  assert.equal((await rawRequest(`${s.url}/files/noauth.txt`, { method: 'PUT', body: 'x' })).status, 401);
  assert.deepEqual(await leftovers(s.stateDir), []);
});

test('--max-upload-size: 413 by Content-Length before reading, 413 as soon as a chunked body passes it; nothing left', async (t) => {
  const s = await startUploadServer(t, { options: { maxUploadSize: '1M' } });
  const tmp = await makeTempDir('ferry-put-');
  t.after(() => tmp.remove());
  const src = path.join(tmp.dir, 'big.bin');
  await writeFile(src, bytes(2 * MiB, 3));

  const declared = await curl(['-T', src, `${s.url}/files/big.bin`]);
  assert.equal(declared.status, 413);
  assert.match(declared.body, /1048576/, '413 names the limit');

  // `-T -` streams stdin chunked: no Content-Length, the limit trips mid-stream.
  const chunkedRes = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', `Authorization: Bearer ${WRITE_TOKEN}`, '-T', '-', `${s.url}/files/big-chunked.bin`], { stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stdin.on('error', () => { /* the server closed: expected */ });
    child.stdin.end(bytes(2 * MiB, 4));
    child.on('close', (code) => { resolve({ code, out }); });
  });
  assert.equal(chunkedRes.out, '413');

  for (const name of ['big.bin', 'big-chunked.bin']) await assert.rejects(stat(path.join(s.root, name)), /ENOENT/);
  assert.deepEqual(await leftovers(s.stateDir), [], 'no temp file left behind');
  const ok = await curl(['-T', src, '-r', '0-100', `${s.url}/files/small.bin`]); // curl ignores -r for uploads; size still 2 MiB
  assert.equal(ok.status, 413);
});

test('a client that goes away mid-body: nothing published, the temp file removed', async (t) => {
  const s = await startUploadServer(t);
  const tmp = await makeTempDir('ferry-put-');
  t.after(() => tmp.remove());
  const src = path.join(tmp.dir, 'slow.bin');
  await writeFile(src, bytes(8 * MiB, 5));
  const firstBytes = new Promise<void>((resolve) => {
    const on = (): void => { diagnosticsChannel.unsubscribe(CHANNEL_NAMES.uploadBytes, on); resolve(); };
    diagnosticsChannel.subscribe(CHANNEL_NAMES.uploadBytes, on);
  });
  const failed = nextPutEvent('failed');
  const child = spawn('curl', ['-sS', '-o', '/dev/null', '--limit-rate', '256k', '-H', `Authorization: Bearer ${WRITE_TOKEN}`, '-T', src, `${s.url}/files/slow.bin`], { stdio: 'ignore' });
  t.after(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  await firstBytes;
  assert.equal((await leftovers(s.stateDir)).length, 1, 'streaming into a temp file');
  child.kill('SIGKILL');
  await failed;
  assert.deepEqual(await leftovers(s.stateDir), []);
  await assert.rejects(stat(path.join(s.root, 'slow.bin')), /ENOENT/);
  assert.ok(s.logs.some((l) => l.upload === 'put' && l.event === 'failed'));
});

test('Expect: 100-continue with a Content-Length over --max-upload-size: 413 instead of 100, no body sent', async (t) => {
  const s = await startServer({ options: { maxUploadSize: '1k' } });
  t.after(() => s.close());
  const result = await new Promise<{ status: number; continued: boolean }>((resolve, reject) => {
    let continued = false;
    const req = request(`${s.url}/files/too-big.bin`, { method: 'PUT', headers: { expect: '100-continue', 'content-length': '4096' } });
    req.on('continue', () => { continued = true; req.end(Buffer.alloc(4096)); });
    req.on('response', (res) => { res.resume(); resolve({ status: res.statusCode ?? 0, continued }); });
    req.on('error', reject);
    req.flushHeaders();
  });
  assert.deepEqual(result, { status: 413, continued: false });
});
