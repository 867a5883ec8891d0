/**
 * `ferry serve` options: the one schema behind flags (`--kebab-case`), environment variables
 * (`FERRY_UPPER_SNAKE`) and the JSON config file (camelCase keys). SPEC §3 names are contract.
 * Areas add their options in their own section below.
 */
import type { ConfigOf, Schema } from './schema-kit.ts';

export const SERVE_OPTIONS = {
  // --- server -----------------------------------------------------------------
  root: { kind: 'path', default: './files', help: 'folder served (created if missing)', arg: 'DIR', group: 'Server' },
  host: { kind: 'string', default: '127.0.0.1', help: 'listen address', arg: 'HOST', group: 'Server' },
  port: { kind: 'int', default: 8080, min: 0, max: 65535, help: 'listen port (0 = any free port)', arg: 'PORT', group: 'Server' },
  stateDir: { kind: 'path', default: './.ferry', help: 'persisted state (upload parts, caches, tasks)', arg: 'DIR', group: 'Server' },
  config: { kind: 'path', default: undefined, help: 'JSON config file (same keys as the flags, camelCase)', arg: 'FILE', group: 'Server' },
  logLevel: { kind: 'enum', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', help: 'log level', arg: 'LEVEL', group: 'Server' },
  shutdownGrace: { kind: 'duration', default: 30_000, defaultText: '30s', help: 'drain time for in-flight transfers on SIGTERM/SIGINT', arg: 'D', group: 'Server' },
  headersTimeout: { kind: 'duration', default: 20_000, defaultText: '20s', min: 1, help: 'time a client has to send the request headers (slowloris guard)', arg: 'D', group: 'Server' },
  keepAliveTimeout: { kind: 'duration', default: 5_000, defaultText: '5s', help: 'idle keep-alive connection timeout', arg: 'D', group: 'Server' },
  trustProxy: { kind: 'proxy-trust', default: false, arg: 'WHO', help: 'proxies whose X-Forwarded-For/-Proto/-Host are believed: addresses/CIDRs (or loopback, linklocal, uniquelocal), or a hop count; the client is the right-most address not trusted. Bare flag or true = loopback', group: 'Server' },
  maxConnections: { kind: 'int', default: undefined, defaultText: 'from the fd limit', min: 1, help: 'open connections at most; more are closed at once (default: (fd limit - fd reserve) / 2)', arg: 'N', group: 'Server' },
  maxConnectionsClient: { kind: 'int', default: undefined, defaultText: 'max-connections / 4', min: 1, help: 'open connections per client address (never applied to a trusted proxy)', arg: 'N', group: 'Server' },
  bodyTimeout: { kind: 'duration', default: 20_000, defaultText: '20s', min: 1, help: 'time a client has to send a non-upload request body (JSON of /api/*), counted while the server waits for it', arg: 'D', group: 'Server' },
  minUploadRate: { kind: 'rate', default: 1024, defaultText: '1k', help: 'slowest upload body (PUT /files, tus) averaged over each --send-timeout the server waits for it; slower connections are closed (0 = off)', arg: 'RATE', group: 'Server' },
  metricsPublic: { kind: 'bool', default: false, help: 'serve /metrics to everyone (default: loopback and admin)', group: 'Server' },

  // --- downloads --------------------------------------------------------------
  dotfiles: { kind: 'enum', values: ['allow', 'deny'], default: 'deny', help: 'serve names starting with "."', arg: 'allow|deny', group: 'Downloads' },
  followSymlinks: { kind: 'enum', values: ['inside', 'never'], default: 'inside', help: 'follow symlinks that resolve inside the root, or none', arg: 'inside|never', group: 'Downloads' },
  maxRanges: { kind: 'int', default: 16, min: 1, max: 1000, help: 'most parts in one multipart/byteranges answer', arg: 'N', group: 'Downloads' },
  sendTimeout: { kind: 'duration', default: 60_000, defaultText: '60s', min: 1, help: 'close a transfer that makes no progress this long', arg: 'D', group: 'Downloads' },
  compress: { kind: 'enum', values: ['on', 'off'], default: 'on', help: 'on-the-fly compression of compressible types', arg: 'on|off', group: 'Downloads' },
  openFileReuse: { kind: 'duration', default: 1000, defaultText: '1s', help: 'concurrent requests for one file within this window share one open handle (0 = off); closed when its last reader ends', arg: 'D', group: 'Downloads' },
  readBufferSize: { kind: 'size', default: 262_144, defaultText: '256k', min: 16_384, help: 'bytes read from disk per chunk', arg: 'SIZE', group: 'Downloads' },

  // --- access -----------------------------------------------------------------
  anonymous: { kind: 'enum', values: ['read', 'none', 'auto'], default: 'auto', help: 'what a request without credentials may do (auto: read on loopback, none otherwise)', arg: 'read|none', group: 'Access' },
  tokensFile: { kind: 'path', default: undefined, help: 'JSON [{name, role, sha256}] of static tokens', arg: 'FILE', group: 'Access' },
  jwtSecret: { kind: 'string', default: undefined, help: 'HS256 secret for JWT bearer tokens', arg: 'S', group: 'Access' },
  jwtPublicKey: { kind: 'path', default: undefined, help: 'PEM public key (RS256/EdDSA) for JWT bearer tokens', arg: 'FILE', group: 'Access' },
  jwtJwksFile: { kind: 'path', default: undefined, help: 'JWKS file with the keys for JWT bearer tokens', arg: 'FILE', group: 'Access' },
  jwtIssuer: { kind: 'string', default: undefined, help: 'required JWT "iss"', arg: 'ISS', group: 'Access' },
  jwtAudience: { kind: 'string', default: undefined, help: 'required JWT "aud"', arg: 'AUD', group: 'Access' },
  jwtRoleClaim: { kind: 'string', default: 'role', help: 'JWT claim that carries the role', arg: 'NAME', group: 'Access' },
  jwtClockSkew: { kind: 'duration', default: 30_000, defaultText: '30s', help: 'tolerance for exp/nbf', arg: 'D', group: 'Access' },
  linkKeys: { kind: 'list', default: undefined, help: 'HMAC keys for signed links, first one signs (default: random per start)', arg: 'K1,K2', group: 'Access' },

  // --- traffic ----------------------------------------------------------------
  limitRate: { kind: 'rate', default: undefined, help: 'bytes/s per transfer', arg: 'RATE', group: 'Traffic' },
  limitRateAfter: { kind: 'size', default: 0, help: 'bytes sent before the per-transfer limit applies', arg: 'SIZE', group: 'Traffic' },
  limitRateClient: { kind: 'rate', default: undefined, help: 'bytes/s per client, all its connections together', arg: 'RATE', group: 'Traffic' },
  limitRateGlobal: { kind: 'rate', default: undefined, help: 'bytes/s for the whole server', arg: 'RATE', group: 'Traffic' },
  limitBurst: { kind: 'size', default: undefined, help: 'token-bucket burst (default: one second of the rate)', arg: 'SIZE', group: 'Traffic' },
  limitConnClient: { kind: 'int', default: undefined, min: 1, help: 'concurrent transfers per client', arg: 'N', group: 'Traffic' },
  limitConnGlobal: { kind: 'int', default: undefined, min: 1, help: 'concurrent transfers for the whole server', arg: 'N', group: 'Traffic' },
  limitReqClient: { kind: 'int', default: undefined, min: 1, help: 'requests per second per client (API, listings)', arg: 'N', group: 'Traffic' },
  limitUploadRate: { kind: 'rate', default: undefined, help: 'bytes/s per upload request (ingest)', arg: 'RATE', group: 'Traffic' },
  queueTimeout: { kind: 'duration', default: 10_000, defaultText: '10s', help: 'longest wait for a transfer slot before 429/503', arg: 'D', group: 'Traffic' },
  queueSize: { kind: 'int', default: 1000, min: 0, help: 'most requests waiting for a transfer slot', arg: 'N', group: 'Traffic' },
  roles: { kind: 'roles', default: undefined, fileOnly: true, help: 'per-role limits: {"read": {"limitRateClient": "2M"}, "admin": {...}}', group: 'Traffic' },

  // --- storage ----------------------------------------------------------------
  storage: { kind: 'enum', values: ['local', 's3'], default: 'local', help: 'where files live: the --root folder, or an S3-compatible bucket', arg: 'local|s3', group: 'Storage' },
  s3Bucket: { kind: 'string', default: undefined, help: 'bucket (with --storage s3; required there)', arg: 'NAME', group: 'Storage' },
  s3Prefix: { kind: 'string', default: '', defaultText: 'none', help: 'key prefix the served tree lives under (e.g. media/2026)', arg: 'PREFIX', group: 'Storage' },
  s3Endpoint: { kind: 'string', default: undefined, defaultText: 'AWS', help: 'endpoint URL of a non-AWS store (MinIO, R2, Ceph, Garage), e.g. http://127.0.0.1:9000; credentials come from the standard AWS environment variables and profile chain', arg: 'URL', group: 'Storage' },
  s3Region: { kind: 'string', default: 'us-east-1', help: 'region used to sign requests', arg: 'REGION', group: 'Storage' },
  s3PathStyle: { kind: 'bool', default: false, help: 'path-style URLs (endpoint/bucket/key), needed by most non-AWS stores', group: 'Storage' },
  s3PartSize: { kind: 'size', default: 8_388_608, defaultText: '8M', min: 5_242_880, max: 5_368_709_120, help: 'first multipart part size of uploads to S3 (5M to 5G): memory per upload in flight is one part; parts double every 2,000 so one upload of 10,000 parts holds up to 62,000 × SIZE (484 GiB at 8M)', arg: 'SIZE', group: 'Storage' },
  s3MaxSockets: { kind: 'int', default: 64, min: 1, max: 65_536, help: 'most open connections to the object store', arg: 'N', group: 'Storage' },
  s3Redirect: { kind: 'bool', default: false, help: 'answer an authorised GET /files/… of a file in the bucket with 302 to a short-lived presigned URL, so the bytes flow from the bucket directly (with --storage s3 only; docs/storage.md)', group: 'Storage' },
  s3RedirectTtl: { kind: 'duration', default: 300_000, defaultText: '5m', min: 1000, help: 'how long a presigned URL of --s3-redirect stays valid (1s to 7 days)', arg: 'D', group: 'Storage' },
  s3Timeout: { kind: 'duration', default: 5000, defaultText: '5s', min: 1, help: 'longest wait for the headers of one read request to the object store (HEAD, GET, LIST); a slower attempt is retried (3 attempts in all), then answered 503', arg: 'D', group: 'Storage' },
  s3IdleTimeout: { kind: 'duration', default: 5000, defaultText: '5s', min: 1, help: 'a download body from the object store that sends nothing for this long is cut and continued from the same offset (same version, up to 3 times in a row)', arg: 'D', group: 'Storage' },
  storageBackup: { kind: 'enum', values: ['local', 's3', 'none'], default: 'none', help: 'a backup store for reads: when the primary fails (unavailable, timeouts), reads fail over to it and uploads answer 503 until the primary answers again (docs/storage.md)', arg: 'local|s3|none', group: 'Storage' },
  backupRoot: { kind: 'path', default: undefined, help: 'folder holding the local mirror (with --storage-backup local)', arg: 'DIR', group: 'Storage' },
  backupS3Bucket: { kind: 'string', default: undefined, help: 'bucket of the backup (with --storage-backup s3); prefix, region, path style and credentials are those of the primary', arg: 'NAME', group: 'Storage' },
  backupS3Endpoint: { kind: 'string', default: undefined, defaultText: 'AWS', help: 'endpoint URL of the backup bucket (with --storage-backup s3)', arg: 'URL', group: 'Storage' },
  storageFailureThreshold: { kind: 'int', default: 5, min: 1, help: 'failures of the primary within --storage-failure-window that open its circuit breaker', arg: 'N', group: 'Storage' },
  storageFailureWindow: { kind: 'duration', default: 30_000, defaultText: '30s', min: 1, help: 'window in which primary failures are counted', arg: 'D', group: 'Storage' },
  storageCooldown: { kind: 'duration', default: 10_000, defaultText: '10s', min: 1, help: 'time an open breaker waits before one probe request tries the primary again', arg: 'D', group: 'Storage' },

  // --- uploads ----------------------------------------------------------------
  maxUploadSize: { kind: 'size', default: 107_374_182_400, defaultText: '100G', help: 'largest upload (tus Tus-Max-Size, PUT); raise it for bigger files', arg: 'SIZE', group: 'Uploads' },
  maxPendingUploads: { kind: 'int', default: 10_000, min: 1, help: 'most unfinished tus uploads on the server; more creations get 503', arg: 'N', group: 'Uploads' },
  maxPendingUploadsClient: { kind: 'int', default: 100, min: 1, help: 'most unfinished tus uploads per client (token/JWT identity, else address); more get 429', arg: 'N', group: 'Uploads' },
  maxUploadMetadata: { kind: 'size', default: 4096, defaultText: '4k', min: 256, help: 'largest tus Upload-Metadata header; larger is refused with 400', arg: 'SIZE', group: 'Uploads' },
  uploadExpiry: { kind: 'duration', default: 86_400_000, defaultText: '24h', min: 1, help: 'unfinished uploads are removed after', arg: 'D', group: 'Uploads' },
  onConflict: { kind: 'enum', values: ['rename', 'reject', 'overwrite'], default: 'rename', help: "what to do when an upload's target name exists", arg: 'rename|reject|overwrite', group: 'Uploads' },
  uploadLockWait: { kind: 'duration', default: 5_000, defaultText: '5s', min: 0, help: 'how long a request waits for the writer of the same upload to let go before 423', arg: 'D', group: 'Uploads' },
  uploadCheckpoint: { kind: 'size', default: 67_108_864, defaultText: '64M', min: 65_536, help: 'inside one long upload request, make the bytes received so far durable (fsync + offset) every SIZE', arg: 'SIZE', group: 'Uploads' },

  // --- zip --------------------------------------------------------------------
  zipMaxEntries: { kind: 'int', default: 1_000_000, min: 1, help: 'most entries in one archive', arg: 'N', group: 'Zip' },
  zipMaxBytes: { kind: 'size', default: undefined, help: 'largest archive (sum of member sizes)', arg: 'SIZE', group: 'Zip' },
  zipVerifyCrc: { kind: 'enum', values: ['first', 'always', 'never'], default: 'first', help: 'check a cached CRC-32 against the bytes when a zip streams the file whole: the first time it is used, every time, or never (docs/zip.md)', arg: 'first|always|never', group: 'Zip' },
  zipCrcPrefetch: { kind: 'size', default: 67_108_864, defaultText: '64M', help: 'not-yet-checksummed bytes a new zip may read before its first byte to avoid data descriptors (docs/zip.md)', arg: 'SIZE', group: 'Zip' },
  zipPlanConcurrency: { kind: 'int', default: 2, min: 1, help: 'zip plans (folder walks) running at once; concurrent requests for the same selection share one; others wait up to --queue-timeout, then 503', arg: 'N', group: 'Zip' },
  zipPlanEntries: { kind: 'int', default: 1_000_000, min: 1, help: 'entries all zip plans together may hold in memory while planning or streaming (1-2 KiB of RSS each); a plan that does not fit: 503 with Retry-After (413 if it alone is larger)', arg: 'N', group: 'Zip' },
} as const satisfies Schema;

export type FerryConfig = ConfigOf<typeof SERVE_OPTIONS>;
