import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createStaticTokens, hashToken, parseTokensFile } from '../../../src/auth/index.ts';

test('a token matches the entry whose sha256 it hashes to; others do not', () => {
  const tokens = createStaticTokens(parseTokensFile([
    { name: 'ci', role: 'write', sha256: hashToken('ci-secret') },
    { name: 'ops', role: 'admin', sha256: hashToken('ops-secret').toUpperCase() },
  ]));
  assert.equal(tokens.size, 2);
  assert.deepEqual(tokens.verify('ci-secret'), { name: 'ci', role: 'write', sha256: hashToken('ci-secret') });
  assert.equal(tokens.verify('ops-secret')?.role, 'admin');
  assert.equal(tokens.verify('ci-secreT'), undefined);
  assert.equal(tokens.verify(''), undefined);
  // The stored value is the hash: presenting the hash itself is not the token.
  assert.equal(tokens.verify(hashToken('ci-secret')), undefined);
});

test('hashToken is the SHA-256 hex that `printf %s TOKEN | sha256sum` prints', () => {
  assert.equal(hashToken('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('parseTokensFile names the first bad entry', () => {
  const good = hashToken('x');
  const cases: Array<[unknown, RegExp]> = [
    [{}, /JSON array/],
    [[null], /entry 0: expected an object/],
    [[{ role: 'read', sha256: good }], /entry 0: "name"/],
    [[{ name: 'a', role: 'root', sha256: good }], /entry 0 \(a\): "role" must be one of read, write, admin/],
    [[{ name: 'a', role: 'read', sha256: 'plain-token' }], /"sha256" must be 64 hex digits/],
    [[{ name: 'a', role: 'read', sha256: good }, { name: 'b', role: 'read', sha256: good }], /entry 1 \(b\): the same token hash appears twice/],
  ];
  for (const [json, re] of cases) assert.throws(() => parseTokensFile(json), re);
});
