/**
 * The one root pino logger. Secrets never reach a log line: Authorization, cookies, tokens
 * and signed-link signatures are redacted, both as headers and inside logged URLs.
 */
import pino, { type Logger, type DestinationStream } from 'pino';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'token',
  'authorization',
  'sig',
];

const SECRET_QUERY = /([?&](?:sig|token|access_token|signature|jwt)=)[^&#]*/gi;

/** Removes secrets from a URL's query string for logging. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY, '$1[Redacted]');
}

export interface CreateLoggerOptions {
  level: string;
  /** Defaults to stdout. Tests pass a stream to read lines. */
  destination?: DestinationStream;
}

export function createLogger(options: CreateLoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'ferry' },
      redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: {
        err: pino.stdSerializers.err,
      },
    },
    options.destination ?? pino.destination({ sync: false }),
  );
}

export type { Logger };
