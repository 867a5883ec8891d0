/**
 * The tus 1.0 handlers (https://tus.io/protocols/resumable-upload): OPTIONS, creation (POST),
 * and HEAD / PATCH / DELETE on an upload, also via X-HTTP-Method-Override. Each decides with
 * decide-tus.ts and acts through the TusService; wiring is in register-upload-routes.ts.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { FerryError, isFerryError } from '../core/errors.ts';
import { clientKeyOf } from '../limits/index.ts';
import { baseTusHeaders, decideCreation, header, headHeaders } from './decide-tus.ts';
import { CHECKSUM_ALGORITHMS, TUS_EXTENSIONS, TUS_VERSION, checkTusResumable, isUploadId } from './tus-headers.ts';
import { notFound, uploadOwnerOf } from './tus-service.ts';
import type { UploadRecord } from './upload-record.ts';
import type { UploadServices } from './upload-services.ts';
import { baseUrlOf, bodyInput, handleCut, markUnread, type UnreadBodies } from './upload-request.ts';

type Handler = (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>;

export interface TusHandlers {
  /** §OPTIONS: Tus-Version, and the extensions, limits and algorithms. */
  readonly options: Handler;
  /** §Creation, §Creation With Upload, §Concatenation. */
  readonly create: Handler;
  /** HEAD / PATCH / DELETE on `/uploads/:id` (POST with X-HTTP-Method-Override). */
  readonly upload: Handler;
}

export function createTusHandlers(s: UploadServices, unread: UnreadBodies): TusHandlers {
  const cfg = s.config;
  const service = s.service;

  const options: Handler = async (_request, reply) => {
    reply.code(204).headers({
      'tus-resumable': TUS_VERSION,
      'tus-version': TUS_VERSION,
      'tus-extension': TUS_EXTENSIONS.join(','),
      'tus-checksum-algorithm': CHECKSUM_ALGORITHMS.join(','),
      ...(cfg.maxUploadSize === undefined ? {} : { 'tus-max-size': String(cfg.maxUploadSize) }),
    });
    return reply.send();
  };

  const create: Handler = async (request, reply) => {
    checkTusResumable(header(request.headers, 'tus-resumable'));
    const override = header(request.headers, 'x-http-method-override')?.trim().toUpperCase();
    if (override !== undefined && override !== 'POST') throw new FerryError('FERRY_ERR_METHOD_NOT_ALLOWED', `${override} is not allowed on the creation URL`, { headers: { allow: 'POST, OPTIONS' } });
    markUnread(unread, request);
    const plan = decideCreation(request.headers, { maxUploadBytes: cfg.maxUploadSize, maxMetadataBytes: cfg.maxUploadMetadata });
    const base = baseUrlOf(request, cfg.trustProxy);
    const input = plan.kind !== 'final' && plan.withUpload ? bodyInput(s.transfer, request, reply) : undefined;
    const owner = uploadOwnerOf(clientKeyOf({ identity: request.identity, clientAddress: request.ip }));
    const { record, outcome } = await service.create(plan, base, input, owner);
    if (outcome !== undefined && handleCut(request, reply, outcome)) return reply;
    if (outcome === undefined || outcome.bodyConsumed) unread.delete(request);
    const headers: Record<string, string> = { ...baseTusHeaders(), location: `${base}/uploads/${record.id}`, ...progressHeaders(record) };
    if (outcome?.error !== undefined) {
      // The upload exists (Location) but the first chunk was refused: answer the refusal.
      throw withHeaders(outcome.error, headers);
    }
    return reply.code(201).headers(headers).send();
  };

  const patch = async (id: string, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    markUnread(unread, request);
    const outcome = await service.patch(id, bodyInput(s.transfer, request, reply));
    if (handleCut(request, reply, outcome)) return reply;
    if (outcome.bodyConsumed) unread.delete(request);
    const headers = { ...baseTusHeaders(), ...progressHeaders(outcome.record), ...targetHeader(outcome.record) };
    if (outcome.error !== undefined) throw withHeaders(outcome.error, headers);
    return reply.code(204).headers(headers).send();
  };

  const upload: Handler = async (request, reply) => {
    checkTusResumable(header(request.headers, 'tus-resumable'));
    // §X-HTTP-Method-Override: "MUST be interpreted as the request's method ... The actual
    // method of the request MUST be ignored."
    const method = header(request.headers, 'x-http-method-override')?.trim().toUpperCase() ?? request.method;
    const id = (request.params as { id: string }).id;
    // Anything that is not one of our ids names no upload; it never reaches a path.
    if (!isUploadId(id)) throw notFound(id);
    switch (method) {
      case 'HEAD': {
        const record = await service.head(id);
        reply.code(200).headers(headHeaders(record)).headers(targetHeader(record));
        return reply.send();
      }
      case 'PATCH': return patch(id, request, reply);
      case 'DELETE': {
        await service.terminate(id);
        return reply.code(204).headers(baseTusHeaders()).send();
      }
      default:
        throw new FerryError('FERRY_ERR_METHOD_NOT_ALLOWED', `${method} is not allowed on an upload`, { headers: { allow: 'HEAD, PATCH, DELETE, OPTIONS' } });
    }
  };

  return { options, create, upload };
}

function progressHeaders(record: UploadRecord): Record<string, string> {
  const h: Record<string, string> = {};
  if (record.concat !== 'final' || record.state === 'done') h['upload-offset'] = String(record.offset);
  // §Expiration: "This header MUST be included in every PATCH response if the upload is going to expire."
  if (record.state === 'receiving' || record.state === 'waiting') h['upload-expires'] = new Date(record.expiresAt).toUTCString();
  return h;
}

/** Where a finished upload was published (`/files/...`). */
function targetHeader(record: UploadRecord): Record<string, string> {
  if (record.state !== 'done' || record.target === undefined) return {};
  return { 'ferry-file': `/files/${record.target.split('/').map(encodeURIComponent).join('/')}` };
}

function withHeaders(err: unknown, headers: Record<string, string>): unknown {
  if (!isFerryError(err)) return err;
  return new FerryError(err.code, err.message, { headers: { ...headers, ...err.headers }, extra: { ...err.extra }, cause: err.cause ?? err });
}
