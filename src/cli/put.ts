/**
 * `ferry put FILE URL [--path DIR] [--parallel N]`: resumable upload over tus 1.0 (the engine is
 * src/download/tus-upload.ts). Same progress display, exit codes and transfer flags as
 * `ferry get`.
 */
import os from 'node:os';
import path from 'node:path';
import { formatHelp, OptionError, type Schema } from '../config/index.ts';
import { upload, MAX_PARALLEL } from '../download/index.ts';
import { COMMON_CLIENT_OPTIONS, createReporter, EXIT_CODES, EXIT_CODES_HELP, parseClientArgs, withInterrupts } from './get.ts';

/** Where resume states live unless --state-dir says otherwise (XDG base directory spec). */
export function defaultUploadStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME !== undefined && env.XDG_STATE_HOME !== '' ? env.XDG_STATE_HOME : path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'ferry', 'uploads');
}

export const PUT_OPTIONS = {
  path: { kind: 'string', default: undefined, arg: 'DIR', help: 'target folder on the server (tus metadata "path")', group: 'Upload' },
  name: { kind: 'string', default: undefined, arg: 'NAME', help: 'target file name (default: the local name)', group: 'Upload' },
  parallel: { kind: 'int', default: 1, min: 1, max: MAX_PARALLEL, arg: 'N', help: 'parallel parts, joined on the server by tus concatenation (when it offers it)', group: 'Upload' },
  chunkSize: { kind: 'size', default: 8 * 1024 * 1024, defaultText: '8M', min: 65_536, arg: 'SIZE', help: 'bytes per PATCH; each carries its own checksum, an interrupted one is sent again', group: 'Upload' },
  checksum: { kind: 'enum', values: ['auto', 'sha256', 'sha1', 'none'], default: 'auto', arg: 'auto|sha256|sha1|none', help: 'Upload-Checksum per PATCH (auto: sha256 if the server offers it, else sha1)', group: 'Upload' },
  sha256: { kind: 'string', default: undefined, arg: 'HEX', help: 'sha-256 of the whole file if known (otherwise computed while uploading when parts are concatenated); the server verifies it', group: 'Upload' },
  stateDir: { kind: 'path', default: undefined, arg: 'DIR', help: 'where resume states are kept (default: $XDG_STATE_HOME/ferry/uploads or ~/.local/state/ferry/uploads)', group: 'Upload' },
  ...COMMON_CLIENT_OPTIONS,
} as const satisfies Schema;

const USAGE = 'ferry put FILE URL [--path DIR] [--parallel N] [options]';
const DESCRIPTION = `Resumable upload over tus 1.0 to URL (a tus creation endpoint such as http://host/uploads/).
Each PATCH carries a checksum; with --parallel N the file is sent as N partial uploads that the
server joins (tus concatenation), and the whole file's sha-256 goes along for the server to
verify. Run the same command again after an interruption to continue where the server is.`;

export function putHelp(): string {
  return formatHelp(USAGE, DESCRIPTION, PUT_OPTIONS, `Examples:
  ferry put big.tar http://127.0.0.1:8080/uploads/ --path backups/
  ferry put model.bin http://127.0.0.1:8080/uploads/ --parallel 4 -H "Authorization: Bearer $TOKEN"

${EXIT_CODES_HELP}`);
}

/** `ferry put …` → exit code. */
export async function runPut(argv: string[]): Promise<number> {
  const parsed = parseClientArgs('ferry put', PUT_OPTIONS, argv, putHelp);
  if (typeof parsed === 'number') return parsed;
  const { flags, headers } = parsed;
  const v = flags.values as { path?: string; name?: string; parallel?: number; chunkSize?: number; checksum?: 'auto' | 'sha256' | 'sha1' | 'none'; sha256?: string; stateDir?: string; limitRate?: number; retries?: number; timeout?: number; connectTimeout?: number; quiet?: boolean; json?: boolean };
  const reporter = createReporter({ command: 'ferry put', quiet: v.quiet === true, json: v.json === true, stream: process.stderr });
  if (flags.positionals.length !== 2) {
    return reporter.fail(new OptionError(`expected FILE and URL, got ${flags.positionals.length} argument(s) (see ferry put --help)`));
  }
  if (v.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(v.sha256)) {
    return reporter.fail(new OptionError(`invalid value for option --sha256: ${JSON.stringify(v.sha256)}; expected 64 hex digits`));
  }
  const [file, endpoint] = flags.positionals as [string, string];
  try {
    await withInterrupts((signal) => upload({
      file,
      endpoint,
      ...(v.path === undefined ? {} : { folder: v.path }),
      ...(v.name === undefined ? {} : { name: v.name }),
      parallel: v.parallel ?? PUT_OPTIONS.parallel.default,
      chunkBytes: v.chunkSize ?? PUT_OPTIONS.chunkSize.default,
      checksum: v.checksum ?? 'auto',
      ...(v.sha256 === undefined ? {} : { sha256: v.sha256.toLowerCase() }),
      headers,
      ...(v.limitRate === undefined ? {} : { limitRateBytesPerSec: v.limitRate }),
      retries: v.retries ?? PUT_OPTIONS.retries.default,
      idleTimeoutMs: v.timeout ?? PUT_OPTIONS.timeout.default,
      connectTimeoutMs: v.connectTimeout ?? PUT_OPTIONS.connectTimeout.default,
      stateDir: path.resolve(v.stateDir ?? defaultUploadStateDir()),
      progressIntervalMs: reporter.mode === 'bar' ? 250 : 1000,
      signal,
      onEvent: (e) => { reporter.onEvent(e); },
    }));
    reporter.finish();
    return EXIT_CODES.ok;
  } catch (err) {
    return reporter.fail(err);
  }
}
