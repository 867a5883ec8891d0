/**
 * The storage backends an integration suite runs against, so one table of requests and
 * expectations covers local disk and an S3-compatible bucket alike (parameterised, not copied):
 *
 * ```ts
 * for (const backend of backends) {
 *   describe(backend.name, () => {
 *     let fx: BackendFixture;
 *     let s: TestServer;
 *     before(async () => {
 *       fx = await backend.start({ 'a.txt': 'alpha' });
 *       s = await fx.startServer();
 *     });
 *     after(async () => { await s?.close(); await fx?.cleanup(); });
 *     test('…', async () => { … });
 *   });
 * }
 * ```
 *
 * - `local`: files in a fresh temp folder served as `--root`.
 * - `s3`: objects in a fresh bucket of a real S3-compatible server on loopback
 *   (test/helpers/s3-server.ts), served with `--storage s3 --s3-bucket … --s3-endpoint …
 *   --s3-path-style`. Fixtures are written into the server's directory (`seedObjects`), so a
 *   fixture can set Last-Modified and costs no PutObject round trips; Ferry itself only ever
 *   talks S3 to it.
 *
 * A child Ferry (`fixture.startChildServer`, or `startChildServer` with the fixture's
 * `serverArgs`, `env` and `root`) is given the credentials in its environment.
 * An in-process Ferry (`fixture.startServer`) finds the test account the way production finds
 * credentials, in the standard AWS environment variables: the s3 fixture sets
 * `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_REGION` (and `AWS_EC2_METADATA_DISABLED`,
 * so the SDK's chain never probes the instance-metadata address) in this test process while it
 * lives, and restores them on cleanup. node --test runs every file in its own process.
 */
import { mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import type { FerryConfig } from '../../src/config/index.ts';
import { startS3Server } from './s3-server.ts';
import { startChildServer, startServer, type ChildServer, type TestServer } from './start-server.ts';
import { makeTempDir } from './temp-dir.ts';

export type BackendName = 'local' | 's3';

/** Fixture files: path relative to the served root (`/`-separated) → content. */
export type BackendFiles = Readonly<Record<string, string | Uint8Array>>;

export interface SeedOptions {
  /** Modification time (Last-Modified) of every file written, ms since the epoch; default now. */
  readonly mtimeMs?: number;
}

export type ServerOptions = Partial<Record<keyof FerryConfig, unknown>>;

export interface BackendFixture extends AsyncDisposable {
  readonly name: BackendName;
  /** Symbolic links exist on local disk only: cases about them run where this is true. */
  readonly hasSymlinks: boolean;
  /** Config overrides (camelCase) that select this backend, for an in-process server. */
  readonly serverOptions: ServerOptions;
  /** The same selection as `ferry serve` arguments, for a child server. */
  readonly serverArgs: readonly string[];
  /** Environment a child server needs (the AWS credentials for s3; nothing for local). */
  readonly env: Readonly<Record<string, string>>;
  /** The served folder (local); for s3 undefined: no folder is served. */
  readonly root: string | undefined;
  /** Writes (or replaces) files, creating folders as needed. */
  seed(files: BackendFiles, options?: SeedOptions): Promise<void>;
  /** An empty folder: `mkdir` on disk, a zero-byte `rel/` marker object in a bucket. */
  seedFolder(rel: string, options?: SeedOptions): Promise<void>;
  /** Removes a file (fixtures that change between cases). */
  remove(rel: string): Promise<void>;
  /** An in-process Ferry serving this backend; `options` adds to the backend's own. Close it before `cleanup`. */
  startServer(options?: ServerOptions): Promise<TestServer>;
  /** A `ferry serve` child process serving this backend, with `args` added (test/helpers/start-server.ts). */
  startChildServer(args?: readonly string[]): Promise<ChildServer>;
  /** Stops what `start` started and removes its files; safe to call twice. */
  cleanup(): Promise<void>;
}

export interface Backend {
  readonly name: BackendName;
  /** Symbolic links exist on local disk only: cases about them run where this is true. */
  readonly hasSymlinks: boolean;
  /** A fresh, empty store (then `files`, if given, written into it). */
  start(files?: BackendFiles, options?: SeedOptions): Promise<BackendFixture>;
}

const local: Backend = {
  name: 'local',
  hasSymlinks: true,
  async start(files, seedOptions) {
    const tmp = await makeTempDir('ferry-backend-local-');
    const root = path.join(tmp.dir, 'files');
    await mkdir(root, { recursive: true });
    const abs = (rel: string): string => path.join(root, ...rel.split('/'));
    const setTime = async (file: string, options: SeedOptions): Promise<void> => {
      if (options.mtimeMs !== undefined) await utimes(file, options.mtimeMs / 1000, options.mtimeMs / 1000);
    };
    const fx: BackendFixture = {
      name: 'local',
      hasSymlinks: true,
      serverOptions: {},
      serverArgs: [],
      env: {},
      root,
      async seed(entries, options = {}) {
        for (const [rel, body] of Object.entries(entries)) {
          await mkdir(path.dirname(abs(rel)), { recursive: true });
          await writeFile(abs(rel), body);
          await setTime(abs(rel), options);
        }
      },
      async seedFolder(rel, options = {}) {
        await mkdir(abs(rel), { recursive: true });
        await setTime(abs(rel), options);
      },
      async remove(rel) { await rm(abs(rel), { force: true }); },
      startServer: (options = {}) => startServer({ root, options }),
      startChildServer: (args = []) => startChildServer([...args], { root }),
      cleanup: () => tmp.remove(),
      [Symbol.asyncDispose]: () => tmp.remove(),
    };
    if (files !== undefined) await fx.seed(files, seedOptions);
    return fx;
  },
};

const AWS_ENV_NAMES = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION', 'AWS_EC2_METADATA_DISABLED'] as const;
let awsEnvUsers = 0;
let savedAwsEnv: Partial<Record<(typeof AWS_ENV_NAMES)[number], string>> = {};

/** Puts the test account in process.env while at least one s3 fixture lives (see the file comment). */
function acquireAwsEnv(env: Readonly<Record<string, string>>): () => void {
  if (awsEnvUsers++ === 0) {
    savedAwsEnv = {};
    for (const name of AWS_ENV_NAMES) if (process.env[name] !== undefined) savedAwsEnv[name] = process.env[name];
    Object.assign(process.env, env, { AWS_EC2_METADATA_DISABLED: 'true' });
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--awsEnvUsers > 0) return;
    for (const name of AWS_ENV_NAMES) {
      const old = savedAwsEnv[name];
      if (old === undefined) delete process.env[name];
      else process.env[name] = old;
    }
  };
}

const s3: Backend = {
  name: 's3',
  hasSymlinks: false,
  async start(files, seedOptions) {
    const server = await startS3Server();
    const releaseEnv = acquireAwsEnv(server.env);
    const serverOptions: ServerOptions = { storage: 's3', s3Bucket: server.bucket, s3Endpoint: server.endpoint, s3PathStyle: true };
    let closed = false;
    const cleanup = async (): Promise<void> => {
      if (closed) return;
      closed = true;
      releaseEnv();
      await server.close();
    };
    const fx: BackendFixture = {
      name: 's3',
      hasSymlinks: false,
      serverOptions,
      serverArgs: ['--storage', 's3', '--s3-bucket', server.bucket, '--s3-endpoint', server.endpoint, '--s3-path-style'],
      env: server.env,
      root: undefined,
      seed: (entries, options = {}) => server.seedObjects(entries, options),
      seedFolder: (rel, options = {}) => server.seedObjects({ [`${rel.replace(/\/$/, '')}/`]: '' }, options),
      async remove(rel) { await server.client().send(new DeleteObjectCommand({ Bucket: server.bucket, Key: rel })); },
      startServer: (options = {}) => startServer({ options: { ...serverOptions, ...options } }),
      startChildServer: (args = []) => startChildServer([...fx.serverArgs, ...args], { env: { ...server.env } }),
      cleanup,
      [Symbol.asyncDispose]: cleanup,
    };
    if (files !== undefined) await fx.seed(files, seedOptions);
    return fx;
  },
};

/** Every backend an integration suite must pass against, local disk first. */
export const backends: readonly Backend[] = [local, s3];
