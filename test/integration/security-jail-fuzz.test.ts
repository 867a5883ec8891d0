/**
 * A fuzz test of the path jail over generated paths: dot-segments plain, percent-encoded,
 * double-encoded and as overlong UTF-8; encoded and raw separators and backslashes; NUL;
 * Unicode lookalikes of `.` and `/`; NFC/NFD spellings; leading `/` and `//`; very long segments
 * (300 bytes) and very deep paths (500 segments); hidden names; a symlink to a folder outside
 * the root and one to a file outside; names that exist inside. Each path is sent verbatim
 * (node:http sends the request target as given) to GET /files, GET /zip/{dir},
 * GET /zip?path=, GET /api/list, PUT /files and a tus creation-with-upload whose
 * `filename`/`path` metadata carry the decoded path.
 *
 * The jail holds when: no answer is a 5xx; each status is one the route may give; no body
 * holds a byte of the outside canary or of a hidden file, nor the name of a folder that only
 * exists outside (listings, zip entry names); afterwards nothing outside the root
 * was created or changed (names, sizes, mtimes, inodes) and no hidden name was created inside.
 *
 * How it failed on the code before the jail fixes: no escape and no hidden name in any run, but
 * PUT /files/{…}/{a name of 256+ bytes} answered 500 (ENAMETOOLONG from lstat in
 * src/uploads/publish-file.ts), 7–15 cases per run of 1,500–2,500 paths (seeds 1, 2, 3, 7,
 * 12345). Very deep paths (500 segments) are accepted and create 500 nested folders.
 *
 * FERRY_FUZZ_SEED repeats a run (the seed is always logged); FERRY_FUZZ_CASES sets how many
 * paths (default 1500); FERRY_FUZZ_BUDGET_MS bounds the time (default 15 s: no batch starts
 * after it, and at least 500 paths must have run).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { lstat, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir } from '../helpers/temp-dir.ts';
import { createPrng, diffTrees, fuzzSeed, send, snapshotTree, type HttpResult, type Prng, type SendOptions } from '../helpers/jail-kit.ts';
import { AUTH, TUS, startUploadServer } from './uploads-kit.ts';

const CASES = Number(process.env.FERRY_FUZZ_CASES ?? 1500);
/** Wall-clock bound: no new batch starts after this (a slow or busy machine runs fewer cases). */
const BUDGET_MS = Number(process.env.FERRY_FUZZ_BUDGET_MS ?? 15_000);
/** Fewest cases that must have run within the budget: the test cannot pass by doing nothing. */
const MIN_CASES = Math.min(CASES, 500);
const CONCURRENCY = 8;
/** Cases per batch; the fixture's links are checked (and put back) between batches. */
const BATCH = 50;

/** Statuses each request may answer (never a 5xx). 414/431: a request target over Node's limits. */
const ALLOWED = {
  'GET /files': [200, 400, 404, 414, 431],
  'GET /zip/': [200, 400, 404, 413, 414, 431],
  'GET /zip?path': [200, 400, 404, 413, 414, 431],
  'GET /api/list': [200, 400, 404, 414, 431],
  'PUT /files': [201, 204, 400, 404, 409, 414, 431],
  'tus POST': [201, 400, 404, 409, 414, 431],
} as const;
type Method = keyof typeof ALLOWED;

interface Token { readonly enc: string; readonly dec: Buffer }
interface FuzzCase { readonly index: number; readonly enc: string; readonly dec: Buffer }

const tok = (enc: string, dec: string | Buffer): Token => ({ enc, dec: Buffer.isBuffer(dec) ? dec : Buffer.from(dec, 'utf8') });

