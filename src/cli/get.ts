/**
 * `ferry get URL [-o FILE] [--segments N] [--sha256 HEX] …`: the command-line face of
 * src/download/. Parses flags with the shared option-schema kit, shows progress (a bar on a
 * terminal, NDJSON otherwise), maps errors to documented exit codes. Also exports the pieces
 * `ferry put` shares (reporter, exit codes, header flags).
 */
import path from 'node:path';
import { formatHelp, OptionError, parseFlags, type Schema } from '../config/index.ts';
import { FerryError, formatBytes, type FerryErrorCode } from '../core/index.ts';
import { download, formatEta, formatProgressLine, MAX_SEGMENTS, type TransferEvent } from '../download/index.ts';

/** Exit codes of `ferry get` and `ferry put` (documented in --help and docs/cli.md). */
export const EXIT_CODES = {
  ok: 0,
  failure: 1,
  usage: 2,
  httpStatus: 3,
  retriesExhausted: 4,
  checksum: 5,
  changed: 6,
  localIo: 7,
  protocol: 8,
  interrupted: 130,
} as const;

export const EXIT_CODES_HELP = `Exit codes:
  0    done: the file is complete, verified and in place
  1    unexpected error
  2    bad option or argument
  3    the server answered with a final error (4xx other than 408/429, e.g. 401, 403, 404)
  4    gave up after repeated network failures, timeouts, 408, 429 or 5xx answers
  5    sha-256 mismatch (--sha256 or the server's Repr-Digest); nothing at the final name
  6    the file changed on the server and --no-restart was given (or it kept changing)
  7    local file error (disk full, permission denied); progress is kept, run again
  8    the server broke the protocol (wrong Content-Range, too many redirects, no tus)
  130  interrupted (SIGINT/SIGTERM); progress is kept, run the same command again`;

const CODE_TO_EXIT: Partial<Record<FerryErrorCode, number>> = {
  FERRY_ERR_CLIENT_HTTP_STATUS: EXIT_CODES.httpStatus,
  FERRY_ERR_CLIENT_RETRIES_EXHAUSTED: EXIT_CODES.retriesExhausted,
  FERRY_ERR_DOWNLOAD_CHECKSUM_MISMATCH: EXIT_CODES.checksum,
  FERRY_ERR_UPLOAD_CHECKSUM_MISMATCH: EXIT_CODES.checksum,
  FERRY_ERR_DOWNLOAD_CHANGED: EXIT_CODES.changed,
  FERRY_ERR_CLIENT_LOCAL_IO: EXIT_CODES.localIo,
  FERRY_ERR_PUT_FILE_CHANGED: EXIT_CODES.localIo,
  FERRY_ERR_CLIENT_PROTOCOL: EXIT_CODES.protocol,
  FERRY_ERR_PUT_NOT_SUPPORTED: EXIT_CODES.protocol,
  FERRY_ERR_CLIENT_ABORTED: EXIT_CODES.interrupted,
  FERRY_ERR_CLIENT_BAD_URL: EXIT_CODES.usage,
  FERRY_ERR_BAD_REQUEST: EXIT_CODES.usage,
};

export function exitCodeFor(err: unknown): number {
  if (err instanceof OptionError) return EXIT_CODES.usage;
  if (err instanceof FerryError) return CODE_TO_EXIT[err.code] ?? EXIT_CODES.failure;
  return EXIT_CODES.failure;
}

