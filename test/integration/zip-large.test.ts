/**
 * An archive over 4 GiB through the route, without downloading 4 GiB: HEAD gives the exact
 * length, and a Range request for the tail (central directory + ZIP64 end records) — which makes
 * the server compute the big member's CRC-32 on demand — is a valid ZIP64 directory: written
 * into a sparse file of the archive's length, Python's zipfile reads every entry from it with
 * the right sizes and offsets. The first bytes are checked too (ZIP64 local header).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { mkdir, open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startZipServer, type ZipTestServer } from '../unit/zip/zip-server-kit.ts';
import { run } from '../unit/zip/zip-test-kit.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';

let s: ZipTestServer | undefined;
const tmp = await makeTempDir('ferry-zip-large-');
after(async () => { await s?.close(); await tmp.remove(); });

test('a > 4 GiB archive: exact length by HEAD, ZIP64 local header and directory by Range', async () => {
  s = await startZipServer();
  const big = 4 * 1024 ** 3 + 4096;
  await mkdir(path.join(s.root, 'large'), { recursive: true });
  const fh = await open(path.join(s.root, 'large/a-huge.bin'), 'w');
  await fh.truncate(big);
  await fh.close();
  await writeFile(path.join(s.root, 'large/b-small.txt'), 'after the big one\n');

  const head = await fetch(`${s.url}/zip/large`, { method: 'HEAD' });
  const total = Number(head.headers.get('content-length'));
  assert.ok(total > big);

  const first = Buffer.from(await (await fetch(`${s.url}/zip/large`, { headers: { range: 'bytes=0-99' } })).arrayBuffer());
  assert.equal(first.readUInt32LE(0), 0x04034b50);
  assert.equal(first.readUInt32LE(18), 0xffffffff, 'ZIP64 sizes in the local header');

  // The last 4 KiB hold the central directory (2 entries) and the end records.
  const tailStart = total - 4096;
  const tail = await fetch(`${s.url}/zip/large`, { headers: { range: `bytes=${tailStart}-`, 'if-range': head.headers.get('etag')! } });
  assert.equal(tail.status, 206);
  const tailBytes = Buffer.from(await tail.arrayBuffer());
  const shell = path.join(tmp.dir, 'shell.zip');
  const out = await open(shell, 'w');
  await out.truncate(total);
  await out.write(first, 0, first.length, 0);
  await out.write(tailBytes, 0, tailBytes.length, tailStart);
  await out.close();
  const py = await run('python3', ['-c', `
import json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
print(json.dumps([[i.filename, i.file_size, i.header_offset, i.CRC, i.flag_bits] for i in z.infolist()]))
`, shell]);
  assert.equal(py.code, 0, py.stderr);
  const entries = JSON.parse(py.stdout) as Array<[string, number, number, number, number]>;
  assert.equal(entries.length, 2);
  assert.deepEqual(entries.map((e) => [e[0], e[1]]), [['large/a-huge.bin', big], ['large/b-small.txt', 18]]);
  assert.equal(entries[0]![2], 0);
  assert.ok(entries[1]![2] > 0xffffffff, 'second local header past 4 GiB (ZIP64 offset)');
  assert.equal(entries[1]![3], crc32('after the big one\n'));
  // The small member's local header, fetched by the offset the directory gives.
  const lh = Buffer.from(await (await fetch(`${s.url}/zip/large`, { headers: { range: `bytes=${entries[1]![2]}-${entries[1]![2] + 29}` } })).arrayBuffer());
  assert.equal(lh.readUInt32LE(0), 0x04034b50, 'the directory points at a local header');
});