/** Names in the fixture (inside and outside), so that generated paths hit real things. */
const NAMES = ['pub', 'ok.txt', 'sub', 'deep.txt', 'f', 'caf\u00e9.txt', 'outlink', 'outfile.txt', 'outside', 'canary.txt', '.secret', '.hidden-dir', 'inner.txt', 'root'];
const DOTS: readonly Token[] = [
  tok('..', '..'), tok('.', '.'), tok('%2e%2e', '..'), tok('%2E.', '..'), tok('.%2E', '..'), tok('%2e', '.'), tok('%2E%2E', '..'),
  tok('%252e%252e', '%2e%2e'), tok('%252E', '%2E'), tok('...', '...'), tok('..%00', Buffer.from('..\0')), tok('%2e%2e%00', Buffer.from('..\0')),
  tok('%c0%ae%c0%ae', Buffer.from([0xc0, 0xae, 0xc0, 0xae])), tok('%c0%2e', Buffer.from([0xc0, 0x2e])), tok('%e0%80%ae%e0%80%ae', Buffer.from([0xe0, 0x80, 0xae, 0xe0, 0x80, 0xae])),
  tok('%C0%AE.', Buffer.from([0xc0, 0xae, 0x2e])), tok('..%20', '.. '), tok('%2e%2e%2f', '../'),
];
const SEPARATORS: readonly Token[] = [
  tok('/', '/'), tok('/', '/'), tok('/', '/'), tok('/', '/'), tok('//', '//'), tok('%2f', '/'), tok('%2F', '/'), tok('%5c', '\\'), tok('%5C', '\\'),
  tok('\\', '\\'), tok('%252f', '%2f'), tok('%c0%af', Buffer.from([0xc0, 0xaf])), tok('/./', '/./'), tok('%00/', Buffer.from('\0/')),
];
/** Characters that look like `.` or `/` but are not, and NFC/NFD spellings. */
const LOOKALIKES = ['\u2024\u2024', '\u2025', '\uFF0E\uFF0E', '\uFE52\uFE52', '\u2215', '\u2044', '\uFF0F', '\u29F8', '\uFF3C', 'cafe\u0301.txt', 'caf\u00e9.txt', '\u0130', '.\u200b.', '\u202e..', '\u3002\u3002'];

/** Percent-encodes `text` (UTF-8) here and there, hex case at random; raw where a URL allows it. */
function encodeText(rng: Prng, text: string): string {
  let out = '';
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    const plain = /^[A-Za-z0-9\-._~!$&'()*+,;=:@]$/.test(ch);
    if (plain && !rng.chance(0.15)) { out += ch; continue; }
    // A Latin-1 character sent as one raw byte now and then (not valid UTF-8 on the wire).
    if (code >= 0xa0 && code <= 0xff && rng.chance(0.2)) { out += ch; continue; }
    for (const b of Buffer.from(ch, 'utf8')) {
      const hex = b.toString(16).padStart(2, '0');
      out += `%${rng.chance(0.5) ? hex.toUpperCase() : hex}`;
    }
  }
  return out;
}

function randomName(rng: Prng): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789-_. %#?&+';
  let s = rng.chance(0.15) ? '.' : '';
  for (let n = 1 + rng.int(12); n > 0; n--) s += alphabet[rng.int(alphabet.length)];
  return s;
}

function genSegment(rng: Prng, index: number): Token {
  const r = rng.next();
  let text: string;
  if (r < 0.35) text = rng.pick(NAMES);
  else if (r < 0.55) return rng.pick(DOTS);
  else if (r < 0.67) text = rng.pick(LOOKALIKES);
  else if (r < 0.82) text = randomName(rng);
  else if (r < 0.9) text = `new-${index}-${rng.int(1000)}.txt`;
  else if (r < 0.93) text = 'x'.repeat(300 - 4) + '.txt';
  else if (r < 0.96) text = '\u00e9'.repeat(150); // 300 bytes of UTF-8
  else if (r < 0.98) return tok(`${encodeText(rng, rng.pick(NAMES))}%00`, Buffer.concat([Buffer.from(rng.pick(NAMES)), Buffer.from([0])]));
  else text = `${rng.pick(NAMES)}\\..\\..`;
  return tok(encodeText(rng, text), text);
}

/** One generated path: leading slashes, 1–6 segments (2 % of them 500), separators, trailing `/`. */
function genCase(rng: Prng, index: number): FuzzCase {
  const parts: Token[] = [rng.pick([tok('', ''), tok('', ''), tok('', ''), tok('/', '/'), tok('//', '//'), tok('%2f', '/')])];
  const depth = rng.chance(0.02) ? 500 : 1 + rng.int(6);
  for (let i = 0; i < depth; i++) {
    if (i > 0) parts.push(rng.pick(SEPARATORS));
    parts.push(depth === 500 && rng.chance(0.9) ? tok(`d${i % 10}`, `d${i % 10}`) : genSegment(rng, index));
  }
  if (rng.chance(0.08)) parts.push(tok('/', '/'));
  return { index, enc: parts.map((p) => p.enc).join(''), dec: Buffer.concat(parts.map((p) => p.dec)) };
}