/** Options shared by get and put. */
export const COMMON_CLIENT_OPTIONS = {
  limitRate: { kind: 'rate', default: undefined, arg: 'RATE', help: 'bytes per second for the whole transfer, e.g. 10M', group: 'Transfer' },
  header: { kind: 'string', default: undefined, short: 'H', arg: '"NAME: VALUE"', help: 'extra request header, repeatable; Authorization and Cookie go only to the origin of the URL given', group: 'Transfer' },
  retries: { kind: 'int', default: 10, min: 0, max: 1000, arg: 'N', help: 'failed attempts in a row (without progress) before giving up; backoff with jitter, Retry-After honoured', group: 'Transfer' },
  timeout: { kind: 'duration', default: 30_000, defaultText: '30s', min: 1, arg: 'D', help: 'an attempt that receives nothing for this long fails (and is retried)', group: 'Transfer' },
  connectTimeout: { kind: 'duration', default: 10_000, defaultText: '10s', min: 1, arg: 'D', help: 'time to establish a connection', group: 'Transfer' },
  quiet: { kind: 'bool', default: false, short: 'q', help: 'no progress output; errors only', group: 'Output' },
  json: { kind: 'bool', default: false, help: 'NDJSON events on stderr even on a terminal (the default when stderr is not a terminal)', group: 'Output' },
} as const satisfies Schema;

export const GET_OPTIONS = {
  output: { kind: 'path', default: undefined, short: 'o', arg: 'FILE', help: 'where to save (default: the last part of the URL path); "-" writes to stdout (one stream, no resume)', group: 'Download' },
  segments: { kind: 'int', default: 4, short: 's', min: 1, max: MAX_SEGMENTS, arg: 'N', help: 'parallel ranged connections', group: 'Download' },
  minSegmentSize: { kind: 'size', default: 1024 * 1024, defaultText: '1M', min: 65_536, arg: 'SIZE', help: 'smallest segment worth its own connection', group: 'Download' },
  sha256: { kind: 'string', default: undefined, arg: 'HEX', help: "expected sha-256, checked before the rename (otherwise the server's Repr-Digest, if sent)", group: 'Download' },
  noRestart: { kind: 'bool', default: false, help: 'if the file changed on the server, fail (exit 6) instead of starting again from zero', group: 'Download' },
  keepPart: { kind: 'bool', default: false, help: 'on a sha-256 mismatch keep FILE.part for inspection (default: remove it)', group: 'Download' },
  maxRedirects: { kind: 'int', default: 10, min: 0, max: 100, arg: 'N', help: 'redirects followed; credentials are never sent to another origin', group: 'Download' },
  fsync: { kind: 'bool', default: false, help: 'flush the file to disk before the rename (durable against power loss; slower)', group: 'Download' },
  ...COMMON_CLIENT_OPTIONS,
} as const satisfies Schema;

/**
 * `-H`/`--header` may repeat, and a header value may contain commas, so they are taken out
 * of argv before the schema parser (which keeps the last value of a flag) sees them.
 */
export function extractHeaders(argv: readonly string[]): { rest: string[]; headers: [string, string][] } {
  const rest: string[] = [];
  const headers: [string, string][] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') { rest.push(...argv.slice(i)); break; }
    let value: string | undefined;
    if (arg === '-H' || arg === '--header') {
      value = argv[i + 1];
      if (value === undefined) throw new OptionError(`option ${arg} needs a value: "Name: value"`);
      i++;
    } else if (arg.startsWith('--header=')) {
      value = arg.slice('--header='.length);
    } else {
      rest.push(arg);
      continue;
    }
    const colon = value.indexOf(':');
    const name = colon === -1 ? '' : value.slice(0, colon).trim();
    if (colon === -1 || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) {
      throw new OptionError(`invalid value for option --header: ${JSON.stringify(value)}; expected "Name: value"`);
    }
    headers.push([name, value.slice(colon + 1).trim()]);
  }
  return { rest, headers };
}

/**
 * The start every client command shares: `-H` headers out, flags parsed, `--help` printed.
 * Returns the exit code when the command is already done (usage error or help).
 */
