/**
 * Ferry with `--storage s3` against a real S3-compatible server on loopback (s3rver, see
 * test/helpers/s3-server.ts), checked with curl: whole and ranged GETs, multi-range,
 * conditionals (If-None-Match → 304, If-Range), HEAD, /api/list paging, a zip of a folder
 * checked by `unzip -t`, uploads refused with a clear 503, and start-up errors (exit 2).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.ts';
import { startChildServer, CLI, type ChildServer } from '../helpers/start-server.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';

const run = promisify(execFile);
const TOKEN = 'writer-token-for-s3-test';

let s3: S3TestServer;
let ferry: ChildServer;
let tmp: { dir: string; remove: () => Promise<void> };
const movie = randomBytes(300_000);

before(async () => {
  tmp = await makeTempDir();
  s3 = await startS3Server();
  const client = s3.client();
  const objects: Record<string, string | Buffer> = {
    'media/movie.bin': movie,
    'media/docs/a.txt': 'alpha\n',
    'media/docs/sub/b.txt': 'bravo\n',
    'outside/secret.txt': 'not under the prefix',
  };
  for (let i = 0; i < 5; i++) objects[`media/list/f${i}`] = `file ${i}`;
  for (const [key, body] of Object.entries(objects)) await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }));
  const tokens = path.join(tmp.dir, 'tokens.json');
  await writeFile(tokens, JSON.stringify([{ name: 'w', role: 'write', sha256: createHash('sha256').update(TOKEN).digest('hex') }]));
  ferry = await startChildServer(['--storage', 's3', '--s3-bucket', s3.bucket, '--s3-endpoint', s3.endpoint, '--s3-path-style', '--s3-prefix', 'media', '--tokens-file', tokens], { env: s3.env });
});

after(async () => {
  await ferry?.[Symbol.asyncDispose]();
  await s3?.close();
  await tmp?.remove();
});

interface CurlResult { status: number; headers: Record<string, string>; body: Buffer }

/** One curl request; headers of the last response, body as bytes. */
async function curl(args: string[], url: string): Promise<CurlResult> {
  const out = path.join(tmp.dir, `body-${randomBytes(4).toString('hex')}`);
  const { stdout } = await run('curl', ['-sS', '-D', '-', '-o', out, ...args, url], { encoding: 'utf8' });
  const blocks = stdout.split(/\r\n\r\n/).filter((b) => b.startsWith('HTTP/'));
  const lines = blocks.at(-1)!.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  const body = await readFile(out).catch(() => Buffer.alloc(0));
  return { status: Number(lines[0]!.split(' ')[1]), headers, body };
}

test('GET, Range, multi-range, HEAD and conditionals on an object', async () => {
  const url = `${ferry.url}/files/movie.bin`;
  const whole = await curl([], url);
  assert.equal(whole.status, 200);
  assert.ok(whole.body.equals(movie));
  const etag = whole.headers.etag!;
  assert.match(etag, /^"[^W]/, 'a strong ETag');

  const part = await curl(['-H', 'Range: bytes=1000-1999'], url);
  assert.equal(part.status, 206);
  assert.equal(part.headers['content-range'], `bytes 1000-1999/${movie.length}`);
  assert.ok(part.body.equals(movie.subarray(1000, 2000)));

  const suffix = await curl(['-H', 'Range: bytes=-100'], url);
  assert.equal(suffix.status, 206);
  assert.ok(suffix.body.equals(movie.subarray(movie.length - 100)), 'suffix ranges reach the store as absolute ranges');

  const multi = await curl(['-H', 'Range: bytes=0-9,5000-5009'], url);
  assert.equal(multi.status, 206);
  assert.match(multi.headers['content-type']!, /^multipart\/byteranges; boundary=/);
  assert.ok(multi.body.includes(movie.subarray(0, 10)) && multi.body.includes(movie.subarray(5000, 5010)));

  assert.equal((await curl(['-H', `If-None-Match: ${etag}`], url)).status, 304);
  const ifRange = await curl(['-H', 'Range: bytes=0-99', '-H', `If-Range: ${etag}`], url);
  assert.equal(ifRange.status, 206);
  const stale = await curl(['-H', 'Range: bytes=0-99', '-H', 'If-Range: "stale"'], url);
  assert.equal(stale.status, 200);
  assert.equal(stale.body.length, movie.length);

  const head = await curl(['-I'], url);
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String(movie.length));
  assert.equal(head.headers.etag, etag);

  assert.equal((await curl([], `${ferry.url}/files/nope.bin`)).status, 404);
  assert.equal((await curl([], `${ferry.url}/files/..%2Foutside%2Fsecret.txt`)).status, 400);
});

