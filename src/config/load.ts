/**
 * Loads `ferry serve` options: defaults < JSON file < env `FERRY_*` < flags, validated once
 * against SERVE_OPTIONS, paths made absolute, then frozen. Any problem is an OptionError with
 * one line naming the option, the value and what is allowed (exit code 2).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SERVE_OPTIONS, type FerryConfig } from './schema.ts';
import { OptionError, parseFlags, parseOptionValue, showValue, toEnv, toKebab, type Schema } from './schema-kit.ts';

export interface LoadConfigOptions {
  argv?: readonly string[];
  env?: Readonly<Record<string, string | undefined>>;
  cwd?: string;
  /** Programmatic overrides (tests, index.ts): highest precedence, validated like flags. */
  overrides?: Partial<Record<keyof FerryConfig, unknown>>;
}

/** Env variables with this prefix that are not options (test and bench switches). */
const NON_OPTION_ENV = /^FERRY_(TEST|SOAK|BENCH)_?/;

export function loadConfig(options: LoadConfigOptions = {}): FerryConfig {
  const schema: Schema = SERVE_OPTIONS;
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? {};
  const flags = parseFlags(schema, options.argv ?? []);
  if (flags.positionals.length > 0) throw new OptionError(`unexpected argument "${flags.positionals[0]}"; ferry serve takes only options (see --help)`);

  const envValues: Record<string, unknown> = {};
  const envNames = new Map(Object.keys(schema).map((k) => [toEnv(k), k]));
  for (const [key, raw] of Object.entries(env)) {
    if (!key.startsWith('FERRY_') || raw === undefined || NON_OPTION_ENV.test(key)) continue;
    const name = envNames.get(key);
    if (name === undefined) throw new OptionError(`unknown environment variable ${key}; run ferry serve --help for the list of options`);
    const r = parseOptionValue(schema[name]!, raw);
    if (!r.ok) throw new OptionError(`invalid value for option --${toKebab(name)} (env ${key}): ${showValue(raw)}; expected ${r.allowed}`);
    envValues[name] = r.value;
  }

  const configPath = (flags.values.config ?? envValues.config) as string | undefined;
  const fileValues: Record<string, unknown> = {};
  if (configPath !== undefined) {
    const file = path.resolve(cwd, configPath);
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new OptionError(`invalid value for option --config: ${showValue(configPath)}; expected a readable JSON file (${(err as Error).message.split('\n')[0]})`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new OptionError(`invalid value for option --config: ${showValue(configPath)}; expected a JSON object`);
    for (const [key, raw] of Object.entries(parsed)) {
      const spec = schema[key];
      if (spec === undefined || key === 'config') throw new OptionError(`unknown key "${key}" in config file ${configPath}; run ferry serve --help for the list of options`);
      const r = parseOptionValue(spec, raw);
      if (!r.ok) throw new OptionError(`invalid value for option ${key} (config file ${configPath}): ${showValue(raw)}; expected ${r.allowed}`);
      fileValues[key] = r.value;
    }
  }

  const overrideValues: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(options.overrides ?? {})) {
    const spec = schema[key];
    if (spec === undefined) throw new OptionError(`unknown option "${key}"`);
    if (raw === undefined) continue;
    const r = parseOptionValue(spec, raw);
    if (!r.ok) throw new OptionError(`invalid value for option ${key}: ${showValue(raw)}; expected ${r.allowed}`);
    overrideValues[key] = r.value;
  }

  const merged: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(schema)) merged[key] = spec.default;
  Object.assign(merged, fileValues, envValues, flags.values, overrideValues);
  for (const key of ['root', 'backupRoot', 'stateDir', 'tokensFile', 'jwtPublicKey', 'jwtJwksFile', 'config'] as const) {
    const v = merged[key];
    if (typeof v === 'string') merged[key] = path.resolve(cwd, v);
  }
  checkStorageOptions(merged);
  return Object.freeze(merged) as FerryConfig;
}

/** Options that only make sense together (--storage s3 needs a bucket; an endpoint is a URL). */
function checkStorageOptions(merged: Record<string, unknown>): void {
  if (merged.storage === 's3' && (typeof merged.s3Bucket !== 'string' || merged.s3Bucket === '')) {
    throw new OptionError('option --s3-bucket is required with --storage s3; give the bucket name, e.g. --s3-bucket media');
  }
  if (merged.storageBackup === 'local' && (typeof merged.backupRoot !== 'string' || merged.backupRoot === '')) {
    throw new OptionError('option --backup-root is required with --storage-backup local; give the mirror folder, e.g. --backup-root /srv/mirror');
  }
  if (merged.storageBackup === 's3' && (typeof merged.backupS3Bucket !== 'string' || merged.backupS3Bucket === '')) {
    throw new OptionError('option --backup-s3-bucket is required with --storage-backup s3; give the bucket name, e.g. --backup-s3-bucket media-replica');
  }
  if (merged.s3Redirect === true && merged.storage !== 's3') {
    throw new OptionError('option --s3-redirect needs --storage s3 (local files have no URL to redirect to); remove --s3-redirect or use --storage s3');
  }
  // SigV4 presigned URLs are valid for at most 7 days.
  if (typeof merged.s3RedirectTtl === 'number' && merged.s3RedirectTtl > 604_800_000) {
    throw new OptionError(`invalid value for option --s3-redirect-ttl: ${showValue(merged.s3RedirectTtl)} ms; a presigned URL is valid for at most 7 days, e.g. --s3-redirect-ttl 5m`);
  }
  for (const [key, flag] of [['s3Endpoint', '--s3-endpoint'], ['backupS3Endpoint', '--backup-s3-endpoint']] as const) {
    const endpoint = merged[key];
    if (typeof endpoint !== 'string') continue;
    let ok = false;
    try {
      const u = new URL(endpoint);
      ok = u.protocol === 'http:' || u.protocol === 'https:';
    } catch { /* not a URL */ }
    if (!ok) throw new OptionError(`invalid value for option ${flag}: ${showValue(endpoint)}; expected an http:// or https:// URL, e.g. http://127.0.0.1:9000`);
  }
}

export function isHelpRequested(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}
