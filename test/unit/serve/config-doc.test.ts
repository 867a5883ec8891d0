/**
 * docs/reference/config.md is generated from SERVE_OPTIONS (the one schema behind flags, env
 * and the config file); this test fails when the two drift apart.
 * Regenerate: FERRY_TEST_UPDATE_DOCS=1 node --test test/unit/serve/config-doc.test.ts
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SERVE_OPTIONS, toEnv, toKebab, type OptionSpec } from '../../../src/config/index.ts';

const DOC = path.resolve(import.meta.dirname, '..', '..', '..', 'docs', 'reference', 'config.md');

function valueOf(spec: OptionSpec): string {
  switch (spec.kind) {
    case 'enum': return (spec.values ?? []).map((v) => `\`${v}\``).join(' \\| ');
    case 'int': return `integer${spec.min !== undefined ? ` ≥ ${spec.min}` : ''}${spec.max !== undefined ? `, ≤ ${spec.max}` : ''}`;
    case 'size': return `size (\`512k\`, \`64M\`, \`1G\`)${spec.min !== undefined ? ` ≥ ${spec.min}` : ''}${spec.max !== undefined ? `, ≤ ${spec.max}` : ''}`;
    case 'rate': return 'rate in bytes/s (`10M`)';
    case 'duration': return 'duration (`250ms`, `30s`, `5m`, `24h`)';
    case 'bool': return '`true` \\| `false`';
    case 'list': return 'comma-separated list';
    case 'roles': return 'object (config file only)';
    case 'proxy-trust': return '`true` (= `loopback`) \\| `false` \\| hop count \\| comma-separated addresses, CIDRs, `loopback`, `linklocal`, `uniquelocal`';
    case 'path': return 'path';
    default: return 'string';
  }
}

function defaultOf(spec: OptionSpec): string {
  if (spec.defaultText !== undefined) return `\`${spec.defaultText}\``;
  if (spec.default === undefined) return '—';
  if (Array.isArray(spec.default)) return `\`${spec.default.join(',')}\``;
  return `\`${String(spec.default)}\``;
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

export function renderConfigDoc(): string {
  const lines = [
    '# Configuration reference',
    '',
    '<!-- Generated from SERVE_OPTIONS (src/config/schema.ts) by test/unit/serve/config-doc.test.ts;',
    '     regenerate with: FERRY_TEST_UPDATE_DOCS=1 node --test test/unit/serve/config-doc.test.ts -->',
    '',
    'Every option of `ferry serve` exists as a flag (`--kebab-case`), as an environment variable',
    '(`FERRY_UPPER_SNAKE`) and as a camelCase key in the JSON file given with `--config`.',
    'Precedence: flag > environment > file > default. An invalid or unknown option stops start-up',
    'with exit code 2 and one line naming the option, the value and what is allowed.',
    'Sizes accept `512k`, `64M`, `1G` (binary multiples); rates are bytes per second (`10M`);',
    'durations accept `250ms`, `30s`, `5m`, `24h`.',
  ];
  let group: string | undefined;
  for (const [name, spec] of Object.entries(SERVE_OPTIONS) as Array<[string, OptionSpec]>) {
    if (spec.group !== group) {
      group = spec.group;
      lines.push('', `## ${group ?? 'Other'}`, '', '| flag | environment | config key | value | default | meaning |', '| --- | --- | --- | --- | --- | --- |');
    }
    const arg = spec.kind === 'bool' ? '' : spec.kind === 'proxy-trust' ? ` [${spec.arg ?? 'VALUE'}]` : ` ${spec.arg ?? spec.kind.toUpperCase()}`;
    const flag = spec.fileOnly === true ? '—' : `\`--${toKebab(name)}${arg}\``;
    const env = spec.fileOnly === true ? '—' : `\`${toEnv(name)}\``;
    lines.push(`| ${flag} | ${env} | \`${name}\` | ${valueOf(spec)} | ${defaultOf(spec)} | ${escapeCell(spec.help)} |`);
  }
  lines.push('');
  return lines.join('\n');
}

test('docs/reference/config.md matches SERVE_OPTIONS', () => {
  const expected = renderConfigDoc();
  if (process.env.FERRY_TEST_UPDATE_DOCS === '1') writeFileSync(DOC, expected);
  let actual = '';
  try { actual = readFileSync(DOC, 'utf8'); } catch { /* missing: fails below */ }
  assert.equal(actual, expected, 'docs/reference/config.md is out of date: FERRY_TEST_UPDATE_DOCS=1 node --test test/unit/serve/config-doc.test.ts');
});

test('every option is documented with its flag, env name and default', () => {
  const doc = renderConfigDoc();
  for (const [name, spec] of Object.entries(SERVE_OPTIONS) as Array<[string, OptionSpec]>) {
    assert.ok(doc.includes(`\`${name}\``), name);
    if (spec.fileOnly !== true) assert.ok(doc.includes(`\`--${toKebab(name)}`) && doc.includes(toEnv(name)), name);
  }
});
