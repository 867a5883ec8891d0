/**
 * A real S3-compatible server on loopback for tests: @20minutes/s3rver in a child process
 * (test/helpers/s3-server-child.ts) on 127.0.0.1 port 0, with its own temp directory and one
 * bucket. Nothing global is registered in the test process. Its gaps, and how the tests work
 * around them, are in docs/storage.md.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { S3Client } from '@aws-sdk/client-s3';
import { makeTempDir } from './temp-dir.ts';

/** The test server's one account (any other access key id is refused). */
export const S3_TEST_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface S3TestServer extends AsyncDisposable {
  /** `http://127.0.0.1:PORT` */
  readonly endpoint: string;
  readonly bucket: string;
  readonly credentials: typeof S3_TEST_CREDENTIALS;
  /** Environment for a child Ferry (`AWS_*`; the standard credential chain reads it). */
  readonly env: Readonly<Record<string, string>>;
  /**
   * Writes many small objects straight into the server's directory, in the layout s3rver's
   * filesystem store uses (`<bucket>/<key>._S3rver_object` and its `.md5`): 2,500 PutObject calls take ~10 s on two cores, this takes a fraction of one.
   * For fixtures only; the product always goes through the S3 API. s3rver answers the object
   * file's mtime as Last-Modified, so `mtimeMs` sets what HeadObject reports (PutObject
   * cannot choose it). A key ending in `/` is a zero-byte folder marker.
   */
  seedObjects(files: Readonly<Record<string, string | Uint8Array>>, options?: { readonly mtimeMs?: number }): Promise<void>;
  /** An SDK client for fixtures (path style, checksums only when required). */
  client(): S3Client;
  /** The server process's PID now (it changes on restart). */
  readonly pid: number;
  /** Kills the server process (SIGKILL, by PID) as a crash would; its data directory stays. */
  kill(): Promise<void>;
  /** Starts a new server process on the same port and data directory (after kill). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

const CHILD = path.join(import.meta.dirname, 's3-server-child.ts');

export async function startS3Server(options: { bucket?: string } = {}): Promise<S3TestServer> {
  const bucket = options.bucket ?? 'ferry-test';
  const tmp = await makeTempDir('ferry-s3-');
  let proc: Spawned;
  try {
    proc = await spawnChild(tmp.dir, bucket);
  } catch (err) {
    await tmp.remove();
    throw err;
  }
  const port = proc.port;
  const endpoint = `http://127.0.0.1:${port}`;
  const clients: S3Client[] = [];
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    for (const c of clients) c.destroy();
    const { child, exited } = proc;
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin.end();
      child.kill('SIGTERM');
      await exited;
    }
    await tmp.remove();
  };
  return {
    endpoint,
    bucket,
    credentials: S3_TEST_CREDENTIALS,
    env: { AWS_ACCESS_KEY_ID: S3_TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3_TEST_CREDENTIALS.secretAccessKey, AWS_REGION: 'us-east-1' },
    client() {
      const c = new S3Client({
        endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { ...S3_TEST_CREDENTIALS },
        requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
      });
      clients.push(c);
      return c;
    },
    async seedObjects(files, seedOptions = {}) {
      const entries = Object.entries(files);
      for (let i = 0; i < entries.length; i += 64) {
        await Promise.all(entries.slice(i, i + 64).map(async ([key, body]) => {
          const file = path.join(tmp.dir, bucket, `${key}._S3rver_object`);
          await mkdir(path.dirname(file), { recursive: true });
          await writeFile(file, body);
          await writeFile(`${file}.md5`, createHash('md5').update(body).digest('hex'));
          if (seedOptions.mtimeMs !== undefined) await utimes(file, seedOptions.mtimeMs / 1000, seedOptions.mtimeMs / 1000);
        }));
      }
    },
    get pid() { return proc.child.pid ?? -1; },
    async kill() {
      const { child, exited } = proc;
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      process.kill(child.pid, 'SIGKILL');
      await exited;
    },
    async restart() {
      proc = await spawnChild(tmp.dir, bucket, port);
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

interface Spawned { readonly child: ChildProcessWithoutNullStreams; readonly exited: Promise<unknown>; readonly port: number }

/** Starts s3-server-child.ts and resolves once it prints its port. */
async function spawnChild(dir: string, bucket: string, port?: number): Promise<Spawned> {
  const child = spawn(process.execPath, ['--openssl-legacy-provider', CHILD, dir, bucket, ...(port === undefined ? [] : [String(port)])], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = once(child, 'exit');
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const got = await new Promise<number>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.once('line', (line) => { resolve((JSON.parse(line) as { port: number }).port); rl.close(); });
    void exited.then(([code]) => { reject(new Error(`s3 test server exited (${String(code)}): ${stderr}`)); });
  });
  return { child, exited, port: got };
}