/** Hand-written cases first, while the fixture's links are certainly in place. */
function corpus(): FuzzCase[] {
  const rows: Array<[string, string | Buffer]> = [
    ['../outside/canary.txt', '../outside/canary.txt'],
    ['outlink/canary.txt', 'outlink/canary.txt'],
    ['outlink/sub/canary.txt', 'outlink/sub/canary.txt'],
    ['outlink', 'outlink'],
    ['outfile.txt', 'outfile.txt'],
    ['outlink/new-corpus.txt', 'outlink/new-corpus.txt'],
    ['outlink/sub/new-corpus.txt', 'outlink/sub/new-corpus.txt'],
    ['outlink/brand-new/new-corpus.txt', 'outlink/brand-new/new-corpus.txt'],
    ['pub/../../outside/canary.txt', 'pub/../../outside/canary.txt'],
    ['%2e%2e/outside/canary.txt', '../outside/canary.txt'],
    ['pub%2f..%2f..%2foutside%2fcanary.txt', 'pub/../../outside/canary.txt'],
    ['..%5coutside%5ccanary.txt', '..\\outside\\canary.txt'],
    ['%252e%252e/outside/canary.txt', '%2e%2e/outside/canary.txt'],
    ['%c0%ae%c0%ae/outside/canary.txt', Buffer.concat([Buffer.from([0xc0, 0xae, 0xc0, 0xae]), Buffer.from('/outside/canary.txt')])],
    ['.secret', '.secret'],
    ['%2esecret', '.secret'],
    ['.hidden-dir/inner.txt', '.hidden-dir/inner.txt'],
    ['.hidden-dir/new-corpus.txt', '.hidden-dir/new-corpus.txt'],
    ['pub/.new-hidden', 'pub/.new-hidden'],
    ['', ''],
    ['/', '/'],
    ['//etc/passwd', '//etc/passwd'],
    ['pub/ok.txt%00.jpg', Buffer.from('pub/ok.txt\0.jpg')],
    ['\u2024\u2024/outside/canary.txt'.replace(/\u2024/g, '%E2%80%A4'), '\u2024\u2024/outside/canary.txt'],
    ['%EF%BC%8E%EF%BC%8E/outside/canary.txt', '\uFF0E\uFF0E/outside/canary.txt'],
    ['..%E2%88%95outside%E2%88%95canary.txt', '..\u2215outside\u2215canary.txt'],
  ];
  return rows.map(([enc, dec], i) => ({ index: -1 - i, enc, dec: Buffer.isBuffer(dec) ? dec : Buffer.from(dec, 'utf8') }));
}

