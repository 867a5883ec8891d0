/** docs/reference/metrics.md lists exactly the Ferry series the registry exposes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createMetrics } from '../../../src/observability/metrics.ts';

const DOC = path.resolve(import.meta.dirname, '..', '..', '..', 'docs', 'reference', 'metrics.md');

test('every Ferry metric is documented, and every documented one exists', async () => {
  const metrics = createMetrics();
  try {
    const names = (await metrics.registry.getMetricsAsJSON()).map((m) => m.name);
    const own = names.filter((n) => !n.startsWith('ferry_process_') && !n.startsWith('ferry_nodejs_'));
    const doc = readFileSync(DOC, 'utf8');
    const documented = [...doc.matchAll(/^\| `(ferry_[a-z0-9_]+)` \|/gm)].map((m) => m[1]!);
    assert.deepEqual([...documented].sort(), [...own].sort());
  } finally {
    metrics[Symbol.dispose]();
  }
});
