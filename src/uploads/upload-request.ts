/**
 * What every upload handler does with its request: remember a body that may stay unread (for
 * the lingering close), the public base URL, the body as a paced stream with a signal that
 * aborts when the client goes away, and the "no answer can be sent" check.
 */
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { FerryError } from '../core/errors.ts';
import { abortOnClose } from '../core/abort.ts';
import type { TransferControl, TransferSubject } from '../limits/index.ts';
import { requestBaseUrl } from './base-url.ts';
import { hasBody, type HeaderBag } from './decide-tus.ts';
import type { BodyInput, WriteOutcome } from './tus-service.ts';

/** Requests whose body may not be read to the end (see lingerUnreadBody). */
export type UnreadBodies = WeakSet<FastifyRequest>;

export function markUnread(unread: UnreadBodies, request: FastifyRequest): void {
  if (hasBody(request.headers)) unread.add(request);
}

/** The URL the client reached this server at (Location of a new upload). */
export function baseUrlOf(request: FastifyRequest, trustProxy: boolean): string {
  const addr = request.raw.socket.localAddress ?? '127.0.0.1';
  const port = request.raw.socket.localPort ?? 80;
  const localHost = addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
  return requestBaseUrl({ headers: request.headers, trustProxy, encrypted: 'encrypted' in request.raw.socket, localHost });
}

export function bodyInput(transfer: TransferControl, request: FastifyRequest, reply: FastifyReply): BodyInput {
  // Not disposed: the listener lives as long as the response (a body still being drained
  // after the answer aborts nothing, the response has finished by then).
  const gone = abortOnClose(reply.raw, () => new FerryError('FERRY_ERR_UPLOAD_INCOMPLETE', 'the client went away'));
  // No abort on shutdown: in-flight uploads get --shutdown-grace to finish (SPEC §1); when
  // the server then cuts their connections, they keep what they stored.
  const signal = gone.signal;
  const raw = request.body instanceof Readable ? request.body : Readable.from([]);
  const subject: TransferSubject = { identity: request.identity, clientAddress: request.ip };
  return {
    body: transfer.paceUpload(subject, raw, signal),
    headers: request.headers,
    trailers: () => request.raw.trailers as HeaderBag,
    signal,
  };
}

/** Taken over by another request, or the client is gone: no answer can be sent. */
export function handleCut(request: FastifyRequest, reply: FastifyReply, outcome: WriteOutcome): boolean {
  if (outcome.takenOver || reply.raw.destroyed || request.raw.socket.destroyed) {
    reply.hijack();
    request.raw.socket.destroy();
    return true;
  }
  return false;
}

const discard = (): void => {};

/**
 * An answer sent before the body was read (413, 409, 460, 507...): keep reading and
 * discarding the rest instead of closing at once. Closing a socket with unread input makes
 * the kernel send RST, which can destroy the answer before the client reads it (nginx's
 * "lingering close"). Clients stop sending when they see the answer; one that does not is
 * cut by the server's body guard (src/server/body-guard.ts), which destroys every
 * connection whose body is still arriving LINGER_MS after the answer. For an onResponse hook.
 */
export function lingerUnreadBody(unread: UnreadBodies, request: FastifyRequest): void {
  const raw = request.raw;
  if (!unread.has(request) || raw.complete || raw.destroyed) return;
  raw.unpipe();
  raw.on('data', discard);
  raw.resume();
}
