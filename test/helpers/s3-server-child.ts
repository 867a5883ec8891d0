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
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';

interface S3Object { content: Readable | null; range?: { start: number; end: number }; size: number }
interface Store {
  getObject(bucket: string, key: string, options?: { start?: number; end?: number }): Promise<S3Object | null>;
  getResourcePath(bucket: string, key: string, resource: string): string;
  existsObject(bucket: string, key: string): Promise<boolean>;
}
interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  headers: Record<string, string | string[] | undefined>;
  status: number;
  type: string;
  body: unknown;
}
type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;
interface S3rverInstance { store: Store; middleware: Middleware[]; run(): Promise<{ port: number }>; close(): Promise<void> }
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

// s3rver 5.0.0 lacks ListParts, AbortMultipartUpload and ListMultipartUploads (405 / 501) and
// ignores `If-None-Match: *` on PutObject, CopyObject and CompleteMultipartUpload: all of them
// are what S3 offers and the write half uses. They are added here, in front of s3rver's router,
// on its own multipart layout (`<bucket>/._S3rver_uploads/<uploadId>/{key,N,N.md5}`).
// Signatures are not checked on these few (the test process is the only client).
server.middleware.splice(2, 0, multipartExtensions(directory));

const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.stdin.resume();
process.stdin.once('end', () => { void server.close().finally(() => process.exit(0)); });
process.once('SIGTERM', () => { void server.close().finally(() => process.exit(0)); });

function xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function answer(ctx: KoaContext, status: number, body: string): void {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
}

function s3Error(ctx: KoaContext, status: number, code: string, message: string): void {
  answer(ctx, status, `<Error><Code>${code}</Code><Message>${xml(message)}</Message></Error>`);
}

/** The extensions described above, as one Koa middleware. */
function multipartExtensions(dir: string): Middleware {
  return async (ctx, next) => {
    const [, bucketRaw = '', ...rest] = ctx.path.split('/');
    const bucket = decodeURIComponent(bucketRaw);
    const key = decodeURIComponent(rest.join('/'));
    const uploads = path.join(dir, bucket, '._S3rver_uploads');
    const q = ctx.query;
    const uploadId = typeof q.uploadId === 'string' ? q.uploadId : undefined;
    const uploadDir = uploadId === undefined || !/^[0-9a-f]+$/.test(uploadId) ? undefined : path.join(uploads, uploadId);
    const exists = async (p: string): Promise<boolean> => stat(p).then(() => true, () => false);
    if (bucket === '') return next();
    if (key === '' && ctx.method === 'GET' && 'uploads' in q) {
      // ListMultipartUploads (one page; the tests hold few).
      const prefix = typeof q.prefix === 'string' ? q.prefix : '';
      const ids = await readdir(uploads).catch(() => [] as string[]);
      const rows: string[] = [];
      for (const id of ids.sort()) {
        const k = await readFile(path.join(uploads, id, 'key'), 'utf8').catch(() => undefined);
        if (k === undefined || !k.startsWith(prefix)) continue;
        const st = await stat(path.join(uploads, id, 'key'));
        rows.push(`<Upload><Key>${xml(k)}</Key><UploadId>${id}</UploadId><Initiated>${st.mtime.toISOString()}</Initiated></Upload>`);
      }
      answer(ctx, 200, `<ListMultipartUploadsResult><Bucket>${xml(bucket)}</Bucket><Prefix>${xml(prefix)}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>${rows.join('')}</ListMultipartUploadsResult>`);
      return;
    }
    if (key !== '' && uploadDir !== undefined) {
      const known = await exists(path.join(uploadDir, 'key'));
      if (!known) return s3Error(ctx, 404, 'NoSuchUpload', 'The specified upload does not exist.');
      if (ctx.method === 'GET') {
        // ListParts (one page).
        const parts: string[] = [];
        const names = (await readdir(uploadDir)).filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
        for (const n of names) {
          const st = await stat(path.join(uploadDir, String(n)));
          const md5 = await readFile(path.join(uploadDir, `${n}.md5`), 'utf8');
          parts.push(`<Part><PartNumber>${n}</PartNumber><ETag>"${md5}"</ETag><Size>${st.size}</Size><LastModified>${st.mtime.toISOString()}</LastModified></Part>`);
        }
        answer(ctx, 200, `<ListPartsResult><Bucket>${xml(bucket)}</Bucket><Key>${xml(key)}</Key><UploadId>${uploadId}</UploadId><MaxParts>1000</MaxParts><IsTruncated>false</IsTruncated>${parts.join('')}</ListPartsResult>`);
        return;
      }
      if (ctx.method === 'DELETE') {
        // AbortMultipartUpload.
        await rm(uploadDir, { recursive: true, force: true });
        ctx.status = 204;
        ctx.body = null;
        return;
      }
    }
    // Conditional writes: PutObject / CopyObject / CompleteMultipartUpload with If-None-Match: *
    // (the SDK adds `?x-id=PutObject` and the like to the URL).
    const writes = (ctx.method === 'PUT' && Object.keys(q).every((k) => k === 'x-id')) || (ctx.method === 'POST' && uploadId !== undefined);
    if (key !== '' && writes && ctx.headers['if-none-match'] === '*' && await server.store.existsObject(bucket, key)) {
      return s3Error(ctx, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
    }
    return next();
  };
}
