import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, OptionError } from '../../../src/config/index.ts';
import { parseDuration, parseRate, parseSize } from '../../../src/core/units.ts';
import { makeTempDir } from '../../helpers/temp-dir.ts';
import { CLI } from '../../helpers/start-server.ts';

test('human units', () => {
  const sizes: Array<[string, number | undefined]> = [
    ['512k', 524288], ['64M', 67108864], ['1G', 1073741824], ['1.5k', 1536], ['100', 100], ['2MiB', 2097152], ['10x', undefined], ['', undefined], ['-1', undefined],
  ];
  for (const [text, want] of sizes) assert.equal(parseSize(text), want, text);
  assert.equal(parseRate('10M'), 10 * 1024 * 1024);
  assert.equal(parseRate('10M/s'), 10 * 1024 * 1024);
  const durations: Array<[string, number | undefined]> = [['30s', 30000], ['5m', 300000], ['24h', 86400000], ['250ms', 250], ['1500', 1500], ['1d', 86400000], ['soon', undefined]];
  for (const [text, want] of durations) assert.equal(parseDuration(text), want, text);
});

test('defaults match SPEC §3', () => {
  const c = loadConfig({ env: {}, cwd: '/srv' });
  assert.equal(c.root, '/srv/files');
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.port, 8080);
  assert.equal(c.stateDir, '/srv/.ferry');
  assert.equal(c.dotfiles, 'deny');
  assert.equal(c.followSymlinks, 'inside');
  assert.equal(c.maxRanges, 16);
  assert.equal(c.sendTimeout, 60_000);
  assert.equal(c.shutdownGrace, 30_000);
  assert.equal(c.compress, 'on');
  assert.equal(c.queueTimeout, 10_000);
  assert.equal(c.uploadExpiry, 86_400_000);
  assert.equal(c.onConflict, 'rename');
  assert.equal(c.zipMaxEntries, 1_000_000);
  assert.equal(c.limitRateAfter, 0);
  assert.equal(c.limitRate, undefined);
  assert.ok(Object.isFrozen(c));
});

test('precedence: flag > env > file > default', async (t) => {
  const tmp = await makeTempDir();
  t.after(tmp.remove);
  const file = path.join(tmp.dir, 'ferry.json');
  writeFileSync(file, JSON.stringify({ port: 1111, maxRanges: 3, sendTimeout: '5s', host: '0.0.0.0', roles: { read: { limitRateClient: '2M' } } }));
  const c = loadConfig({ argv: ['--config', file, '--port', '3333'], env: { FERRY_PORT: '2222', FERRY_MAX_RANGES: '4' }, cwd: tmp.dir });
  assert.equal(c.port, 3333); // flag beats env and file
  assert.equal(c.maxRanges, 4); // env beats file
  assert.equal(c.sendTimeout, 5000); // file beats default, units parsed
  assert.equal(c.host, '0.0.0.0');
  assert.deepEqual(c.roles, { read: { limitRateClient: 2 * 1024 * 1024 } });
  const viaEnvFile = loadConfig({ env: { FERRY_CONFIG: file }, cwd: tmp.dir });
  assert.equal(viaEnvFile.port, 1111);
});

test('--storage-backup: defaults, and a relative --backup-root resolved from the working directory', () => {
  const d = loadConfig({ env: {}, cwd: '/srv' });
  assert.equal(d.storageBackup, 'none');
  assert.equal(d.storageFailureThreshold, 5);
  assert.equal(d.storageFailureWindow, 30_000);
  assert.equal(d.storageCooldown, 10_000);
  const c = loadConfig({ argv: ['--storage-backup', 'local', '--backup-root', 'mirror', '--storage-cooldown', '2s'], env: {}, cwd: '/srv' });
  assert.equal(c.backupRoot, '/srv/mirror');
  assert.equal(c.storageCooldown, 2000);
});

// --s3-part-size: S3 takes parts of 5 MiB to 5 GiB; a size option used to have no upper bound.
test('--s3-part-size: 8M by default, 5M to 5G', () => {
  assert.equal(loadConfig({ env: {} }).s3PartSize, 8 * 1024 * 1024);
  assert.equal(loadConfig({ argv: ['--s3-part-size', '5M'], env: {} }).s3PartSize, 5 * 1024 * 1024);
  assert.equal(loadConfig({ argv: ['--s3-part-size', '5G'], env: {} }).s3PartSize, 5 * 1024 * 1024 * 1024);
  for (const bad of ['4M', '6G']) {
    assert.throws(() => loadConfig({ argv: ['--s3-part-size', bad], env: {} }), (err: unknown) => err instanceof OptionError && /--s3-part-size: ".*"; expected a size .*≥ 5242880, ≤ 5368709120/.test(err.message), bad);
  }
});

