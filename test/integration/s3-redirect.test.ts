/**
 * `--s3-redirect`: an authorised GET of a file on the S3 backend answers 302 to a presigned
 * URL of the object on the store's own endpoint (s3rver on 127.0.0.1), which curl -L follows:
 * the bytes, ranges included, come from the bucket; a signed link's URL expires with the
 * link. Never before the access checks (401 without credentials), never for HEAD, If-Range,
 * digests, a link with a bound rate, a missing file, a folder or /zip;
 * `--storage local --s3-redirect` exits 2 with one line. On the old code there was no such
 * option: Ferry refused to start with it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.ts';
import { startChildServer, CLI, type ChildServer } from '../helpers/start-server.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';

const run = promisify(execFile);
const TOKEN = 'reader-token-for-redirect-test';
const TTL_SECONDS = 60;

let s3: S3TestServer;
let ferry: ChildServer;
let tmp: { dir: string; remove: () => Promise<void> };
const video = randomBytes(1_000_000);

before(async () => {
  tmp = await makeTempDir();
  s3 = await startS3Server();
  const client = s3.client();
  for (const [key, body] of Object.entries({ 'video.bin': video, 'docs/a.txt': Buffer.from('alpha\n') })) {
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }));
  }
  const tokens = path.join(tmp.dir, 'tokens.json');
  await writeFile(tokens, JSON.stringify([{ name: 'r', role: 'read', sha256: createHash('sha256').update(TOKEN).digest('hex') }]));
  ferry = await startChildServer([
    '--storage', 's3', '--s3-bucket', s3.bucket, '--s3-endpoint', s3.endpoint, '--s3-path-style',
    '--s3-redirect', '--s3-redirect-ttl', `${TTL_SECONDS}s`, '--tokens-file', tokens, '--anonymous', 'none',
  ], { env: s3.env });
});

after(async () => {
  await ferry?.[Symbol.asyncDispose]();
  await s3?.close();
  await tmp?.remove();
});

const auth = { authorization: `Bearer ${TOKEN}` };

/** curl -L: returns the final status, the number of redirects, the URL it ended at and the body. */
async function curlFollow(url: string, extra: string[] = []): Promise<{ status: number; redirects: number; effective: string; body: Buffer }> {
  const out = path.join(tmp.dir, `body-${randomBytes(4).toString('hex')}`);
  const { stdout } = await run('curl', ['-sS', '-L', '-o', out, '-w', '%{http_code} %{num_redirects} %{url_effective}', '-H', `Authorization: Bearer ${TOKEN}`, ...extra, url]);
  const [status, redirects, effective] = stdout.split(' ');
  return { status: Number(status), redirects: Number(redirects), effective: effective ?? '', body: await readFile(out) };
}

test('an authorised GET: 302 to a presigned URL on the bucket; curl -L gets the bytes (and ranges) from the bucket', async () => {
  const whole = await curlFollow(`${ferry.url}/files/video.bin`);
  assert.equal(whole.status, 200);
  assert.equal(whole.redirects, 1);
  assert.ok(whole.effective.startsWith(`${s3.endpoint}/${s3.bucket}/video.bin?`), whole.effective);
  assert.ok(whole.body.equals(video), 'byte-identical from the bucket');

  const part = await curlFollow(`${ferry.url}/files/video.bin`, ['-r', '1000-1999']);
  assert.equal(part.status, 206, 'the range is the bucket\'s to answer');
  assert.equal(part.redirects, 1);
  assert.ok(part.body.equals(video.subarray(1000, 2000)));

  const first = await fetch(`${ferry.url}/files/video.bin?download`, { headers: auth, redirect: 'manual' });
  assert.equal(first.status, 302);
  assert.equal(first.headers.get('cache-control'), 'private, no-store');
  const location = new URL(first.headers.get('location') ?? '');
  assert.equal(location.origin, s3.endpoint);
  assert.equal(location.searchParams.get('X-Amz-Expires'), String(TTL_SECONDS));
  assert.ok(location.searchParams.get('X-Amz-Signature'));
  assert.match(location.searchParams.get('response-content-disposition') ?? '', /attachment; filename="video.bin"/);
  await first.arrayBuffer();
  await ferry.waitForLine((l) => l.includes('"event":"transfer"') && l.includes('"status":302'));
  assert.ok(!ferry.lines.some((l) => l.includes('X-Amz-Signature')), 'the presigned URL is never logged');
});

