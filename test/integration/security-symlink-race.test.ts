/**
 * The symlink race against the path jail (security finding "High — a symlink race escapes the
 * jail for reads and writes"). A python3 child swaps `root/swap` (a real folder) and
 * `root/swaplink` (a symlink to `../outside`, a sibling of the root) with
 * renameat2(RENAME_EXCHANGE) in a tight loop while the test hammers the paths under
 * `swap/`; every phase runs a bounded time and must read or write zero bytes outside the root.
 *
 * Regression test. How it failed on the old code (LocalStorage resolved a path with realpath()
 * and open()ed the string later; uploads resolved the target folder, then rename()/link()ed into
 * the path string), in one run of 3 s per phase on 2 cores: 550 of 2,586 GET /files/swap/f
 * returned the outside file's bytes; 35 of 286 listings of /api/list/swap showed outside names;
 * 68 of 2,315 zips contained outside data; 1,934 PUTs made 46 changes in outside/ (new
 * w-N.txt files, outside/victim.txt replaced); 1,457 tus uploads made 77. Every phase failed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { lstat, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startServer } from '../helpers/start-server.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';
import { diffTrees, findPython, fuzzSeed, runFor, send, snapshotTree, startSwapper, type HttpResult, type Swapper } from '../helpers/jail-kit.ts';
import { AUTH, TUS, b64, startUploadServer } from './uploads-kit.ts';

/** How long each phase races at least (the swapper runs as long as the phase). */
const PHASE_MS = Number(process.env.FERRY_RACE_PHASE_MS ?? 3000);
/**
 * Fewest requests a phase must send: it cannot pass by doing (almost) nothing. A phase that has
 * not sent them after PHASE_MS goes on (a busy machine), up to 2 × PHASE_MS.
 */
const MIN_REQUESTS = { get: 1000, zip: 300, put: 300, tus: 200 } as const;
const FILE_BYTES = 4096;

/** `text` repeated to exactly `size` bytes. */
function padded(text: string, size: number): Buffer {
  return Buffer.from(text.repeat(Math.ceil(size / text.length)).slice(0, size));
}

function countStatus(hist: Map<string, number>, r: HttpResult): void {
  const key = r.error !== undefined ? `${r.status}+${r.error}` : String(r.status);
  hist.set(key, (hist.get(key) ?? 0) + 1);
}

function show(hist: Map<string, number>): string {
  return JSON.stringify(Object.fromEntries([...hist].sort()));
}