/** Every byte percent-encoded except unreserved ones: a query value carrying exactly `bytes`. */
function queryValue(bytes: Buffer): string {
  let out = '';
  for (const b of bytes) out += /[A-Za-z0-9\-._~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0').toUpperCase()}`;
  return out;
}

/** The tus metadata naming `dec`: the part after the last `/` as filename, the rest as path. */
function tusMetadata(dec: Buffer): string {
  const cut = dec.lastIndexOf(0x2f);
  const folder = cut < 0 ? Buffer.alloc(0) : dec.subarray(0, cut);
  const name = cut < 0 ? dec : dec.subarray(cut + 1);
  const pairs: string[] = [];
  if (name.length > 0) pairs.push(`filename ${name.toString('base64')}`);
  if (folder.length > 0) pairs.push(`path ${folder.toString('base64')}`);
  return pairs.length > 0 ? pairs.join(',') : 'note';
}

interface Finding { readonly method: Method; readonly caseIndex: number; readonly target: string; readonly status: number; readonly why: string }

test('path jail fuzz: /files, /zip, PUT and tus metadata over generated paths', async (t) => {
  const seed = fuzzSeed();
  t.diagnostic(`seed ${seed} (FERRY_FUZZ_SEED=${seed} repeats this run), ${CASES} generated paths`);
  const tag = seed.toString(16);
  const CANARY = `OUTSIDE-CANARY-${tag}`;
  const SECRET = `HIDDEN-SECRET-${tag}`;
  /** A folder name that exists only outside: seen in a listing or zip, the jail leaked names. */
  const OUTSIDE_ONLY = `outside-only-${tag}`;

  const tmp = await makeTempDir('ferry-fuzz-');
  t.after(() => tmp.remove());
  const root = path.join(tmp.dir, 'root');
  const outside = path.join(tmp.dir, 'outside');
  await mkdir(path.join(root, 'pub', 'sub'), { recursive: true });
  await mkdir(path.join(root, '.hidden-dir'));
  await mkdir(path.join(outside, 'sub'), { recursive: true });
  await writeFile(path.join(root, 'pub', 'ok.txt'), 'public ok');
  await writeFile(path.join(root, 'pub', 'sub', 'deep.txt'), 'public deep');
  await writeFile(path.join(root, 'f'), 'public f');
  await writeFile(path.join(root, 'caf\u00e9.txt'), 'public nfc');
  await writeFile(path.join(root, '.secret'), SECRET);
  await writeFile(path.join(root, '.hidden-dir', 'inner.txt'), SECRET);
  await writeFile(path.join(outside, 'canary.txt'), CANARY);
  await writeFile(path.join(outside, 'sub', 'canary.txt'), CANARY);
  await mkdir(path.join(outside, OUTSIDE_ONLY));
  await writeFile(path.join(outside, OUTSIDE_ONLY, 'canary.txt'), CANARY);
  const links = [['outlink', '../outside'], ['outfile.txt', '../outside/canary.txt']] as const;
  for (const [name, target] of links) await symlink(target, path.join(root, name));
  const outsideBefore = await snapshotTree(outside);
  const rootBefore = await snapshotTree(root);

  const s = await startUploadServer(t, { root });
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  t.after(() => agent.destroy());

  const findings: Finding[] = [];
  const statuses = new Map<string, number>();
  let requests = 0;
  let linkRepairs = 0;
  let reconnects = 0;

  function check(method: Method, c: FuzzCase, target: string, r: HttpResult): void {
    requests++;
    const key = `${method} ${r.status}`;
    statuses.set(key, (statuses.get(key) ?? 0) + 1);
    const add = (why: string): void => { findings.push({ method, caseIndex: c.index, target, status: r.status, why }); };
    if (r.body.includes(CANARY)) add('body holds the outside canary');
    if (r.body.includes(SECRET)) add('body holds a hidden file');
    if (r.body.includes(OUTSIDE_ONLY)) add('body names a folder outside the root');
    if (r.status === 0) { add(`no answer: ${r.error}`); return; }
    if (r.status >= 500) add(`5xx: ${r.body.toString('utf8').slice(0, 200)}`);
    else if (!(ALLOWED[method] as readonly number[]).includes(r.status)) add('status not allowed for this route');
  }

  /**
   * Sends on a kept-alive connection; when no answer came, once more on a fresh one: a server
   * that answered a malformed request (Fastify's clientError handler) closes the connection
   * without `Connection: close`, and the next request queued on it finds it gone. A request
   * that gets no answer on a fresh connection either is a finding.
   */
  async function request(o: Omit<SendOptions, 'agent'>): Promise<HttpResult> {
    const r = await send(s.url, { ...o, agent });
    if (r.status !== 0 || r.body.length > 0) return r;
    reconnects++;
    return send(s.url, { ...o, agent: false });
  }

  async function runCase(c: FuzzCase): Promise<void> {
    const body = Buffer.from(`FUZZ-PUT-${tag}-${c.index}`);
    const files = `/files/${c.enc}`;
    check('GET /files', c, files, await request({ method: 'GET', target: files }));
    const zipDir = `/zip/${c.enc}`;
    check('GET /zip/', c, zipDir, await request({ method: 'GET', target: zipDir }));
    const zipSel = `/zip?path=${queryValue(c.dec)}`;
    check('GET /zip?path', c, zipSel, await request({ method: 'GET', target: zipSel }));
    const list = `/api/list/${c.enc}`;
    check('GET /api/list', c, list, await request({ method: 'GET', target: list }));
    check('PUT /files', c, files, await request({ method: 'PUT', target: files, headers: { ...AUTH, 'content-length': body.length }, body }));
    const meta = tusMetadata(c.dec);
    check('tus POST', c, `/uploads/ ${meta}`, await request({
      method: 'POST', target: '/uploads/', body,
      headers: { ...TUS, ...AUTH, 'upload-length': body.length, 'upload-metadata': meta, 'content-type': 'application/offset+octet-stream', 'content-length': body.length },
    }));
  }

  /** A PUT may replace a link of the fixture with a file (inside the root: allowed); put it back. */
  async function repairLinks(): Promise<void> {
    for (const [name, target] of links) {
      const p = path.join(root, name);
      const st = await lstat(p).catch(() => undefined);
      if (st?.isSymbolicLink() === true) continue;
      linkRepairs++;
      await rm(p, { recursive: true, force: true });
      await symlink(target, p);
    }
  }

  // Not a jail property, but worth seeing: listeners that pile up on kept-alive sockets.
  let listenerWarnings = 0;
  const onWarning = (w: Error): void => { if (w.name === 'MaxListenersExceededWarning') listenerWarnings++; };
  process.on('warning', onWarning);
  t.after(() => { process.off('warning', onWarning); });

  const rng = createPrng(seed);
  const cases = [...corpus(), ...Array.from({ length: CASES }, (_, i) => genCase(rng, i))];
  const started = performance.now();
  let ran = 0;
  for (let b = 0; b < cases.length && performance.now() - started < BUDGET_MS; b += BATCH) {
    const batch = cases.slice(b, b + BATCH);
    let next = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < batch.length) await runCase(batch[next++]!);
    }));
    await repairLinks();
    ran += batch.length;
  }
  const elapsedMs = Math.round(performance.now() - started);

  const outsideDiffs = diffTrees(outsideBefore, await snapshotTree(outside));
  const rootAfter = await snapshotTree(root);
  const newHidden = [...rootAfter.keys()].filter((k) => !rootBefore.has(k) && k.split('/').some((seg) => seg.startsWith('.')));
  const hiddenChanged = diffTrees(
    new Map([...rootBefore].filter(([k]) => k.startsWith('.'))),
    new Map([...rootAfter].filter(([k]) => k.startsWith('.') && rootBefore.has(k))),
  );
  assert.equal(await readFile(path.join(root, '.secret'), 'utf8'), SECRET);

  t.diagnostic(`${ran} of ${cases.length} paths, ${requests} requests in ${elapsedMs} ms; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
  t.diagnostic(`fixture links replaced by a PUT/upload (inside the root, put back): ${linkRepairs}; requests resent on a fresh connection: ${reconnects}; MaxListenersExceededWarning: ${listenerWarnings}`);
  const byKind = new Map<string, number>();
  for (const f of findings) byKind.set(`${f.method} ${f.status} ${f.why.split(':')[0]}`, (byKind.get(`${f.method} ${f.status} ${f.why.split(':')[0]}`) ?? 0) + 1);
  if (findings.length > 0) {
    t.diagnostic(`${findings.length} findings: ${JSON.stringify(Object.fromEntries(byKind))}`);
    const shown = new Set<string>();
    for (const f of findings) {
      const key = `${f.method} ${f.status} ${f.why.slice(0, 60)}`;
      if (shown.has(key) && shown.size < 40) continue;
      if (shown.size >= 40) break;
      shown.add(key);
      t.diagnostic(`  case ${f.caseIndex}: ${f.method} ${JSON.stringify(f.target.slice(0, 160))} → ${f.status} ${f.why}`);
    }
  }

  assert.ok(ran >= MIN_CASES, `only ${ran} paths ran within ${BUDGET_MS} ms`);
  assert.deepEqual(outsideDiffs, [], `files outside the root were created or changed (seed ${seed})`);
  assert.deepEqual(newHidden.slice(0, 20), [], `${newHidden.length} hidden names created inside the root under --dotfiles deny (seed ${seed})`);
  assert.deepEqual(hiddenChanged, [], `hidden files inside the root were changed (seed ${seed})`);
  assert.equal(findings.length, 0, `${findings.length} findings (seed ${seed}): ${JSON.stringify(Object.fromEntries(byKind))}`);
});
