/**
 * Signed links on a real server (SPEC §2.3): made by POST /api/links, used without
 * credentials by fetch and by curl resuming with `-C -` (a Range request on the signed URL),
 * refused with 403 once expired or changed, valid across key rotation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startServer, type TestServer } from '../helpers/start-server.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';
import { writeSeededFile, sha256File, sha256 } from '../helpers/files.ts';
import { hashToken, signedLinkPath } from '../../src/auth/index.ts';

const run = promisify(execFile);
const NEW_KEY = 'links-new-key';
const OLD_KEY = 'links-old-key';
const READ = { authorization: 'Bearer links-read' };
const ADMIN = { authorization: 'Bearer links-admin' };

async function setup(t: { after: (fn: () => Promise<void>) => void }): Promise<{ s: TestServer; tmp: string; digest: string }> {
  const tmp = await makeTempDir();
  t.after(() => tmp.remove());
  const tokensFile = path.join(tmp.dir, 'tokens.json');
  await writeFile(tokensFile, JSON.stringify([
    { name: 'reader', role: 'read', sha256: hashToken('links-read') },
    { name: 'boss', role: 'admin', sha256: hashToken('links-admin') },
  ]));
  const s = await startServer({ options: { anonymous: 'none', tokensFile, linkKeys: `${NEW_KEY},${OLD_KEY}` } });
  t.after(() => s.close());
  await mkdir(path.join(s.root, 'docs'), { recursive: true });
  const digest = await writeSeededFile(path.join(s.root, 'docs', 'report 2026.bin'), 3 * 1024 * 1024 + 17);
  return { s, tmp: tmp.dir, digest };
}

async function makeLink(s: TestServer, body: Record<string, unknown>, headers: Record<string, string> = READ): Promise<Response> {
  return fetch(`${s.url}/api/links`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

async function code(res: Response): Promise<string | undefined> {
  return ((await res.json()) as { code?: string }).code;
}

test('a reader makes a link; it works without credentials for GET, HEAD and ranges', async (t) => {
  const { s, digest } = await setup(t);
  assert.equal((await fetch(`${s.url}/files/docs/report%202026.bin`)).status, 401, 'the file is not public');

  const res = await makeLink(s, { path: 'docs/report 2026.bin', expiresIn: '24h' });
  assert.equal(res.status, 200);
  const { url, expiresAt } = (await res.json()) as { url: string; expiresAt: string };
  assert.match(url, new RegExp(`^${s.url}/files/docs/report%202026\\.bin\\?expires=\\d+&sig=[\\w-]{43}$`));
  const lifetimeSec = (Date.parse(expiresAt) - Date.now()) / 1000;
  assert.ok(lifetimeSec > 86_300 && lifetimeSec <= 86_400, `expires in ${lifetimeSec} s`);

  const get = await fetch(url);
  assert.equal(get.status, 200);
  assert.equal(sha256(Buffer.from(await get.arrayBuffer())), digest);
  const head = await fetch(url, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(3 * 1024 * 1024 + 17));
  const range = await fetch(url, { headers: { range: 'bytes=100-199' } });
  assert.equal(range.status, 206);
  assert.equal(range.headers.get('content-range'), `bytes 100-199/${3 * 1024 * 1024 + 17}`);
  assert.equal((await range.arrayBuffer()).byteLength, 100);

  // A link opens that one resource for reading, nothing else.
  assert.equal((await fetch(url, { method: 'PUT', body: 'x' })).status, 403);
  assert.equal((await fetch(url.replace('/files/', '/api/list/').replace('report%202026.bin', ''))).status, 403);
});

test('curl -C - resumes a signed link with a Range request', async (t) => {
  const { s, tmp, digest } = await setup(t);
  const { url } = (await (await makeLink(s, { path: 'docs/report 2026.bin', expiresIn: 600 })).json()) as { url: string };
  const out = path.join(tmp, 'partial.bin');
  // The first 1 MiB + 5 bytes are already here, as after an interrupted download.
  const whole = Buffer.from(await (await fetch(url)).arrayBuffer());
  await writeFile(out, whole.subarray(0, 1024 * 1024 + 5));
  const { stdout } = await run('curl', ['-sS', '--fail', '-C', '-', '-o', out, '-w', '%{http_code} %{size_download}', url], { timeout: 30_000 });
  assert.equal(stdout, `206 ${whole.length - (1024 * 1024 + 5)}`);
  assert.equal(await sha256File(out), digest);
});

test('expired, tampered and unknown-key links are refused with 403', async (t) => {
  const { s } = await setup(t);
  const now = Math.floor(Date.now() / 1000);
  const sign = (p: string, expiresUnix: number, key: string, rate?: number): string => `${s.url}${signedLinkPath({ method: 'GET', path: p, expiresUnix, maxRateBytesPerSec: rate }, Buffer.from(key))}`;
  const good = sign('/files/docs/report%202026.bin', now + 600, NEW_KEY);
  assert.equal((await fetch(good)).status, 200);
  const rotated = sign('/files/docs/report%202026.bin', now + 600, OLD_KEY);
  assert.equal((await fetch(rotated, { method: 'HEAD' })).status, 200, 'a link signed with the previous key still works');

  const refused: Array<[string, string]> = [
    ['expired', sign('/files/docs/report%202026.bin', now - 5, NEW_KEY)],
    ['tampered path', good.replace('report%202026.bin', 'report%202027.bin')],
    ['tampered expiry', good.replace(/expires=(\d+)/, (_m, e: string) => `expires=${Number(e) + 86_400}`)],
    ['retired key', sign('/files/docs/report%202026.bin', now + 600, 'a-retired-key')],
    ['added rate removed', sign('/files/docs/report%202026.bin', now + 600, NEW_KEY, 1000).replace('&rate=1000', '')],
    ['truncated signature', good.slice(0, -2)],
  ];
  for (const [what, u] of refused) {
    const res = await fetch(u, { headers: { range: 'bytes=0-9' } });
    assert.equal(res.status, 403, what);
    assert.equal(await code(res), 'FERRY_ERR_LINK_INVALID', what);
  }
});

test('links API: validation, reader vs admin paths, a bound rate', async (t) => {
  const { s } = await setup(t);
  assert.equal((await makeLink(s, { path: 'docs/report 2026.bin', expiresIn: 60 }, {})).status, 401);
  const bad: Array<[Record<string, unknown>, number]> = [
    [{ path: 'docs/report 2026.bin' }, 400],
    [{ path: 'docs/report 2026.bin', expiresIn: 0 }, 400],
    [{ path: 'docs/report 2026.bin', expiresIn: '400d' }, 400],
    [{ path: 'docs/report 2026.bin', expiresIn: 60, maxRate: 'fast' }, 400],
    [{ path: '../etc/passwd', expiresIn: 60 }, 400],
    [{ path: 'docs', expiresIn: 60 }, 404],
    [{ path: 'docs/missing.bin', expiresIn: 60 }, 404],
    [{ paths: ['docs'], expiresIn: 60 }, 400],
  ];
  for (const [body, status] of bad) assert.equal((await makeLink(s, body)).status, status, JSON.stringify(body));
  // An admin may sign a path that does not exist yet (e.g. for a file still being uploaded).
  const future = await makeLink(s, { path: 'docs/later.bin', expiresIn: 60 }, ADMIN);
  assert.equal(future.status, 200);
  // A folder as a zip link; a selection as a zip link.
  const zipRes = await makeLink(s, { path: 'docs', zip: true, expiresIn: 60 });
  assert.equal(zipRes.status, 200);
  assert.match(((await zipRes.json()) as { url: string }).url, /\/zip\/docs\?expires=\d+&sig=/);
  const sel = await makeLink(s, { paths: ['docs/report 2026.bin'], name: 'pack.zip', zip: true, expiresIn: 60 });
  assert.match(((await sel.json()) as { url: string }).url, /\/zip\?path=docs%2Freport%202026\.bin&name=pack\.zip&expires=\d+&sig=/);

  // maxRate is bound into the signature and paces the download: 512 KiB at 256 KiB/s with
  // the default burst (one second of the rate) takes about one second.
  const rated = (await (await makeLink(s, { path: 'docs/report 2026.bin', expiresIn: 60, maxRate: '256k' })).json()) as { url: string; maxRate: number };
  assert.equal(rated.maxRate, 262_144);
  assert.match(rated.url, /&rate=262144&sig=/);
  const t0 = performance.now();
  const part = await fetch(rated.url, { headers: { range: 'bytes=0-524287' } });
  assert.equal(part.status, 206);
  assert.equal((await part.arrayBuffer()).byteLength, 524_288);
  const seconds = (performance.now() - t0) / 1000;
  assert.ok(seconds > 0.85 && seconds < 1.6, `took ${seconds} s`);
  assert.equal((await fetch(rated.url.replace('rate=262144', 'rate=26214400'))).status, 403, 'the rate cannot be raised');
});

test('a zip link opens /zip without credentials', async (t) => {
  const { s } = await setup(t);
  const { url } = (await (await makeLink(s, { path: 'docs', zip: true, expiresIn: 60 })).json()) as { url: string };
  const res = await fetch(url);
  assert.equal(res.status, 200);
  const zip = Buffer.from(await res.arrayBuffer());
  assert.equal(zip.readUInt32LE(0), 0x04034b50, 'a ZIP local file header');
  const ranged = await fetch(url, { headers: { range: 'bytes=0-3' } });
  assert.equal(ranged.status, 206);
  assert.equal((await fetch(url.replace('/zip/docs', '/zip/other'))).status, 403);
});
