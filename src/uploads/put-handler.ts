/**
 * `PUT /files/{path}`: a streaming, atomic upload of one file (RFC 9110 §9.3.4). The
 * decisions and the write are in put-upload.ts; wiring is in register-upload-routes.ts.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { parseSafePath } from '../core/safe-path.ts';
import { hasBody } from './decide-tus.ts';
import { formatSha256Digest } from './digest-fields.ts';
import { precheckPut, receivePut } from './put-upload.ts';
import type { UploadServices } from './upload-services.ts';
import { bodyInput, markUnread, type UnreadBodies } from './upload-request.ts';

export function createPutHandler(s: UploadServices, unread: UnreadBodies): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply> {
  return async (request, reply) => {
    const raw = (request.params as { '*': string })['*'];
    const target = parseSafePath(rawPathOf(request.url, raw));
    markUnread(unread, request);
    const input = bodyInput(s.transfer, request, reply);
    await precheckPut(s.putOptions, { target, headers: request.headers, body: undefined, signal: input.signal });
    const result = await receivePut(s.putOptions, { target, headers: request.headers, body: hasBody(request.headers) ? input.body : undefined, signal: input.signal }, s.activeTemps);
    unread.delete(request);
    reply.header('repr-digest', formatSha256Digest(result.sha256));
    // RFC 9110 §9.3.4: stored without transformation, so the new validator may be sent.
    if (result.etag !== undefined) reply.header('etag', result.etag);
    if (!result.created) return reply.code(204).send();
    // RFC 9110 §9.3.4: 201 Created when a new resource was made.
    return reply.code(201).header('location', `/files/${target.segments.map(encodeURIComponent).join('/')}`).header('content-type', 'application/json; charset=utf-8')
      .send(JSON.stringify({ path: target.relative, size: result.size, sha256: result.sha256 }));
  };
}

/** The still-encoded path after `/files/` (the router has decoded `*`; the jail wants the raw form). */
function rawPathOf(url: string, decoded: string): string {
  const pathPart = url.split('?')[0] ?? '';
  const m = /^\/files\/(.*)$/.exec(pathPart);
  return m === null ? encodeURIComponent(decoded) : m[1]!;
}
