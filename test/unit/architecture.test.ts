/**
 * Mechanical check of ARCHITECTURE.md's import rules and of import cycles between areas.
 * Fails when a module imports an area it may not, or reaches into another area's
 * internals instead of its index.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const SRC = path.resolve(import.meta.dirname, '..', '..', 'src');

/** area → areas it may import (besides itself). `.` is a top-level file in src/. */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  core: [],
  config: ['core'],
  http: ['core'],
  zip: ['core'],
  limits: ['core'],
  auth: ['core'],
  storage: ['core'],
  meta: ['core'],
  serve: ['http', 'storage', 'zip', 'limits', 'auth', 'meta', 'core'],
  uploads: ['http', 'storage', 'meta', 'limits', 'zip', 'core'],
  download: ['http', 'limits', 'core'],
  tasks: ['download', 'meta', 'progress', 'core'],
  progress: ['core'],
  observability: ['core'],
  server: ['core', 'config', 'http', 'zip', 'limits', 'auth', 'storage', 'meta', 'serve', 'uploads', 'download', 'tasks', 'progress', 'observability'],
  cli: ['download', 'config', 'core', 'http', 'limits', '.'],
  '.': ['core', 'config', 'server', 'cli', 'download'],
};

/** Pure areas: no I/O modules, no logger. */
const PURE = new Set(['http', 'zip', 'limits', 'auth']);
const IO_MODULES = /^(node:)?(fs|fs\/promises|net|http|https|http2|child_process|dgram|pino)$/;

function* walk(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else if (e.name.endsWith('.ts')) yield p;
  }
}

function areaOf(file: string): string {
  const rel = path.relative(SRC, file).split(path.sep);
  return rel.length === 1 ? '.' : rel[0]!;
}

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

interface Edge { from: string; to: string; spec: string; fromArea: string; toArea: string }

function collectEdges(): Edge[] {
  const edges: Edge[] = [];
  for (const file of walk(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT_RE)) {
      const spec = m[1] ?? m[2]!;
      if (!spec.startsWith('.')) {
        edges.push({ from: file, to: spec, spec, fromArea: areaOf(file), toArea: `pkg:${spec}` });
        continue;
      }
      const target = path.resolve(path.dirname(file), spec);
      if (!target.startsWith(SRC)) continue; // package.json etc.
      edges.push({ from: file, to: target, spec, fromArea: areaOf(file), toArea: areaOf(target) });
    }
  }
  return edges;
}

test('every import between areas is allowed by ARCHITECTURE.md', () => {
  const bad: string[] = [];
  for (const e of collectEdges()) {
    if (e.toArea.startsWith('pkg:')) continue;
    if (e.fromArea === e.toArea) continue;
    const allowed = ALLOWED[e.fromArea];
    if (allowed === undefined) { bad.push(`${path.relative(SRC, e.from)}: area "${e.fromArea}" is not in the architecture table`); continue; }
    if (!allowed.includes(e.toArea)) bad.push(`${path.relative(SRC, e.from)} imports ${e.spec} (${e.fromArea} → ${e.toArea} not allowed)`);
  }
  assert.deepEqual(bad, []);
});

test('areas import each other only through index.ts (core, config and server internals excepted)', () => {
  const bad: string[] = [];
  for (const e of collectEdges()) {
    if (e.toArea.startsWith('pkg:') || e.fromArea === e.toArea || e.toArea === '.') continue;
    const rel = path.relative(path.join(SRC, e.toArea), e.to);
    // core and config are leaves made of small modules; importing one of them directly is fine.
    if (e.toArea === 'core' || e.toArea === 'config') continue;
    // src/cli/ is a folder of command entry points for src/cli.ts, not a library area.
    if (e.fromArea === '.' && e.toArea === 'cli') continue;
    if (rel !== 'index.ts' && !(e.fromArea === 'server' && e.toArea === 'observability')) bad.push(`${path.relative(SRC, e.from)} imports ${e.spec}`);
  }
  assert.deepEqual(bad, []);
});

test('pure areas (http, zip, limits, auth) do no I/O', () => {
  const bad = collectEdges().filter((e) => PURE.has(e.fromArea) && e.toArea.startsWith('pkg:') && IO_MODULES.test(e.spec) && !e.from.includes(`${path.sep}io${path.sep}`));
  assert.deepEqual(bad.map((e) => `${path.relative(SRC, e.from)} imports ${e.spec}`), []);
});

test('no import cycles between areas', () => {
  const graph = new Map<string, Set<string>>();
  for (const e of collectEdges()) {
    if (e.toArea.startsWith('pkg:') || e.fromArea === e.toArea) continue;
    if (!graph.has(e.fromArea)) graph.set(e.fromArea, new Set());
    graph.get(e.fromArea)!.add(e.toArea);
  }
  const state = new Map<string, 'visiting' | 'done'>();
  const cycles: string[] = [];
  const visit = (n: string, trail: string[]): void => {
    if (state.get(n) === 'done') return;
    if (state.get(n) === 'visiting') { cycles.push([...trail, n].join(' → ')); return; }
    state.set(n, 'visiting');
    for (const m of graph.get(n) ?? []) visit(m, [...trail, n]);
    state.set(n, 'done');
  };
  for (const n of graph.keys()) visit(n, []);
  assert.deepEqual(cycles, []);
});