test('symlink race (renameat2 RENAME_EXCHANGE): no byte outside the root is read or written', async (t) => {
  const py = findPython();
  if ('reason' in py) {
    // Never a silent pass in CI: there the race must run.
    if (process.env.CI === 'true') assert.fail(`the symlink race needs python3: ${py.reason}`);
    t.skip(`the symlink race needs python3 (renameat2 via ctypes): ${py.reason}`);
    return;
  }
  const python = py.python;
  const seed = fuzzSeed();
  t.diagnostic(`seed ${seed} (FERRY_FUZZ_SEED=${seed} to repeat the same file contents); ${PHASE_MS} ms per phase`);
  const tag = seed.toString(16);
  const CANARY = `OUTSIDE-CANARY-${tag}-`;
  const MARKER = `outside-marker-${tag}.txt`;
  const VICTIM = Buffer.from(`VICTIM-${tag}: must never change`);

  const tmp = await makeTempDir('ferry-race-');
  t.after(() => tmp.remove());
  const root = path.join(tmp.dir, 'root');
  const outside = path.join(tmp.dir, 'outside');
  await mkdir(path.join(root, 'swap'), { recursive: true });
  await mkdir(outside);
  // Same size inside and out: a size check alone cannot tell them apart (as an attacker would set it up).
  await writeFile(path.join(root, 'swap', 'f'), padded(`INSIDE-${tag}-`, FILE_BYTES));
  await writeFile(path.join(outside, 'f'), padded(CANARY, FILE_BYTES));
  await writeFile(path.join(outside, MARKER), padded(CANARY, FILE_BYTES));
  await writeFile(path.join(outside, 'victim.txt'), VICTIM);
  await symlink('../outside', path.join(root, 'swaplink'));
  const outsideBefore = await snapshotTree(outside);

  // Every request resolves and opens afresh (openFileReuse 0), so every one of them races;
  // a second server on the same root keeps the default shared-handle window.
  const s = await startUploadServer(t, { root, options: { openFileReuse: '0' } });
  const shared = await startServer({ root });
  t.after(() => shared.close());
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  t.after(() => agent.destroy());

  const leaks = (body: Buffer): boolean => body.includes(CANARY) || body.includes(MARKER);

  /** Runs `work` with `workers` workers for PHASE_MS while the swapper runs. */
  async function race(workers: number, minCalls: number, work: (worker: number, i: number) => Promise<void>): Promise<{ requests: number; swaps: number; outsideDiffs: string[] }> {
    let swapper: Swapper | undefined;
    const before = await snapshotTree(outside);
    try {
      swapper = await startSwapper(python, root, 'swap', 'swaplink', 2 * PHASE_MS + 10_000);
      const requests = await runFor(PHASE_MS, workers, work, { minCalls, maxMs: 2 * PHASE_MS });
      const { swaps } = await swapper.stop();
      swapper = undefined;
      assert.ok((await lstat(path.join(root, 'swap'))).isDirectory(), 'the swapper left swap as it found it');
      assert.ok(swaps >= 1000, `the swapper exchanged the names only ${swaps} times`);
      // What this phase changed outside the root (names, sizes, mtimes, inodes).
      const outsideDiffs = diffTrees(before, await snapshotTree(outside));
      return { requests, swaps, outsideDiffs };
    } finally {
      await swapper?.stop().catch(() => {});
    }
  }


  await t.test('GET /files/swap/f and GET /api/list/swap', async (st) => {
    const files = new Map<string, number>();
    const sharedFiles = new Map<string, number>();
    const lists = new Map<string, number>();
    let gets = 0;
    let escapes = 0;
    let listEscapes = 0;
    let listRequests = 0;
    // Worker 7 lists, the other seven GET: ask for a margin over the GETs wanted.
    const { swaps, outsideDiffs } = await race(8, Math.ceil(MIN_REQUESTS.get * 8 / 6), async (w) => {
      if (w === 7) {
        listRequests++;
        const r = await send(s.url, { method: 'GET', target: '/api/list/swap', agent });
        countStatus(lists, r);
        if (leaks(r.body) || (r.status === 200 && r.body.includes('"victim.txt"'))) listEscapes++;
        return;
      }
      gets++;
      const onShared = w === 6;
      const r = await send(onShared ? shared.url : s.url, { method: 'GET', target: '/files/swap/f', agent });
      countStatus(onShared ? sharedFiles : files, r);
      if (leaks(r.body)) escapes++;
    });
    st.diagnostic(`${gets} GET /files/swap/f (statuses ${show(files)}; shared-handle server ${show(sharedFiles)}): ${escapes} returned the outside file's bytes`);
    st.diagnostic(`${listRequests} GET /api/list/swap (statuses ${show(lists)}): ${listEscapes} listed outside names; ${swaps} swaps`);
    assert.ok(gets >= MIN_REQUESTS.get, `only ${gets} GETs within ${2 * PHASE_MS} ms`);
    assert.ok((lists.get('200') ?? 0) > 0 && (lists.get('404') ?? 0) > 0, `the race was not exercised: listings saw ${show(lists)}`);
    assert.equal(escapes, 0, `${escapes} of ${gets} GETs returned bytes from outside the root (seed ${seed})`);
    assert.equal(listEscapes, 0, `${listEscapes} of ${listRequests} listings showed names from outside the root (seed ${seed})`);
    assert.deepEqual(outsideDiffs, []);
  });

  await t.test('GET /zip/swap and /zip?path=swap', async (st) => {
    const hist = new Map<string, number>();
    let zips = 0;
    let escapes = 0;
    const targets = ['/zip/swap', '/zip?path=swap', '/zip?path=swap/f'];
    const { swaps, outsideDiffs } = await race(6, MIN_REQUESTS.zip, async (w) => {
      zips++;
      const r = await send(s.url, { method: 'GET', target: targets[w % targets.length]!, agent });
      countStatus(hist, r);
      if (leaks(r.body)) escapes++;
    });
    st.diagnostic(`${zips} zips (statuses ${show(hist)}): ${escapes} contained bytes or names from outside; ${swaps} swaps`);
    assert.ok(zips >= MIN_REQUESTS.zip, `only ${zips} zips within ${2 * PHASE_MS} ms`);
    assert.equal(escapes, 0, `${escapes} of ${zips} zips contained data from outside the root (seed ${seed})`);
    assert.deepEqual(outsideDiffs, []);
  });

  await t.test('PUT /files/swap/w-N.txt and PUT /files/swap/victim.txt', async (st) => {
    const hist = new Map<string, number>();
    const stored = new Map<string, Buffer>();
    let puts = 0;
    const { swaps, outsideDiffs } = await race(8, MIN_REQUESTS.put, async (w, i) => {
      puts++;
      // One request in eight tries to replace outside/victim.txt through the link.
      const name = i % 8 === 7 ? 'victim.txt' : `w-${w}-${i}.txt`;
      const body = Buffer.from(`PUT-${tag}-${w}-${i}\n`);
      const r = await send(s.url, { method: 'PUT', target: `/files/swap/${name}`, headers: { ...AUTH, 'content-length': body.length }, body, agent });
      countStatus(hist, r);
      if (r.status === 201 || r.status === 204) { if (name !== 'victim.txt') stored.set(name, body); }
    });
    const diffs = outsideDiffs;
    // Every PUT that was acknowledged must have landed inside the root.
    let missingInside = 0;
    for (const [name, body] of stored) {
      const got = await readFile(path.join(root, 'swap', name)).catch(() => undefined);
      if (got === undefined || !got.equals(body)) missingInside++;
    }
    st.diagnostic(`${puts} PUTs (statuses ${show(hist)}): ${diffs.length} changes outside the root, ${missingInside} acknowledged files not inside; ${swaps} swaps`);
    assert.ok(puts >= MIN_REQUESTS.put, `only ${puts} PUTs within ${2 * PHASE_MS} ms`);
    assert.equal(diffs.length, 0, `${diffs.length} changes outside the root (seed ${seed}), e.g. ${diffs.slice(0, 5).join('; ')}`);
    assert.equal(missingInside, 0, `${missingInside} acknowledged PUTs are not inside root/swap`);
  });

  await t.test('tus: POST /uploads/ (path "swap") then PATCH', async (st) => {
    const created = new Map<string, number>();
    const patched = new Map<string, number>();
    const stored = new Map<string, Buffer>();
    let uploads = 0;
    const { swaps, outsideDiffs } = await race(8, MIN_REQUESTS.tus, async (w, i) => {
      uploads++;
      const name = i % 8 === 7 ? 'victim.txt' : `t-${w}-${i}.txt`;
      const body = Buffer.from(`TUS-${tag}-${w}-${i}\n`);
      const c = await send(s.url, {
        method: 'POST', target: '/uploads/', agent,
        headers: { ...TUS, ...AUTH, 'upload-length': body.length, 'upload-metadata': `filename ${b64(name)},path ${b64('swap')}` },
      });
      countStatus(created, c);
      const location = c.headers.location;
      if (c.status !== 201 || location === undefined) return;
      const p = await send(s.url, {
        method: 'PATCH', target: new URL(location, s.url).pathname, agent, body,
        headers: { ...TUS, ...AUTH, 'content-type': 'application/offset+octet-stream', 'upload-offset': 0, 'content-length': body.length },
      });
      countStatus(patched, p);
      if (p.status === 204 && name !== 'victim.txt') stored.set(name, body);
    });
    const diffs = outsideDiffs;
    let missingInside = 0;
    for (const [name, body] of stored) {
      const got = await readFile(path.join(root, 'swap', name)).catch(() => undefined);
      if (got === undefined || !got.equals(body)) missingInside++;
    }
    st.diagnostic(`${uploads} tus uploads (POST ${show(created)}, PATCH ${show(patched)}): ${diffs.length} changes outside the root, ${missingInside} finished uploads not inside; ${swaps} swaps`);
    assert.ok(uploads >= MIN_REQUESTS.tus, `only ${uploads} uploads within ${2 * PHASE_MS} ms`);
    assert.equal(diffs.length, 0, `${diffs.length} changes outside the root (seed ${seed}), e.g. ${diffs.slice(0, 5).join('; ')}`);
    assert.equal(missingInside, 0, `${missingInside} finished uploads are not inside root/swap`);
  });

  // Whatever the phases did, the outside folder is as it began, victim.txt's bytes included.
  const changed = diffTrees(outsideBefore, await snapshotTree(outside));
  assert.equal(changed.length, 0, `outside/ has ${changed.length} changes since the start, e.g. ${changed.slice(0, 3).join('; ')}`);
  assert.ok((await readFile(path.join(outside, 'victim.txt'))).equals(VICTIM), 'outside/victim.txt was overwritten');
});