test('a signed link: the presigned URL expires no later than the link; a link with a bound rate is served by Ferry (paced)', async () => {
  const link = async (body: Record<string, unknown>): Promise<string> => {
    const r = await fetch(`${ferry.url}/api/links`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(r.status, 200);
    return ((await r.json()) as { url: string }).url;
  };
  const short = await fetch(await link({ path: 'video.bin', expiresIn: 30 }), { redirect: 'manual' });
  assert.equal(short.status, 302);
  const expires = Number(new URL(short.headers.get('location') ?? '').searchParams.get('X-Amz-Expires'));
  assert.ok(expires >= 1 && expires <= 30, `X-Amz-Expires ${expires} within the link's 30 s, not the ${TTL_SECONDS} s TTL`);
  await short.arrayBuffer();

  const paced = await fetch(await link({ path: 'docs/a.txt', expiresIn: 30, maxRate: '1M' }), { redirect: 'manual' });
  assert.equal(paced.status, 200, 'the bucket would not keep the bound rate');
  assert.equal(await paced.text(), 'alpha\n');
});

test('no redirect before the access checks, nor for HEAD, If-Range, digests, a missing file, a folder or /zip', async () => {
  const anonymous = await fetch(`${ferry.url}/files/video.bin`, { redirect: 'manual' });
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.headers.get('location'), null);
  await anonymous.arrayBuffer();

  const head = await fetch(`${ferry.url}/files/video.bin`, { method: 'HEAD', headers: auth, redirect: 'manual' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(video.length));

  const etag = head.headers.get('etag') ?? '';
  const ifRange = await fetch(`${ferry.url}/files/video.bin`, { headers: { ...auth, range: 'bytes=0-9', 'if-range': etag }, redirect: 'manual' });
  assert.equal(ifRange.status, 206, 'Ferry evaluates If-Range itself');
  assert.ok(Buffer.from(await ifRange.arrayBuffer()).equals(video.subarray(0, 10)));

  const digest = await fetch(`${ferry.url}/files/docs/a.txt`, { headers: { ...auth, 'want-repr-digest': 'sha-256=1' }, redirect: 'manual' });
  assert.equal(digest.status, 200);
  assert.match(digest.headers.get('repr-digest') ?? '', /^sha-256=:/);
  await digest.arrayBuffer();

  const missing = await fetch(`${ferry.url}/files/nope.bin`, { headers: auth, redirect: 'manual' });
  assert.equal(missing.status, 404);
  assert.match(missing.headers.get('content-type') ?? '', /problem\+json/);
  await missing.arrayBuffer();

  const folder = await fetch(`${ferry.url}/files/docs`, { headers: auth, redirect: 'manual' });
  assert.notEqual(folder.status, 302);
  assert.equal(folder.headers.get('location'), null);
  await folder.arrayBuffer();

  const zip = await fetch(`${ferry.url}/zip/docs`, { headers: auth, redirect: 'manual' });
  assert.equal(zip.status, 200);
  assert.equal(zip.headers.get('content-type'), 'application/zip');
  await zip.arrayBuffer();
});

test('--s3-redirect with --storage local: exit 2 with one line', async () => {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--root', path.join(tmp.dir, 'root'), '--state-dir', path.join(tmp.dir, 'state-local'), '--s3-redirect'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FERRY_') && !k.startsWith('AWS_'))),
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const [code] = await once(child, 'exit') as [number | null];
  assert.equal(code, 2, stderr);
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0]!, /--s3-redirect needs --storage s3/);
});
