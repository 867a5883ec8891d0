/** The error catalogue and docs/reference/errors.md list the same codes with the same statuses. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { FERRY_ERRORS } from '../../src/core/errors.ts';

test('docs/reference/errors.md documents every FERRY_ERR_* code with its status', () => {
  const doc = readFileSync(path.resolve(import.meta.dirname, '..', '..', 'docs', 'reference', 'errors.md'), 'utf8');
  const documented = new Map<string, number>();
  for (const m of doc.matchAll(/^\|\s*`?(FERRY_ERR_[A-Z0-9_]+)`?\s*\|\s*(\d{3})\s*\|/gm)) documented.set(m[1]!, Number(m[2]));
  const catalogue = new Map(Object.entries(FERRY_ERRORS).map(([code, e]) => [code, e.status]));
  const missing = [...catalogue.keys()].filter((c) => !documented.has(c));
  const extra = [...documented.keys()].filter((c) => !catalogue.has(c));
  const wrong = [...catalogue].filter(([c, s]) => documented.has(c) && documented.get(c) !== s).map(([c]) => c);
  assert.deepEqual({ missing, extra, wrong }, { missing: [], extra: [], wrong: [] });
});

// On the old code this failed: the download engine threw plain Errors with code
// 'ERR_FERRY_SHORT_BODY', a code no catalogue, doc or client knew.
test('every error code spelled in src/ is in the catalogue (no ERR_FERRY_* or unknown FERRY_ERR_*)', () => {
  const src = path.resolve(import.meta.dirname, '..', '..', 'src');
  const unknown: string[] = [];
  for (const file of readdirSync(src, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.ts')) continue;
    const text = readFileSync(path.join(src, file), 'utf8');
    for (const m of text.matchAll(/\b(?:ERR_FERRY|FERRY_ERR)_[A-Z0-9_]*[A-Z0-9]\b/g)) {
      if (!(m[0] in FERRY_ERRORS)) unknown.push(`${file}: ${m[0]}`);
    }
  }
  assert.deepEqual(unknown, []);
});