export function parseClientArgs(command: string, schema: Schema, argv: readonly string[], help: () => string): number | { flags: ReturnType<typeof parseFlags>; headers: [string, string][] } {
  try {
    const extracted = extractHeaders(argv);
    const flags = parseFlags(schema, extracted.rest);
    if (flags.help) {
      process.stdout.write(`${help()}\n`);
      return EXIT_CODES.ok;
    }
    return { flags, headers: extracted.headers };
  } catch (err) {
    process.stderr.write(`${command}: ${(err as Error).message}\n`);
    return EXIT_CODES.usage;
  }
}

/** The file name `ferry get` saves to when -o is not given: the URL's last path segment. */
export function defaultOutputName(url: string): string {
  let name: string;
  try {
    const segments = new URL(url).pathname.split('/');
    name = decodeURIComponent(segments[segments.length - 1] ?? '');
  } catch {
    name = '';
  }
  name = name.replace(/[/\\\0]/g, '_').trim();
  return name === '' || name === '.' || name === '..' ? 'download' : name;
}

export interface ReporterOptions {
  readonly command: string;
  readonly quiet: boolean;
  readonly json: boolean;
  readonly stream: NodeJS.WriteStream;
}

export interface Reporter {
  readonly mode: 'bar' | 'ndjson' | 'quiet';
  onEvent(event: TransferEvent): void;
  /** Prints an error (one line, or an NDJSON error event) and returns the exit code. */
  fail(err: unknown): number;
  finish(): void;
}

/** Progress output: a one-line bar on a terminal, NDJSON events otherwise, nothing with --quiet. */
export function createReporter(options: ReporterOptions): Reporter {
  const { stream, command } = options;
  const mode = options.quiet ? 'quiet' : options.json || stream.isTTY !== true ? 'ndjson' : 'bar';
  let barShown = false;
  const clearBar = (): void => {
    if (barShown) { stream.write('\r\x1b[2K'); barShown = false; }
  };
  const line = (text: string): void => {
    clearBar();
    stream.write(`${text}\n`);
  };
  const ndjson = (event: Record<string, unknown>): void => {
    stream.write(`${JSON.stringify({ ...event, time: new Date().toISOString() })}\n`);
  };
  return {
    mode,
    onEvent(event) {
      if (mode === 'quiet') return;
      if (mode === 'ndjson') { ndjson({ ...event }); return; }
      switch (event.type) {
        case 'progress':
          stream.write(`\r\x1b[2K${formatProgressLine(event, Math.max(40, (stream.columns > 0 ? stream.columns : 80) - 1))}`);
          barShown = true;
          break;
        case 'start':
          if (event.resumedBytes > 0 && event.sizeBytes !== null) line(`${command}: resuming at ${formatBytes(event.resumedBytes)} of ${formatBytes(event.sizeBytes)}`);
          break;
        case 'retry':
          line(`${command}: ${event.reason}; retrying${event.delayMs > 0 ? ` in ${(event.delayMs / 1000).toFixed(1)}s` : ''} (attempt ${event.attempt + 1})`);
          break;
        case 'restart':
          line(`${command}: ${event.reason}`);
          break;
        case 'resume':
          if (event.discardedBytes > 0) line(`${command}: ${formatBytes(event.discardedBytes)} on disk no longer matched their CRC-32 and will be fetched again`);
          break;
        case 'warning':
          line(`${command}: warning: ${event.message}`);
          break;
        case 'verify':
          break;
        case 'done': {
          const secs = event.durationMs / 1000;
          const rate = secs > 0 ? `, ${formatBytes(event.sizeBytes / secs)}/s` : '';
          line(`${command}: ${event.output} ${formatBytes(event.sizeBytes)} in ${formatEta(event.durationMs)}${rate}${event.sha256 !== null ? ', sha-256 verified' : ''}`);
          break;
        }
      }
    },
    fail(err) {
      const exitCode = exitCodeFor(err);
      const message = err instanceof Error ? err.message : String(err);
      if (mode === 'ndjson') {
        ndjson({ type: 'error', code: err instanceof FerryError ? err.code : 'FERRY_ERR_INTERNAL', message, exitCode });
      } else {
        line(`${command}: ${message}`);
      }
      return exitCode;
    },
    finish() {
      clearBar();
    },
  };
}

