/**
 * Mechanical check of docs/architecture.md: its layout block names every top-level folder of
 * src/ (and only those), and its import table is the rule set enforced here — allowed imports
 * between areas, imports through index.ts, no I/O in pure areas, no cycles. The table is
 * parsed from the doc, so the doc and the check cannot drift apart (as errors-doc.test.ts
 * does for the error catalogue).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const SRC = path.resolve(import.meta.dirname, '..', '..', 'src');
const DOC = readFileSync(path.resolve(import.meta.dirname, '..', '..', 'docs', 'architecture.md'), 'utf8');

/** The text of the section under `## title`, up to the next `## `. */
function section(title: string): string {
  const start = DOC.indexOf(`\n## ${title}\n`);
  assert.notEqual(start, -1, `docs/architecture.md has no "## ${title}" section`);
  const next = DOC.indexOf('\n## ', start + 1);
  return DOC.slice(start, next === -1 ? undefined : next);
}

/**
 * The import table: `| \`area\` | \`a\`, \`b\` | yes/no |`, one row per area (`.` is a
 * top-level file in src/), `—` for none.
 */
function parseImportTable(): { allowed: Record<string, readonly string[]>; pure: Set<string> } {
  const allowed: Record<string, readonly string[]> = {};
  const pure = new Set<string>();
  for (const m of section('Who may import whom').matchAll(/^\|\s*`([a-z.]+)`\s*\|([^|]*)\|\s*(yes|no)\s*\|\s*$/gm)) {
    const area = m[1]!;
    assert.equal(allowed[area], undefined, `area "${area}" appears twice in the import table`);
    allowed[area] = [...m[2]!.matchAll(/`([a-z.]+)`/g)].map((x) => x[1]!);
    if (m[3] === 'yes') pure.add(area);
  }
  return { allowed, pure };
}

/** Folder names of the layout block's `src/` tree (lines `  name/   description`). */
function parseLayoutFolders(): Set<string> {
  const block = /```\n(src\/\n[\s\S]*?)```/.exec(section('Layout'));
  assert.ok(block !== null, 'the Layout section has a ``` block starting with src/');
  const folders = new Set<string>();
  for (const line of block[1]!.split('\n')) {
    if (/^\S/.test(line) && line !== 'src/') break; // test/, bench/ … end the src/ tree
    const m = /^ {2}([a-z][a-z0-9-]*)\/\s/.exec(line);
    if (m !== null) folders.add(m[1]!);
  }
  return folders;
}

const { allowed: ALLOWED, pure: PURE } = parseImportTable();
const IO_MODULES = /^(node:)?(fs|fs\/promises|net|http|https|http2|child_process|dgram|pino)$/;
const SRC_FOLDERS = new Set(readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name));

test('docs/architecture.md: the layout names every folder of src/, and only those', () => {
  const named = parseLayoutFolders();
  const missing = [...SRC_FOLDERS].filter((f) => !named.has(f)).sort();
  const extra = [...named].filter((f) => !SRC_FOLDERS.has(f)).sort();
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] });
});

test('docs/architecture.md: the import table has one row per folder of src/ (and `.`), naming only real areas', () => {
  const areas = new Set(Object.keys(ALLOWED));
  const missing = [...SRC_FOLDERS, '.'].filter((a) => !areas.has(a)).sort();
  const extra = [...areas].filter((a) => a !== '.' && !SRC_FOLDERS.has(a)).sort();
  const unknownTargets = Object.entries(ALLOWED).flatMap(([a, to]) => to.filter((t) => t !== '.' && !SRC_FOLDERS.has(t)).map((t) => `${a} → ${t}`));
  assert.deepEqual({ missing, extra, unknownTargets }, { missing: [], extra: [], unknownTargets: [] });
  // The rules the doc must keep: the leaf, the pure areas.
  assert.deepEqual(ALLOWED.core, []);
  for (const p of ['http', 'zip', 'limits', 'auth']) assert.ok(PURE.has(p), `${p} is pure`);
});

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

test('every import between areas is allowed by the table in docs/architecture.md', () => {
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

test('pure areas (the table\'s "pure" column: http, zip, limits, auth) do no I/O', () => {
  const bad = collectEdges().filter((e) => PURE.has(e.fromArea) && e.toArea.startsWith('pkg:') && IO_MODULES.test(e.spec) && !e.from.includes(`${path.sep}io${path.sep}`));
  assert.deepEqual(bad.map((e) => `${path.relative(SRC, e.from)} imports ${e.spec}`), []);
});

/**
 * The filesystem table: `| \`storage/**\` | why |` (a folder and everything below it) or
 * `| \`server/x.ts\` | why |` (one file), paths relative to src/.
 */
function parseFsTable(): string[] {
  return [...section('Who may touch the filesystem').matchAll(/^\|\s*`([a-z0-9./*-]+)`\s*\|/gm)].map((m) => m[1]!);
}

const FS_MODULE = /^(node:)?fs(\/promises)?$/;

// On the code before issue 9 this failed: uploads/tus-service.ts, upload-store.ts, put-upload.ts,
// publish-file.ts and ingest-body.ts imported node:fs and wrote behind Storage's back.
test('only storage and meta backends, config, key loading, the client\'s output (and the /proc readers the doc names) import node:fs', () => {
  const allowed = parseFsTable();
  // The rule the doc must keep: the upload and read routes reach files only through Storage.
  for (const a of allowed) assert.ok(!/^(uploads|serve|http|zip|limits)\//.test(a), `docs/architecture.md lets ${a} touch the filesystem`);
  for (const a of ['storage/**', 'meta/**', 'config/**']) assert.ok(allowed.includes(a), `${a} is in the filesystem table`);
  const ok = (rel: string): boolean => allowed.some((a) => (a.endsWith('/**') ? rel.startsWith(a.slice(0, -2)) : rel === a));
  const bad = collectEdges()
    .filter((e) => FS_MODULE.test(e.spec) && !ok(path.relative(SRC, e.from).split(path.sep).join('/')))
    .map((e) => `${path.relative(SRC, e.from)} imports ${e.spec}`);
  assert.deepEqual(bad, []);
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
