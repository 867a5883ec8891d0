/**
 * A small, typed option-schema toolkit shared by `ferry serve` (flags + env + file) and the
 * client commands (`ferry get`, `ferry put`: flags only). One table per command gives the
 * parser, the `--help` text and the TypeScript type.
 */
import { isIP } from 'node:net';
import { parseDuration, parseRate, parseSize } from '../core/units.ts';

export type OptionKind = 'string' | 'path' | 'int' | 'size' | 'rate' | 'duration' | 'bool' | 'enum' | 'list' | 'roles' | 'proxy-trust';

/**
 * Which peers are trusted proxies (`--trust-proxy`): `false` (none), `true` (= `loopback`: a
 * proxy on the same host), a hop count (the nearest N addresses of the chain, the socket peer
 * first), or a list of addresses, CIDRs and the names `loopback`, `linklocal`, `uniquelocal`
 * (as proxy-addr, which Fastify uses, names them).
 */
export type ProxyTrust = boolean | number | readonly string[];

/** The names proxy-addr gives to address ranges. */
export const PROXY_TRUST_NAMES = ['loopback', 'linklocal', 'uniquelocal'] as const;

export interface OptionSpec {
  readonly kind: OptionKind;
  readonly help: string;
  readonly default?: unknown;
  /** For `enum`. */
  readonly values?: readonly string[];
  readonly min?: number;
  readonly max?: number;
  /** Only settable in the config file (objects). */
  readonly fileOnly?: boolean;
  /** Short flag, e.g. `o` for `-o`. */
  readonly short?: string;
  /** Shown in help instead of the kind, e.g. `DIR`. */
  readonly arg?: string;
  /** Help section. */
  readonly group?: string;
  /** How the default is shown in help (`30s` rather than 30000). */
  readonly defaultText?: string;
}

export type Schema = Readonly<Record<string, OptionSpec>>;

/** Per-role limits from the config file (SPEC §3: `{"roles": {"read": {"limitRateClient": "2M"}}}`). */
export interface RoleLimits {
  limitRate?: number;
  limitRateAfter?: number;
  limitRateClient?: number;
  limitConnClient?: number;
  limitReqClient?: number;
}
export type RolesConfig = Readonly<Partial<Record<'anonymous' | 'read' | 'write' | 'admin', Readonly<RoleLimits>>>>;

interface KindValue {
  string: string; path: string; int: number; size: number; rate: number; duration: number;
  bool: boolean; enum: string; list: readonly string[]; roles: RolesConfig; 'proxy-trust': ProxyTrust;
}
type ValueOf<S> = S extends { kind: 'enum'; values: readonly (infer V)[] } ? V
  : S extends { kind: infer K extends keyof KindValue } ? KindValue[K] : never;
type OptionValue<S> = S extends { default: infer D } ? (D extends undefined ? ValueOf<S> | undefined : ValueOf<S>) : ValueOf<S> | undefined;

/** The frozen, typed result of a schema. */
export type ConfigOf<S extends Schema> = { readonly [K in keyof S]: OptionValue<S[K]> };

/** A problem with one option: start-up stops with exit code 2 and this one-line message. */
export class OptionError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'OptionError';
  }
}

