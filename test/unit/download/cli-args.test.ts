// The CLI's pure parts: repeated headers, default names, exit codes, help text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OptionError } from '../../../src/config/index.ts';
import { FerryError } from '../../../src/core/errors.ts';
import { defaultOutputName, exitCodeFor, extractHeaders, getHelp } from '../../../src/cli/get.ts';
import { putHelp } from '../../../src/cli/put.ts';

test('-H/--header may repeat and keep commas; malformed ones are refused', () => {
  const r = extractHeaders(['URL', '-H', 'Authorization: Bearer x', '--header=Accept: a, b', '-o', 'f', '--', '-H']);
  assert.deepEqual(r.headers, [['Authorization', 'Bearer x'], ['Accept', 'a, b']]);
  assert.deepEqual(r.rest, ['URL', '-o', 'f', '--', '-H']);
  assert.throws(() => extractHeaders(['-H', 'no colon']), OptionError);
  assert.throws(() => extractHeaders(['-H']), OptionError);
  assert.throws(() => extractHeaders(['-H', 'bad name: x']), OptionError);
});

test('default output name: the last URL path segment, decoded and made safe', () => {
  assert.equal(defaultOutputName('http://h/files/model.bin?x=1'), 'model.bin');
  assert.equal(defaultOutputName('http://h/files/%E5%AD%A3%E5%BA%A6.pdf'), '季度.pdf');
  assert.equal(defaultOutputName('http://h/'), 'download');
  assert.equal(defaultOutputName('http://h/a/..%2F..%2Fetc'), '.._.._etc');
});

test('exit codes are distinct per failure class', () => {
  const codes = {
    FERRY_ERR_CLIENT_HTTP_STATUS: 3, FERRY_ERR_CLIENT_RETRIES_EXHAUSTED: 4, FERRY_ERR_DOWNLOAD_CHECKSUM_MISMATCH: 5,
    FERRY_ERR_DOWNLOAD_CHANGED: 6, FERRY_ERR_CLIENT_LOCAL_IO: 7, FERRY_ERR_CLIENT_PROTOCOL: 8, FERRY_ERR_CLIENT_ABORTED: 130,
  } as const;
  for (const [code, exit] of Object.entries(codes)) assert.equal(exitCodeFor(new FerryError(code as keyof typeof codes)), exit, code);
  assert.equal(exitCodeFor(new OptionError('x')), 2);
  assert.equal(exitCodeFor(new Error('x')), 1);
});

test('--help documents every exit code', () => {
  for (const help of [getHelp(), putHelp()]) {
    for (const code of ['0', '1', '2', '3', '4', '5', '6', '7', '8', '130']) assert.match(help, new RegExp(`^  ${code} +\\S`, 'm'), code);
  }
});