test('/api/list pages a folder of the bucket; /zip of a folder passes unzip -t', async () => {
  const names: string[] = [];
  let cursor: string | null = null;
  do {
    const r = await curl([], `${ferry.url}/api/list/list?limit=2${cursor === null ? '' : `&cursor=${cursor}`}`);
    assert.equal(r.status, 200);
    const page = JSON.parse(r.body.toString()) as { entries: Array<{ name: string; etag: string | null }>; next: string | null };
    names.push(...page.entries.map((e) => e.name));
    cursor = page.next;
  } while (cursor !== null);
  assert.deepEqual(names, ['f0', 'f1', 'f2', 'f3', 'f4']);
  const root = JSON.parse((await curl([], `${ferry.url}/api/list`)).body.toString()) as { entries: Array<{ name: string; type: string }> };
  assert.deepEqual(root.entries.map((e) => `${e.type}:${e.name}`), ['directory:docs', 'directory:list', 'file:movie.bin']);

  const zip = await curl([], `${ferry.url}/zip/docs`);
  assert.equal(zip.status, 200);
  const file = path.join(tmp.dir, 'docs.zip');
  await writeFile(file, zip.body);
  const { stdout } = await run('unzip', ['-t', file]);
  assert.match(stdout, /No errors detected/);
  const listing = (await run('unzip', ['-Z1', file])).stdout.split('\n').filter(Boolean);
  assert.ok(listing.some((n) => n.endsWith('a.txt')) && listing.some((n) => n.endsWith('sub/b.txt')), listing.join(', '));
});

// Before the uploads went through Storage's write half (issue 9), both answered 503 ("this
// storage backend does not accept uploads"): they wrote to local disk behind Storage's back.
test('uploads with S3 storage land in the bucket: PUT (201, then 204 replacing) and a tus upload', async () => {
  const client = s3.client();
  const object = async (key: string): Promise<string> => (await (await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))).Body!.transformToString());
  const put = await curl(['-X', 'PUT', '-H', `Authorization: Bearer ${TOKEN}`, '--data-binary', 'hello'], `${ferry.url}/files/new.txt`);
  assert.equal(put.status, 201, put.body.toString());
  assert.equal(await object('media/new.txt'), 'hello');
  const again = await curl(['-X', 'PUT', '-H', `Authorization: Bearer ${TOKEN}`, '--data-binary', 'hello again'], `${ferry.url}/files/new.txt`);
  assert.equal(again.status, 204, again.body.toString());
  assert.equal(await object('media/new.txt'), 'hello again');
  const tus = await curl(['-X', 'POST', '-H', `Authorization: Bearer ${TOKEN}`, '-H', 'Tus-Resumable: 1.0.0', '-H', 'Upload-Length: 5', '-H', `Upload-Metadata: filename ${Buffer.from('t.txt').toString('base64')}`], `${ferry.url}/uploads/`);
  assert.equal(tus.status, 201, tus.body.toString());
  const url = new URL(tus.headers.location!, ferry.url).toString();
  const patch = await curl(['-X', 'PATCH', '-H', `Authorization: Bearer ${TOKEN}`, '-H', 'Tus-Resumable: 1.0.0', '-H', 'Upload-Offset: 0', '-H', 'Content-Type: application/offset+octet-stream', '--data-binary', 'world'], url);
  assert.equal(patch.status, 204, patch.body.toString());
  assert.equal(await object('media/t.txt'), 'world');
  const got = await curl(['-H', `Authorization: Bearer ${TOKEN}`], `${ferry.url}/files/t.txt`);
  assert.equal(got.body.toString(), 'world');
});

test('start-up: an unknown bucket, an unknown access key or an unreachable endpoint exits 2 with one line', async () => {
  const cases: Array<{ args: string[]; env: Record<string, string>; expect: RegExp }> = [
    { args: ['--s3-bucket', 'no-such-bucket', '--s3-endpoint', s3.endpoint], env: s3.env, expect: /no-such-bucket.*does not exist/ },
    { args: ['--s3-bucket', s3.bucket, '--s3-endpoint', s3.endpoint], env: { ...s3.env, AWS_ACCESS_KEY_ID: 'WRONG' }, expect: /refused the credentials/ },
    { args: ['--s3-bucket', s3.bucket, '--s3-endpoint', 'http://127.0.0.1:9'], env: s3.env, expect: /not reachable/ },
  ];
  await Promise.all(cases.map(async (c) => {
    const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--root', path.join(tmp.dir, 'unused'), '--state-dir', path.join(tmp.dir, `state-${randomBytes(3).toString('hex')}`), '--storage', 's3', '--s3-path-style', ...c.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FERRY_') && !k.startsWith('AWS_'))), ...c.env },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const [code] = await once(child, 'exit') as [number | null];
    assert.equal(code, 2, stderr);
    const lines = stderr.trim().split('\n');
    assert.equal(lines.length, 1, stderr);
    assert.match(lines[0]!, /^ferry: storage s3: bucket "/);
    assert.match(lines[0]!, c.expect);
    assert.doesNotMatch(stderr, /S3RVER|WRONG/, 'credentials never appear');
  }));
});
