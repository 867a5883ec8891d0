/**
 * Incremental digests for tus `Upload-Checksum` (per chunk; the whole-file digests are the
 * DigestEngine's). CRC-32 is zlib's (`node:zlib` crc32), its 4 bytes big-endian as tus clients
 * send them.
 */
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { ChecksumAlgorithm } from './tus-headers.ts';

export interface Digester {
  update(chunk: Uint8Array): void;
  digest(): Buffer;
}

const NODE_HASH: Readonly<Record<Exclude<ChecksumAlgorithm, 'crc32'>, string>> = { sha1: 'sha1', sha256: 'sha256', sha512: 'sha512', md5: 'md5' };

export function createDigester(algorithm: ChecksumAlgorithm): Digester {
  if (algorithm === 'crc32') {
    let value = 0;
    return {
      update(chunk) { value = crc32(chunk, value); },
      digest() { const b = Buffer.alloc(4); b.writeUInt32BE(value >>> 0); return b; },
    };
  }
  const h = createHash(NODE_HASH[algorithm]);
  return { update: (chunk) => { h.update(chunk); }, digest: () => h.digest() };
}
