/** The error catalogue and docs/reference/errors.md list the same codes with the same statuses. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
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
