/**
 * Measured rates with real clients (issue 5): a per-transfer limit with curl, a per-client
 * limit against aria2c's 8 parallel ranged connections, a global limit shared by 4 clients
 * (4 source addresses, curl --interface), burst and rate-after. Each measurement takes about
 * 10 s, so the four run concurrently, each against its own server.
 * Rates use binary units, as the options do: 1M = 1 MiB/s.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { open, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import http from 'node:http';
import { startServer, type TestServer } from '../helpers/start-server.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;

async function sparse(file: string, sizeBytes: number): Promise<void> {
  const fh = await open(file, 'w');
  await fh.truncate(sizeBytes);
  await fh.close();
}

async function serverWith(t: { after: (fn: () => Promise<void>) => void }, options: Record<string, unknown>, sizeBytes: number): Promise<TestServer> {
  const s = await startServer({ options });
  t.after(() => s.close());
  await mkdir(s.root, { recursive: true });
  await sparse(path.join(s.root, 'f.bin'), sizeBytes);
  return s;
}

function within(actual: number, expected: number, tolerance: number, what: string): void {
  assert.ok(Math.abs(actual / expected - 1) <= tolerance, `${what}: ${(actual / MiB).toFixed(3)} MiB/s, expected ${(expected / MiB).toFixed(3)} MiB/s ± ${tolerance * 100} %`);
}

describe('measured rates', { concurrency: true }, () => {
  test('--limit-rate 1M: one curl download runs at 0.9–1.1 MiB/s over 10 s', async (t) => {
    // The default burst (one second of the rate) goes out at once; the rest is paced and
    // measured. A full-second burst also absorbs event-loop stalls on a busy machine.
    const burst = MiB;
    const size = 10 * MiB + burst;
    const s = await serverWith(t, { limitRate: '1M' }, size);
    const { stdout } = await run('curl', ['-sS', '--fail', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', `${s.url}/files/f.bin`], { timeout: 30_000 });
    const [bytes, seconds] = stdout.split(' ').map(Number) as [number, number];
    assert.equal(bytes, size);
    assert.ok(seconds > 9 && seconds < 11.5, `took ${seconds} s`);
    t.diagnostic(`per-transfer: ${((bytes - burst) / seconds / MiB).toFixed(3)} MiB/s over ${seconds} s`);
    within((bytes - burst) / seconds, MiB, 0.1, 'per-transfer rate');
  });

  test('--limit-rate-client 2M holds within 10 % while aria2c runs 8 ranged connections', async (t) => {
    const burst = 2 * MiB;
    const size = 20 * MiB + burst;
    const s = await serverWith(t, { limitRateClient: '2M' }, size);
    const tmp = await makeTempDir();
    t.after(() => tmp.remove());
    const t0 = performance.now();
    await run('aria2c', [
      '-x8', '-s8', '-k1M', '--file-allocation=none', '--allow-overwrite=true', '--auto-file-renaming=false',
      '--summary-interval=0', '--console-log-level=warn', '-d', tmp.dir, '-o', 'f.bin', `${s.url}/files/f.bin`,
    ], { timeout: 60_000 });
    const seconds = (performance.now() - t0) / 1000;
    assert.equal((await stat(path.join(tmp.dir, 'f.bin'))).size, size);
    // aria2c's first connection asks for the whole file, the other seven for ranges.
    const transfers = s.logs.filter((l) => l.event === 'transfer');
    const ranged = transfers.filter((l) => typeof l.ranges === 'number' && l.ranges > 0);
    assert.ok(transfers.length >= 8 && ranged.length >= 7, `aria2c used ${transfers.length} requests, ${ranged.length} ranged`);
    t.diagnostic(`per-client over ${transfers.length} connections: ${((size - burst) / seconds / MiB).toFixed(3)} MiB/s over ${seconds.toFixed(2)} s`);
    within((size - burst) / seconds, 2 * MiB, 0.1, 'aggregate client rate');
  });

  test('--limit-rate-global 4M is shared about fairly by 4 clients', async (t) => {
    // A small burst, so that whoever starts first does not get a visibly larger share.
    const burst = 512 * 1024;
    const s = await serverWith(t, { limitRateGlobal: '4M', limitBurst: '512k' }, 200 * MiB);
    const url = `${s.url}/files/f.bin`;
    // Four clients from four loopback addresses: four client keys for the limiter.
    const results = await Promise.all([2, 3, 4, 5].map(async (n) => {
      const r = await run('curl', ['-sS', '--interface', `127.0.0.${n}`, '--max-time', '10', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', url], { timeout: 30_000 })
        .catch((err: { code?: number; stdout?: string }) => {
          // 28 = the --max-time elapsed, which is how this measurement ends.
          if (err.code !== 28) throw err as Error;
          return { stdout: err.stdout ?? '' };
        });
      const [bytes, seconds] = r.stdout.split(' ').map(Number) as [number, number];
      return { bytes, seconds };
    }));
    const seconds = Math.max(...results.map((r) => r.seconds));
    const total = (results.reduce((a, r) => a + r.bytes, 0) - burst) / seconds;
    const shares = results.map((r) => r.bytes / seconds);
    t.diagnostic(`global: ${shares.map((x) => (x / MiB).toFixed(3)).join(' + ')} MiB/s; total less the burst ${(total / MiB).toFixed(3)} MiB/s`);
    within(total, 4 * MiB, 0.1, 'total of the four clients');
    for (const r of shares) within(r, total / 4, 0.15, `one client's share (all: ${shares.map((x) => (x / MiB).toFixed(2)).join(', ')})`);
  });

  test('rate-after and burst: the first bytes come at once, the rest at the rate', async (t) => {
    const size = 5 * MiB;
    const s = await serverWith(t, { limitRate: '1M', limitRateAfter: '2M', limitBurst: '512k' }, size);
    // Milestones as the bytes arrive, timed from the response headers.
    const marks = await new Promise<{ at2MiB: number; at2_5MiB: number; total: number }>((resolve, reject) => {
      http.get(`${s.url}/files/f.bin`, (res) => {
        const t0 = performance.now();
        let bytes = 0;
        let at2MiB = 0;
        let at2_5MiB = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          if (at2MiB === 0 && bytes >= 2 * MiB) at2MiB = (performance.now() - t0) / 1000;
          if (at2_5MiB === 0 && bytes >= 2.5 * MiB) at2_5MiB = (performance.now() - t0) / 1000;
        });
        res.on('end', () => resolve({ at2MiB, at2_5MiB, total: (performance.now() - t0) / 1000 }));
        res.on('error', reject);
      }).on('error', reject);
    });
    t.diagnostic(`rate-after/burst: 2 MiB at ${marks.at2MiB.toFixed(3)} s, 2.5 MiB at ${marks.at2_5MiB.toFixed(3)} s, 5 MiB at ${marks.total.toFixed(3)} s`);
    assert.ok(marks.at2MiB < 0.5, `rate-after: the first 2 MiB took ${marks.at2MiB} s`);
    assert.ok(marks.at2_5MiB < 0.7, `burst: the next 512 KiB took until ${marks.at2_5MiB} s`);
    // The remaining 2.5 MiB at 1 MiB/s.
    assert.ok(marks.total > 2.5 * 0.9 && marks.total < 2.5 * 1.15, `took ${marks.total} s, expected ~2.5 s`);
  });
});