export function toKebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
export function toEnv(name: string): string {
  return `FERRY_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

function describeAllowed(spec: OptionSpec): string {
  switch (spec.kind) {
    case 'int': return `an integer${spec.min !== undefined ? ` ≥ ${spec.min}` : ''}${spec.max !== undefined ? ` and ≤ ${spec.max}` : ''}`;
    case 'size': return `a size such as 512k, 64M, 1G (bytes)${spec.min !== undefined ? `, ≥ ${spec.min}` : ''}${spec.max !== undefined ? `, ≤ ${spec.max}` : ''}`;
    case 'rate': return 'a rate in bytes per second such as 512k, 10M';
    case 'duration': return 'a duration such as 250ms, 30s, 5m, 24h';
    case 'bool': return 'true or false';
    case 'enum': return `one of ${(spec.values ?? []).join(', ')}`;
    case 'list': return 'a comma-separated list';
    case 'roles': return 'an object {"read": {"limitRateClient": "2M"}, ...} with roles anonymous/read/write/admin';
    case 'proxy-trust': return `true (= loopback), false, a hop count, or a comma-separated list of IP addresses, CIDRs and the names ${PROXY_TRUST_NAMES.join(', ')}`;
    default: return 'a non-empty string';
  }
}

const ROLE_NAMES = ['anonymous', 'read', 'write', 'admin'] as const;
const ROLE_LIMIT_KEYS: Readonly<Record<keyof RoleLimits, 'rate' | 'size' | 'int'>> = {
  limitRate: 'rate', limitRateAfter: 'size', limitRateClient: 'rate', limitConnClient: 'int', limitReqClient: 'int',
};

/** True for an IP address, `address/prefix` (CIDR) or one of PROXY_TRUST_NAMES. */
export function isProxyTrustEntry(entry: string): boolean {
  if ((PROXY_TRUST_NAMES as readonly string[]).includes(entry.toLowerCase())) return true;
  const slash = entry.indexOf('/');
  if (slash === -1) return isIP(entry) !== 0;
  const family = isIP(entry.slice(0, slash));
  const prefix = entry.slice(slash + 1);
  if (family === 0 || !/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

function parseProxyTrust(raw: unknown): { ok: true; value: ProxyTrust } | { ok: false; bad?: string } {
  if (typeof raw === 'boolean') return { ok: true, value: raw };
  if (typeof raw === 'number') return Number.isSafeInteger(raw) && raw >= 0 ? { ok: true, value: raw === 0 ? false : raw } : { ok: false };
  let items: string[];
  if (Array.isArray(raw)) {
    if (!raw.every((x) => typeof x === 'string')) return { ok: false };
    items = raw.map((x: string) => x.trim());
  } else if (typeof raw === 'string') {
    const text = raw.trim().toLowerCase();
    if (text === 'true' || text === 'yes' || text === 'on') return { ok: true, value: true };
    if (text === 'false' || text === 'no' || text === 'off') return { ok: true, value: false };
    if (/^\d{1,6}$/.test(text)) return { ok: true, value: Number(text) === 0 ? false : Number(text) };
    items = raw.split(',').map((x) => x.trim());
  } else {
    return { ok: false };
  }
  items = items.filter((x) => x !== '');
  if (items.length === 0) return { ok: false };
  const bad = items.find((x) => !isProxyTrustEntry(x));
  if (bad !== undefined) return { ok: false, bad };
  return { ok: true, value: Object.freeze(items.map((x) => ((PROXY_TRUST_NAMES as readonly string[]).includes(x.toLowerCase()) ? x.toLowerCase() : x))) };
}

/**
 * Parses one raw value (a string from a flag or env, or a JSON value from the file).
 * Returns the typed value or an error text naming what is allowed.
 */
export function parseOptionValue(spec: OptionSpec, raw: unknown): { ok: true; value: unknown } | { ok: false; allowed: string } {
  const fail = { ok: false as const, allowed: describeAllowed(spec) };
  const asString = typeof raw === 'string' ? raw : typeof raw === 'number' || typeof raw === 'boolean' ? String(raw) : undefined;
  switch (spec.kind) {
    case 'string':
    case 'path':
      return asString !== undefined && asString !== '' ? { ok: true, value: asString } : fail;
    case 'int': {
      if (asString === undefined || !/^-?\d+$/.test(asString.trim())) return fail;
      const n = Number(asString);
      if (!Number.isSafeInteger(n) || (spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) return fail;
      return { ok: true, value: n };
    }
    case 'size':
    case 'rate':
    case 'duration': {
      if (asString === undefined) return fail;
      const parse = spec.kind === 'size' ? parseSize : spec.kind === 'rate' ? parseRate : parseDuration;
      const n = parse(asString);
      if (n === undefined || (spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) return fail;
      return { ok: true, value: n };
    }
    case 'bool': {
      if (typeof raw === 'boolean') return { ok: true, value: raw };
      const v = asString?.toLowerCase();
      if (v === 'true' || v === '1' || v === 'yes' || v === 'on') return { ok: true, value: true };
      if (v === 'false' || v === '0' || v === 'no' || v === 'off') return { ok: true, value: false };
      return fail;
    }
    case 'enum':
      return asString !== undefined && (spec.values ?? []).includes(asString) ? { ok: true, value: asString } : fail;
    case 'list': {
      if (Array.isArray(raw) && raw.every((x) => typeof x === 'string' && x !== '')) return { ok: true, value: Object.freeze([...raw]) };
      if (asString === undefined) return fail;
      const items = asString.split(',').map((s) => s.trim()).filter((s) => s !== '');
      return items.length > 0 ? { ok: true, value: Object.freeze(items) } : fail;
    }
    case 'proxy-trust': {
      const r = parseProxyTrust(raw);
      if (r.ok) return r;
      return r.bad === undefined ? fail : { ok: false, allowed: `${fail.allowed} ("${r.bad}" is none of these)` };
    }
    case 'roles': {
      let obj: unknown = raw;
      if (typeof raw === 'string') {
        try { obj = JSON.parse(raw); } catch { return fail; }
      }
      if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return fail;
      const out: Record<string, RoleLimits> = {};
      for (const [role, limits] of Object.entries(obj)) {
        if (!(ROLE_NAMES as readonly string[]).includes(role)) return fail;
        if (typeof limits !== 'object' || limits === null || Array.isArray(limits)) return fail;
        const parsed: Record<string, number> = {};
        for (const [key, value] of Object.entries(limits as Record<string, unknown>)) {
          const kind = ROLE_LIMIT_KEYS[key as keyof RoleLimits];
          if (kind === undefined) return { ok: false, allowed: `role limit keys ${Object.keys(ROLE_LIMIT_KEYS).join(', ')} (got "${key}")` };
          const r = parseOptionValue({ kind, help: '' }, value);
          if (!r.ok) return { ok: false, allowed: `${key}: ${r.allowed}` };
          parsed[key] = r.value as number;
        }
        out[role] = Object.freeze(parsed);
      }
      return { ok: true, value: Object.freeze(out) };
    }
  }
}

function show(raw: unknown): string {
  return typeof raw === 'string' ? JSON.stringify(raw) : JSON.stringify(raw) ?? String(raw);
}

export interface FlagParseResult {
  values: Record<string, unknown>;
  positionals: string[];
  help: boolean;
}

/**
 * Parses `--name value`, `--name=value`, `-x value`, bare `--bool-flag`, `--no-bool-flag`
 * (also for `proxy-trust`, whose value is optional).
 * Unknown flags throw OptionError. `--` ends option parsing.
 */
export function parseFlags(schema: Schema, argv: readonly string[]): FlagParseResult {
  const byFlag = new Map<string, string>();
  for (const name of Object.keys(schema)) {
    byFlag.set(`--${toKebab(name)}`, name);
    const short = schema[name]?.short;
    if (short !== undefined) byFlag.set(`-${short}`, name);
  }
  const values: Record<string, unknown> = {};
  const positionals: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') { positionals.push(...argv.slice(i + 1)); break; }
    if (arg === '--help' || arg === '-h') { help = true; continue; }
    if (!arg.startsWith('-') || arg === '-') { positionals.push(arg); continue; }
    const eq = arg.indexOf('=');
    let flag = eq === -1 ? arg : arg.slice(0, eq);
    let inline: string | undefined = eq === -1 ? undefined : arg.slice(eq + 1);
    const name = byFlag.get(flag);
    if (name === undefined && flag.startsWith('--no-')) {
      const positive = byFlag.get(`--${flag.slice(5)}`);
      const positiveKind = positive === undefined ? undefined : schema[positive]?.kind;
      if (positive !== undefined && (positiveKind === 'bool' || positiveKind === 'proxy-trust') && inline === undefined) {
        values[positive] = false;
        continue;
      }
    }
    if (name === undefined) throw new OptionError(`unknown option ${flag}; run with --help for the list of options`);
    const spec = schema[name]!;
    if (spec.fileOnly === true) throw new OptionError(`option ${flag} can only be set in the config file (key "${name}")`);
    if (spec.kind === 'bool' && inline === undefined) { values[name] = true; continue; }
    // An option whose value is optional (`--trust-proxy` alone means `true`): the next
    // argument is its value only when it is not another option.
    if (spec.kind === 'proxy-trust' && inline === undefined && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('-'))) { values[name] = true; continue; }
    if (inline === undefined) {
      const next = argv[i + 1];
      if (next === undefined) throw new OptionError(`option ${flag} needs a value: ${describeAllowed(spec)}`);
      inline = next;
      i++;
    }
    flag = spec.short !== undefined && flag === `-${spec.short}` ? `-${spec.short}` : `--${toKebab(name)}`;
    const r = parseOptionValue(spec, inline);
    if (!r.ok) throw new OptionError(`invalid value for option ${flag}: ${show(inline)}; expected ${r.allowed}`);
    values[name] = r.value;
  }
  return { values, positionals, help };
}

/** Builds `--help` text from a schema. */
export function formatHelp(usage: string, description: string, schema: Schema, footer = ''): string {
  const lines = [`Usage: ${usage}`, '', description, ''];
  let group: string | undefined;
  const rows: [string, string][] = [];
  for (const [name, spec] of Object.entries(schema)) {
    if (spec.group !== group && spec.group !== undefined) {
      if (rows.length > 0) rows.push(['', '']);
      rows.push([`${spec.group}:`, '']);
      group = spec.group;
    }
    if (spec.fileOnly === true) {
      rows.push([`  (config file) ${name}`, spec.help]);
      continue;
    }
    const arg = spec.kind === 'bool' ? '' : spec.kind === 'proxy-trust' ? ` [${spec.arg ?? 'VALUE'}]` : ` ${spec.arg ?? spec.kind.toUpperCase()}`;
    const short = spec.short !== undefined ? `-${spec.short}, ` : '';
    const dflt = spec.defaultText !== undefined ? ` (default: ${spec.defaultText})` : spec.default !== undefined && spec.default !== false ? ` (default: ${Array.isArray(spec.default) ? spec.default.join(',') : String(spec.default)})` : '';
    rows.push([`  ${short}--${toKebab(name)}${arg}`, `${spec.help}${dflt}`]);
  }
  const width = Math.min(40, Math.max(...rows.map(([a]) => a.length)) + 2);
  for (const [a, b] of rows) lines.push(b === '' ? a : a.length >= width ? `${a}\n${' '.repeat(width)}${b}` : `${a.padEnd(width)}${b}`);
  lines.push('  -h, --help'.padEnd(width) + 'show this help');
  if (footer !== '') lines.push('', footer);
  return lines.join('\n');
}

export { show as showValue, describeAllowed };
