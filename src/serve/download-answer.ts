/**
 * What /files and /zip do with a planned download answer (src/http/plan-download.ts) before
 * the body: refusals become FerryErrors (problem+json at the edge), header-only answers are
 * written and ended.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyReply } from 'fastify';
import { FerryError } from '../core/index.ts';
import type { DownloadPlan } from '../http/index.ts';

/** How the route names what it serves in a refusal's detail: "the current representation", "this archive". */
export interface RefusalWording {
  /** The representation as a whole ("the current representation"). */
  readonly current: string;
  /** One of its kind, before "of N bytes" ("a representation"). */
  readonly sized: string;
}

/** The error a 412 or 416 plan is answered with (the plan's header fields ride along). */
export function refusalError(plan: Extract<DownloadPlan, { kind: 'precondition-failed' | 'range-not-satisfiable' }>, wording: RefusalWording): FerryError {
  if (plan.kind === 'precondition-failed') {
    return new FerryError('FERRY_ERR_PRECONDITION_FAILED', `The ${plan.by} condition is false for ${wording.current}`, { headers: plan.headers });
  }
  return new FerryError('FERRY_ERR_RANGE_NOT_SATISFIABLE', `No requested range is satisfiable for ${wording.sized} of ${plan.length} bytes`, { headers: plan.headers });
}

/** Writes a status line and header fields with no content (304, HEAD) and ends the response. */
export function sendHeaderOnly(reply: FastifyReply, status: number, headers: OutgoingHttpHeaders): void {
  reply.hijack();
  reply.raw.writeHead(status, headers);
  reply.raw.end();
}
