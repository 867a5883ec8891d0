/**
 * Runs @20minutes/s3rver (an S3-compatible test server) on 127.0.0.1 port 0 and prints
 * `{"port":N}` on stdout. Started by test/helpers/s3-server.ts with `--openssl-legacy-provider`:
 * s3rver encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 only offers in
 * its legacy provider (docs/storage.md, "The S3 test server"). Exits when stdin closes, so it
 * never outlives the test process. Arguments: <directory> <bucket> [port] (a restart reuses
 * the port and directory of a server that was killed).
 */
import { createRequire } from 'node:module';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';

interface S3Object { content: Readable | null; range?: { start: number; end: number }; size: number }
interface Store {
  getObject(bucket: string, key: string, options?: { start?: number; end?: number }): Promise<S3Object | null>;
  getResourcePath(bucket: string, key: string, resource: string): string;
}
interface S3rverInstance { store: Store; run(): Promise<{ port: number }>; close(): Promise<void> }
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;

const [directory, bucket, portArg] = process.argv.slice(2);
if (directory === undefined || bucket === undefined) throw new Error('usage: s3-server-child.ts <directory> <bucket> [port]');

const S3rver = createRequire(import.meta.url)('@20minutes/s3rver') as S3rverClass;
const server = new S3rver({
  address: '127.0.0.1',
  port: portArg === undefined ? 0 : Number(portArg),
  silent: true,
  directory,
  configureBuckets: [{ name: bucket }],
  // s3rver 5.0.0 computes a different SigV4 canonical request than AWS SDK v3 for bucket-level
  // requests (ListObjectsV2, HeadBucket): every list fails SignatureDoesNotMatch. Unknown
  // access key ids are still refused (InvalidAccessKeyId).
  allowMismatchedSignatures: true,
});

// s3rver reads `Range: bytes=0-0` as "from 0 to the end" (`options.end || Infinity`) and answers
// the whole object; fixed here so the product's strict Content-Range check sees what S3 sends.
const getObject = server.store.getObject.bind(server.store);
server.store.getObject = async (b, key, options) => {
  if (options?.end !== 0) return getObject(b, key, options);
  const obj = await getObject(b, key, { start: 0 });
  if (obj?.content == null) return obj;
  obj.content.destroy();
  obj.content = createReadStream(server.store.getResourcePath(b, key, 'object'), { start: 0, end: 0 });
  obj.range = { start: 0, end: 0 };
  return obj;
};

const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.stdin.resume();
process.stdin.once('end', () => { void server.close().finally(() => process.exit(0)); });
process.once('SIGTERM', () => { void server.close().finally(() => process.exit(0)); });