test('flag forms: --x=v, --bool, --no-bool', () => {
  const c = loadConfig({ argv: ['--port=9000', '--trust-proxy', '--limit-rate', '10M'], env: {} });
  assert.equal(c.port, 9000);
  assert.equal(c.trustProxy, true);
  assert.equal(c.limitRate, 10 * 1024 * 1024);
  assert.equal(loadConfig({ argv: ['--no-trust-proxy'], env: { FERRY_TRUST_PROXY: 'true' } }).trustProxy, false);
});

test('invalid and unknown options name the option, the value and what is allowed', async (t) => {
  const tmp = await makeTempDir();
  t.after(tmp.remove);
  const badFile = path.join(tmp.dir, 'bad.json');
  writeFileSync(badFile, JSON.stringify({ prot: 1 }));
  const cases: Array<[Parameters<typeof loadConfig>[0], RegExp]> = [
    [{ argv: ['--port', 'abc'], env: {} }, /--port: "abc"; expected an integer/],
    [{ argv: ['--port', '70000'], env: {} }, /--port: "70000"/],
    [{ argv: ['--bogus'], env: {} }, /unknown option --bogus/],
    [{ argv: ['--dotfiles', 'maybe'], env: {} }, /--dotfiles: "maybe"; expected one of allow, deny/],
    [{ argv: ['--send-timeout', 'forever'], env: {} }, /--send-timeout: "forever"; expected a duration/],
    [{ argv: ['--limit-rate', 'fast'], env: {} }, /--limit-rate: "fast"; expected a rate/],
    [{ argv: [], env: { FERRY_PORTT: '1' } }, /unknown environment variable FERRY_PORTT/],
    [{ argv: [], env: { FERRY_MAX_RANGES: '0' } }, /--max-ranges \(env FERRY_MAX_RANGES\): "0"/],
    [{ argv: ['--config', badFile], env: {} }, /unknown key "prot" in config file/],
    [{ argv: ['--config', path.join(tmp.dir, 'missing.json')], env: {} }, /--config: .*readable JSON file/],
    [{ argv: ['--roles', '{}'], env: {} }, /can only be set in the config file/],
    [{ argv: ['stray'], env: {} }, /unexpected argument "stray"/],
    [{ argv: ['--storage-backup', 'local'], env: {} }, /--backup-root is required with --storage-backup local/],
    [{ argv: ['--storage-backup', 's3'], env: {} }, /--backup-s3-bucket is required with --storage-backup s3/],
    [{ argv: ['--storage-backup', 's3', '--backup-s3-bucket', 'b', '--backup-s3-endpoint', 'ftp://x'], env: {} }, /--backup-s3-endpoint: "ftp:\/\/x"; expected an http/],
    [{ argv: ['--storage-failure-threshold', '0'], env: {} }, /--storage-failure-threshold: "0"/],
  ];
  for (const [opts, re] of cases) {
    assert.throws(() => loadConfig(opts), (err: unknown) => err instanceof OptionError && re.test(err.message) && !err.message.includes('\n'), JSON.stringify(opts));
  }
});

test('ferry serve exits 2 with one line on stderr for a bad option; --help exits 0', () => {
  const bad = spawnSync(process.execPath, [CLI, 'serve', '--port', 'x'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
  assert.match(bad.stderr, /^ferry: invalid value for option --port: "x"/);
  const help = spawnSync(process.execPath, [CLI, 'serve', '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  for (const flag of ['--root', '--host', '--port', '--state-dir', '--config', '--max-ranges', '--send-timeout', '--shutdown-grace']) assert.ok(help.stdout.includes(flag), flag);
  const top = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
  assert.equal(top.status, 0);
  assert.match(top.stdout, /serve/);
  const unknown = spawnSync(process.execPath, [CLI, 'frobnicate'], { encoding: 'utf8' });
  assert.equal(unknown.status, 2);
});

test('an unreadable tokens file is an option error too: exit 2, one line', async (t) => {
  const tmp = await makeTempDir();
  t.after(tmp.remove);
  const r = spawnSync(process.execPath, [CLI, 'serve', '--port', '0', '--root', path.join(tmp.dir, 'files'), '--state-dir', path.join(tmp.dir, 'state'), '--tokens-file', '/nonexistent/tokens.json'], { encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^ferry: invalid value for option --tokens-file/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});
