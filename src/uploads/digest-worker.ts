/**
 * Worker thread of the DigestEngine (digest-engine.ts): keeps running sha-256 + CRC-32 states
 * by id and updates them with the byte batches the main thread transfers, so hashing an upload
 * runs beside the socket reads and disk writes instead of in front of them. Messages arrive in
 * order on one port, so a snapshot always sees exactly the bytes posted before it.
 */
import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
import type { DigestRequest } from './digest-engine.ts';

interface State { sha: Hash; crc: number; bytes: number }

const states = new Map<number, State>();
const port = parentPort;
if (port === null) throw new Error('digest-worker runs as a worker thread');

port.on('message', (m: DigestRequest) => {
  switch (m.op) {
    case 'new': {
      const from = m.from === undefined ? undefined : states.get(m.from);
      states.set(m.id, from === undefined ? { sha: createHash('sha256'), crc: 0, bytes: 0 } : { sha: from.sha.copy(), crc: from.crc, bytes: from.bytes });
      break;
    }
    case 'update': {
      const s = states.get(m.id);
      const data = new Uint8Array(m.buffer, 0, m.length);
      if (s !== undefined) {
        s.sha.update(data);
        s.crc = crc32(data, s.crc);
        s.bytes += m.length;
      }
      // The batch goes back to the main thread's pool: no allocation per MiB hashed.
      port.postMessage({ op: 'ack', bytes: m.length, buffer: m.buffer }, [m.buffer]);
      break;
    }
    case 'digest': {
      const s = states.get(m.id);
      port.postMessage(s === undefined
        ? { op: 'result', req: m.req, error: 'unknown digest state' }
        : { op: 'result', req: m.req, sha256: s.sha.copy().digest('hex'), crc32: s.crc >>> 0, bytes: s.bytes });
      break;
    }
    case 'free':
      states.delete(m.id);
      break;
  }
});