/**
 * Runs `fn` with an AbortSignal that SIGINT/SIGTERM abort (a second signal exits at once).
 */
export async function withInterrupts<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let count = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    count++;
    if (count > 1) process.exit(EXIT_CODES.interrupted);
    controller.abort(new FerryError('FERRY_ERR_CLIENT_ABORTED', `interrupted by ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await fn(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

const USAGE = 'ferry get URL [-o FILE] [--segments N] [--sha256 HEX] [--limit-rate RATE] [options]';
const DESCRIPTION = `Resumable, segmented, verified download from any HTTP server. Bytes go to FILE.part
with the resume state in FILE.part.json; when the file is complete and verified it is renamed
to FILE. Run the same command again after an interruption to continue. Every ranged request
carries If-Range with the validator the download started with, so a file that changes on the
server is never stitched from two versions.`;

export function getHelp(): string {
  return formatHelp(USAGE, DESCRIPTION, GET_OPTIONS, `Examples:
  ferry get http://127.0.0.1:8080/files/model.bin -o model.bin --segments 8 --sha256 <hex>
  ferry get https://example.org/big.iso --limit-rate 10M -H "Authorization: Bearer $TOKEN"
  ferry get http://host/log.txt -o - | gzip > log.gz

${EXIT_CODES_HELP}`);
}

/** `ferry get …` → exit code. */
export async function runGet(argv: string[]): Promise<number> {
  const parsed = parseClientArgs('ferry get', GET_OPTIONS, argv, getHelp);
  if (typeof parsed === 'number') return parsed;
  const { flags, headers } = parsed;
  const v = flags.values as { output?: string; segments?: number; minSegmentSize?: number; sha256?: string; noRestart?: boolean; keepPart?: boolean; maxRedirects?: number; fsync?: boolean; limitRate?: number; retries?: number; timeout?: number; connectTimeout?: number; quiet?: boolean; json?: boolean };
  const reporter = createReporter({ command: 'ferry get', quiet: v.quiet === true, json: v.json === true, stream: process.stderr });
  if (flags.positionals.length !== 1) {
    return reporter.fail(new OptionError(flags.positionals.length === 0 ? 'missing URL (see ferry get --help)' : `expected one URL, got ${flags.positionals.length} arguments`));
  }
  const url = flags.positionals[0]!;
  if (v.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(v.sha256)) {
    return reporter.fail(new OptionError(`invalid value for option --sha256: ${JSON.stringify(v.sha256)}; expected 64 hex digits`));
  }
  const toStdout = v.output === '-';
  const output = toStdout ? process.stdout : path.resolve(v.output ?? defaultOutputName(url));
  try {
    await withInterrupts((signal) => download({
      url,
      output,
      segments: toStdout ? 1 : v.segments ?? GET_OPTIONS.segments.default,
      minSegmentBytes: v.minSegmentSize ?? GET_OPTIONS.minSegmentSize.default,
      ...(v.sha256 === undefined ? {} : { sha256: v.sha256 }),
      headers,
      ...(v.limitRate === undefined ? {} : { limitRateBytesPerSec: v.limitRate }),
      retries: v.retries ?? GET_OPTIONS.retries.default,
      idleTimeoutMs: v.timeout ?? GET_OPTIONS.timeout.default,
      connectTimeoutMs: v.connectTimeout ?? GET_OPTIONS.connectTimeout.default,
      maxRedirects: v.maxRedirects ?? GET_OPTIONS.maxRedirects.default,
      restartOnChange: v.noRestart !== true,
      keepPartOnMismatch: v.keepPart === true,
      fsync: v.fsync === true,
      // A command line owns its event loop: write from the socket buffer on this thread (see
      // PieceWriterOptions.syncWrites; ~2× less CPU than handing batches to the thread pool).
      syncWrites: true,
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
