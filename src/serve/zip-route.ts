/**
 * `GET`/`HEAD /zip/{dir}` and `GET`/`HEAD /zip?path=A&path=B&name=N.zip` (SPEC §2, docs/zip.md):
 * a folder or a selection as one streaming ZIP whose exact length, strong ETag and layout are
 * decided before the first byte, so Range, If-Range and resume work like on a plain file.
 *
 * The path of one archive: jail (parseSafePath / parseDecodedPath) → admit (limits, GET and
 * HEAD alike) → the selection's plan, shared with concurrent requests for the same selection
 * and bounded by --zip-plan-concurrency / --zip-plan-entries (src/zip/plan-flight.ts): storage
 * walk, members and limits (413 before any byte), layout (crc-first when every CRC is known or
 * cheap to compute, else descriptor; remembered per selection so a resume gets the same
 * bytes), plan (src/zip, pure) → preconditions, If-Range, ranges (src/http, pure) → first chunk
 * produced (errors still become problem+json) → headers → paced body with backpressure.
 * Planning stops when every request waiting for it has gone away.
 * A member that changes after the body started cuts the connection: the client sees a
 * truncated download, never a well-formed wrong archive.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import type { OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  planDownload, formatContentDisposition, type PlannedHeaders, type Validators,
} from '../http/index.ts';
import {
  FerryError, abortOnClose, channels, publish, parseSafePath, parseDecodedPath, pathLimitExceeded, errnoCode,
  MAX_PATH_SEGMENTS, MAX_PATH_BYTES, MAX_SEGMENT_BYTES, isFerryError,
  type SafePath, type ZipFinishedEvent,
} from '../core/index.ts';
import {
  planZip, hashSelection, readZipRange, streamZip, isCompressible, joinEntryName, EntryNameRegistry, toArchiveFileName,
  lookupCrcRecord, recordCrc, forgetCrc, loadCrcProgress, saveCrcProgress, clearCrcProgress, PlanFlights,
  type EntryBudget, type PlanFlightEvent, type ZipLayout, type ZipMemberInput, type ZipPlan, type ZipDataSource, type ZipSourceEntry, type CrcKey,
} from '../zip/index.ts';
import type { Storage, FileStat } from '../storage/index.ts';
import type { MetaStore } from '../meta/index.ts';
import type { TransferControl, TransferSubject } from '../limits/index.ts';
import { splitRawTarget } from './raw-path.ts';
import { pumpReadable, pacingFor } from './pump.ts';
import { ProgressWatchdog, socketProgress } from './progress-watchdog.ts';
import { refusalError, sendHeaderOnly, type RefusalWording } from './download-answer.ts';

export const ZIP_ROUTE = '/zip/*';

/** Remembers which layout a selection was first served with, so every later request (a resume) gets the same bytes. */
export const ZIP_LAYOUT_NAMESPACE = 'zip-layout';
const ZIP_LAYOUT_TTL_MS = 30 * 24 * 3600 * 1000;
const CONTENT_TYPE = 'application/zip';
const ARCHIVE_WORDING: RefusalWording = { current: 'this archive', sized: 'an archive' };

/**
 * `ferry:zip:plan` — the life of a zip plan: PlanFlightEvent (`started`, `joined`, `queued`,
 * `finished`, `aborted`, `failed`). Tests and metrics watch planning work through it.
 */
export const ZIP_PLAN_CHANNEL = 'ferry:zip:plan';
const zipPlanChannel = diagnosticsChannel.channel(ZIP_PLAN_CHANNEL);

/** The options the zip route reads (a structural subset of FerryConfig). */
export interface ZipRouteConfig {
  readonly zipMaxEntries: number;
  readonly zipMaxBytes: number | undefined;
  readonly zipCrcPrefetch: number;
  /** When a cached CRC is checked against the bytes of a member streamed whole (docs/zip.md). */
  readonly zipVerifyCrc: 'first' | 'always' | 'never';
  /** Plans (walks) running at once; more wait for a slot up to queueTimeout. */
  readonly zipPlanConcurrency: number;
  /** Entries all zip plans together may hold in memory. */
  readonly zipPlanEntries: number;
  /** Longest wait for a planning slot (ms). */
  readonly queueTimeout: number;
  readonly maxRanges: number;
  readonly readBufferSize: number;
  readonly sendTimeout: number;
}

export interface ZipRouteDeps {
  readonly config: ZipRouteConfig;
  readonly storage: Storage;
  readonly meta: MetaStore;
  /** Traffic control (admission and pacing); none = unlimited. */
  readonly transfer?: TransferControl;
}

/** What the route remembers about a member: enough to reopen it and to detect a change. */
interface MemberRef {
  /** Path relative to the root (SafePath.relative). */
  readonly relative: string;
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly ino: bigint;
}

/** Registers the zip routes. Called once by the composition root. */
export function registerZipRoutes(app: FastifyInstance, deps: ZipRouteDeps): void {
  const watchdog = new ProgressWatchdog(deps.config.sendTimeout);
  app.addHook('onClose', async () => { watchdog.close(); });
  const flights = new PlanFlights<PlannedArchive>({
    concurrency: deps.config.zipPlanConcurrency,
    maxEntries: deps.config.zipPlanEntries,
    queueTimeoutMs: deps.config.queueTimeout,
    onEvent: (e) => {
      publish<PlanFlightEvent>(zipPlanChannel, e);
      if (e.kind === 'aborted') app.log.info({ event: 'zip-plan', outcome: 'aborted', entries: e.entries }, 'zip plan aborted: every client waiting for it went away');
    },
  });
  const handler = (request: FastifyRequest, reply: FastifyReply): Promise<void> => serveZip(request, reply, { ...deps, flights }, watchdog);
  app.route({ method: ['GET', 'HEAD'], url: ZIP_ROUTE, config: { access: 'read' }, exposeHeadRoute: false, handler });
  app.route({ method: ['GET', 'HEAD'], url: '/zip', config: { access: 'read' }, exposeHeadRoute: false, handler });
  // RFC 9110 §15.5.6: a 405 "MUST generate an Allow header field".
  const notAllowed = async (request: FastifyRequest): Promise<never> => {
    throw new FerryError('FERRY_ERR_METHOD_NOT_ALLOWED', `${request.method} is not allowed on /zip`, { headers: { allow: 'GET, HEAD' } });
  };
  app.route({ method: ['POST', 'PUT', 'DELETE', 'PATCH'], url: ZIP_ROUTE, config: { access: 'read' }, handler: notAllowed });
  app.route({ method: ['POST', 'PUT', 'DELETE', 'PATCH'], url: '/zip', config: { access: 'read' }, handler: notAllowed });
}

// --- selection → members -------------------------------------------------------

interface Selection {
  readonly members: ZipMemberInput<MemberRef>[];
  readonly archiveName: string;
  /** For the log line. */
  readonly label: string;
}

interface SelectionItem { readonly path: SafePath; readonly top: string | undefined }

function selectionInvalid(detail: string): FerryError {
  return new FerryError('FERRY_ERR_ZIP_SELECTION_INVALID', detail);
}

/** Parses the request target into the items to archive (no I/O). */
function parseSelection(rawUrl: string | undefined): { items: SelectionItem[]; name: string | undefined; fallbackName: string; compress: boolean; label: string } {
  const target = splitRawTarget(rawUrl, '/zip');
  const query = new URLSearchParams(target.query);
  const paths = query.getAll('path');
  const name = query.get('name') ?? undefined;
  const c = query.get('compress');
  const compress = c === '1' || c === 'true' || c === 'yes';
  if (target.encodedPath !== '' || paths.length === 0) {
    if (paths.length > 0) throw selectionInvalid('Use either /zip/{folder} or /zip?path=…, not both');
    // `/zip` alone is the root folder, like `/zip/`.
    const dir = parseSafePath(target.encodedPath);
    const base = dir.segments.at(-1);
    return { items: [{ path: dir, top: base }], name, fallbackName: base ?? 'archive', compress, label: `/${dir.relative}` };
  }
  const seen = new Set<string>();
  const items: SelectionItem[] = [];
  for (const p of paths) {
    const safe = parseDecodedPath(p);
    if (safe.segments.length === 0) throw selectionInvalid('The root cannot be part of a selection; use /zip/ for everything');
    if (seen.has(safe.relative)) continue; // the same path twice is one member
    seen.add(safe.relative);
    items.push({ path: safe, top: safe.segments.at(-1)! });
  }
  const fallbackName = items.length === 1 ? items[0]!.top! : 'archive';
  return { items, name, fallbackName, compress, label: `${items.length} path(s)` };
}

function refOf(relative: string, st: FileStat): MemberRef {
  return { relative, size: st.size, mtimeNs: st.mtimeNs, ino: st.ino };
}

/**
 * Walks the selection through the storage jail and builds the member list, enforcing
 * --zip-max-entries, --zip-max-bytes, the entry budget of all plans (--zip-plan-entries) and
 * the path caps as it goes (413/503 before any byte is sent). Stops when `signal` aborts.
 */
async function collectMembers(items: readonly SelectionItem[], deps: ZipRouteDeps, signal: AbortSignal, budget: EntryBudget): Promise<ZipMemberInput<MemberRef>[]> {
  const { zipMaxEntries, zipMaxBytes } = deps.config;
  const members: ZipMemberInput<MemberRef>[] = [];
  const names = new EntryNameRegistry();
  let totalBytes = 0;
  const add = (m: ZipMemberInput<MemberRef>): void => {
    budget.reserve(1);
    if (members.length + 1 > zipMaxEntries) {
      throw new FerryError('FERRY_ERR_ZIP_TOO_MANY_ENTRIES', `The selection has more than ${zipMaxEntries} entries (--zip-max-entries)`, { extra: { limit: zipMaxEntries, option: 'zip-max-entries' } });
    }
    totalBytes += m.size;
    if (zipMaxBytes !== undefined && totalBytes > zipMaxBytes) {
      throw new FerryError('FERRY_ERR_ZIP_TOO_LARGE', `The selection holds more than ${zipMaxBytes} bytes (--zip-max-bytes)`, { extra: { limit: zipMaxBytes, option: 'zip-max-bytes' } });
    }
    members.push(m);
  };
  const member = (name: string, type: 'file' | 'directory', relative: string, st: FileStat): ZipMemberInput<MemberRef> => ({
    name, type, size: type === 'file' ? st.size : 0, mtimeMs: st.mtimeMs, mode: st.mode,
    version: `${st.mtimeNs}:${st.ino}:${st.dev}`, ref: refOf(relative, st),
  });
  for (const item of items) {
    signal.throwIfAborted();
    const st = await deps.storage.stat(item.path);
    // Top-level names of a selection are made unique (two `report.pdf` from different folders).
    const top = item.top === undefined ? undefined : names.claim(joinEntryName([item.top]), st.type, { caseInsensitive: true });
    if (st.type === 'file') {
      add(member(top ?? joinEntryName(item.path.segments), 'file', item.path.relative, st));
      continue;
    }
    let any = false;
    for await (const w of deps.storage.walk(item.path, { signal })) {
      any = true;
      const relative = item.path.relative === '' ? w.relative : `${item.path.relative}/${w.relative}`;
      // A tree made on disk can be deeper than any path Ferry accepts: its members could not be
      // reopened, and a walk down a 4,000-level chain is where the CPU went. Refuse the archive
      // (an archive silently missing files would be worse); the walk stops here.
      const beyond = pathLimitExceeded(relative);
      if (beyond !== undefined) {
        throw new FerryError('FERRY_ERR_ZIP_TOO_DEEP', `The selection holds a path Ferry does not serve: ${beyond}`, {
          extra: { maxSegments: MAX_PATH_SEGMENTS, maxPathBytes: MAX_PATH_BYTES, maxSegmentBytes: MAX_SEGMENT_BYTES },
        });
      }
      if (w.type === 'directory' && w.empty !== true) continue; // folders with content are implied by their files' names
      const inner = joinEntryName(w.relative.split('/'));
      const wanted = top === undefined ? inner : `${top}/${inner}`;
      // Exact-name collisions can only come from sanitising (`a\b` → `a_b`): renumber, never overwrite.
      const name = names.claim(wanted, w.type);
      add(member(name, w.type, relative, w.stat));
    }
    // An empty folder that was selected itself still appears (as a folder entry).
    if (!any && top !== undefined) add(member(top, 'directory', item.path.relative, st));
  }
  return members;
}

// --- CRC-32 through the cache -------------------------------------------------

function crcKey(ref: MemberRef): CrcKey {
  return { path: ref.relative, size: ref.size, mtimeNs: ref.mtimeNs, ino: ref.ino };
}

function changed(name: string, why: string, cause?: unknown): FerryError {
  return new FerryError('FERRY_ERR_ZIP_MEMBER_CHANGED', `${name}: ${why}`, { cause, headers: { 'retry-after': '1' } });
}

/**
 * The member data source over the storage: one file open at a time, checked against the plan.
 * `verified` holds the indexes whose CRC is known to match the file (computed by a zip, or
 * checked once): with --zip-verify-crc first, only the others are checked while streaming.
 */
function createStorageSource(deps: ZipRouteDeps, counters: { crcComputedBytes: number }, verified: Set<number>, remember: Remember): ZipDataSource<MemberRef> {
  const chunkBytes = deps.config.readBufferSize;

  async function* openMember(entry: ZipSourceEntry<MemberRef>, start: number, end: number, signal: AbortSignal): AsyncGenerator<Buffer> {
    const ref = entry.ref;
    let reader;
    try {
      reader = await deps.storage.open(parseDecodedPath(ref.relative));
    } catch (err) {
      if (isFerryError(err) && (err.code === 'FERRY_ERR_PATH_NOT_FOUND' || err.code === 'FERRY_ERR_PATH_IS_DIRECTORY')) throw changed(entry.name, 'vanished', err);
      throw err;
    }
    try {
      const st = reader.stat;
      if (st.size !== ref.size || st.mtimeNs !== ref.mtimeNs || st.ino !== ref.ino) throw changed(entry.name, 'changed since the archive was planned');
      let at = start;
      try {
        for await (const chunk of reader.openRead({ start, end }, { highWaterMark: chunkBytes, signal }) as AsyncIterable<Buffer>) {
          at += chunk.length;
          yield chunk;
        }
      } catch (err) {
        if (isFerryError(err) && err.code === 'FERRY_ERR_STORAGE_CHANGED') throw changed(entry.name, 'shrank while it was read', err);
        throw err;
      }
      if (at !== end + 1) throw changed(entry.name, 'shorter than planned');
      if (end === ref.size - 1 && end - start + 1 > chunkBytes) {
        // Read to its end in several reads: a writer appending or rewriting meanwhile shows in
        // size or mtime. (A member read in one read has no "meanwhile" worth a second fstat:
        // the stat at open already matched the plan.)
        const now = await reader.restat();
        if (now.size !== ref.size || now.mtimeNs !== ref.mtimeNs) throw changed(entry.name, 'changed while it was read');
      }
    } finally {
      await reader.close();
    }
  }

  async function computeCrc(entry: ZipSourceEntry<MemberRef>, signal: AbortSignal): Promise<number> {
    let c = 0;
    for await (const chunk of openMember(entry, 0, entry.size - 1, signal)) {
      c = crc32(chunk, c);
      counters.crcComputedBytes += chunk.length;
    }
    return c >>> 0;
  }

  const lookup = async (entry: ZipSourceEntry<MemberRef>): Promise<number | undefined> => {
    const hit = await lookupCrcRecord(deps.meta, crcKey(entry.ref));
    publish(channels.zipCrc, { hit: hit !== undefined });
    if (hit?.verified === true) verified.add(entry.index);
    return hit?.crc;
  };

  // Members with a saved partial CRC in this request: cleared once their CRC is complete.
  const withProgress = new Set<number>();
  return {
    openMember,
    async resolveCrc(entry, signal) {
      const cached = await lookup(entry);
      if (cached !== undefined) return cached;
      const crc = await computeCrc(entry, signal);
      await remember('crc', () => recordCrc(deps.meta, crcKey(entry.ref), crc, { verified: true }));
      verified.add(entry.index);
      return crc;
    },
    lookupCrc: lookup,
    async onCrcComputed(entry, crc) {
      await remember('crc', () => recordCrc(deps.meta, crcKey(entry.ref), crc, { verified: true }));
      verified.add(entry.index);
      if (withProgress.delete(entry.index)) await remember('crc-progress', () => clearCrcProgress(deps.meta, crcKey(entry.ref)));
    },
    async loadCrcProgress(entry) {
      const p = await loadCrcProgress(deps.meta, crcKey(entry.ref));
      if (p !== undefined) withProgress.add(entry.index);
      return p;
    },
    async saveCrcProgress(entry, progress) { await remember('crc-progress', () => saveCrcProgress(deps.meta, crcKey(entry.ref), progress)); },
    async onCrcVerified(entry, crc) {
      if (verified.has(entry.index)) return;
      verified.add(entry.index);
      await remember('crc', () => recordCrc(deps.meta, crcKey(entry.ref), crc, { verified: true }));
    },
    // A wrong cached CRC that cannot be dropped is still wrong: this one must not be swallowed.
    async onCrcMismatch(entry) { await forgetCrc(deps.meta, crcKey(entry.ref)); },
  };
}

/**
 * Decides the layout of a stored archive (docs/zip.md, "Which layout"):
 * 1. the layout this selection was first served with, if remembered (resume = same bytes);
 * 2. else `crc-first` when every CRC is cached or the uncached bytes are ≤ --zip-crc-prefetch;
 * 3. else `descriptor` (starts at once; CRCs are learnt and cached while streaming).
 * Returns the members with every cached CRC filled in.
 */
async function chooseLayout(members: ZipMemberInput<MemberRef>[], selectionHash: string, deps: ZipRouteDeps, verified: Set<number>, remember: Remember, signal: AbortSignal): Promise<{ layout: ZipLayout; members: ZipMemberInput<MemberRef>[]; uncachedBytes: number }> {
  const remembered = await deps.meta.get<{ layout?: unknown }>(ZIP_LAYOUT_NAMESPACE, selectionHash);
  let layout: ZipLayout | undefined = remembered?.layout === 'crc-first' || remembered?.layout === 'descriptor' ? remembered.layout : undefined;
  // In use again: keep remembering it (a resume days later must still get the same bytes).
  if (layout !== undefined) await remember('layout', () => deps.meta.set(ZIP_LAYOUT_NAMESPACE, selectionHash, { layout }, { ttlMs: ZIP_LAYOUT_TTL_MS }));
  const budget = deps.config.zipCrcPrefetch;
  let uncachedBytes = 0;
  const out: ZipMemberInput<MemberRef>[] = new Array<ZipMemberInput<MemberRef>>(members.length);
  // Cached CRCs are looked up for every layout: a known CRC is verified instead of recomputed
  // and re-recorded. Only a fresh decision stops looking once the budget is exceeded (the rest
  // is looked up lazily, member by member).
  let looking = true;
  for (let i = 0; i < members.length; i++) {
    const m = members[i]!;
    if (!looking || m.type !== 'file' || m.size === 0) { out[i] = m; continue; }
    if ((i & 1023) === 0) signal.throwIfAborted();
    const rec = await lookupCrcRecord(deps.meta, crcKey(m.ref));
    publish(channels.zipCrc, { hit: rec !== undefined });
    if (rec !== undefined) {
      out[i] = { ...m, crc32: rec.crc };
      if (rec.verified) verified.add(i);
      continue;
    }
    out[i] = m;
    uncachedBytes += m.size;
    if (layout === undefined && uncachedBytes > budget) looking = false;
  }
  if (layout === undefined) {
    const fresh: ZipLayout = uncachedBytes <= budget ? 'crc-first' : 'descriptor';
    // Not remembered (state disk full): still sound to serve. The strong ETag names the layout,
    // so a resume with If-Range that meets a different layout gets the whole archive (200),
    // never spliced bytes; and the same cache state gives the same decision (docs/zip.md).
    let won = true;
    await remember('layout', async () => { won = await deps.meta.setIfAbsent(ZIP_LAYOUT_NAMESPACE, selectionHash, { layout: fresh }, { ttlMs: ZIP_LAYOUT_TTL_MS }); });
    if (won) layout = fresh;
    else {
      const other = await deps.meta.get<{ layout?: unknown }>(ZIP_LAYOUT_NAMESPACE, selectionHash);
      layout = other?.layout === 'descriptor' ? 'descriptor' : other?.layout === 'crc-first' ? 'crc-first' : fresh;
    }
  }
  return { layout, members: out, uncachedBytes };
}

/** Computes the CRCs a crc-first plan still lacks, before the first byte (errors become problem+json). */
async function prefetchCrcs(plan: ZipPlan<MemberRef>, source: ZipDataSource<MemberRef>, budget: number, signal: AbortSignal): Promise<ZipPlan<MemberRef>> {
  const missing = plan.entries.filter((e) => e.type === 'file' && e.size > 0 && e.crc32 === undefined);
  const bytes = missing.reduce((n, e) => n + e.size, 0);
  if (missing.length === 0 || bytes > budget) return plan; // large gaps are filled lazily, member by member
  const crcs = new Map<number, number>();
  for (const e of missing) crcs.set(e.index, await source.resolveCrc(e, signal));
  const entries = plan.entries.map((e) => (crcs.has(e.index) ? { ...e, crc32: crcs.get(e.index) } : e));
  return { ...plan, entries };
}

// --- the route ------------------------------------------------------------------

interface LogFields {
  status: number;
  bytes: number;
  entries: number;
  outcome: ZipFinishedEvent['outcome'];
  layout: ZipLayout | 'deflate' | undefined;
  ranges: number;
  archiveBytes: number | undefined;
}

/** A write whose failure must not fail the download (a cache, a memo): false when it failed. */
type Remember = (what: 'layout' | 'crc' | 'crc-progress', write: () => Promise<unknown>) => Promise<boolean>;

/**
 * Remembering is best effort: a full state disk (SQLITE_FULL, ENOSPC) or any other failure to
 * write a cache entry or the layout memo is logged (the first one at warn, per request) and the
 * archive is served anyway. Every such write only saves work or keeps later requests on the
 * same layout; the bytes of this response do not depend on it.
 */
function createRemember(log: FastifyBaseLogger): Remember {
  let failures = 0;
  return async (what, write) => {
    try {
      await write();
      return true;
    } catch (err) {
      failures++;
      if (failures === 1) log.warn({ err, what }, `zip: could not record the ${what} in the state store (disk full?); serving the archive anyway`);
      else log.debug({ err, what, failures }, 'zip: state store write failed again');
      return false;
    }
  };
}

/** What concurrent requests for one selection share: the walk's result and, stored, the plan. */
interface PlannedArchive {
  readonly members: ZipMemberInput<MemberRef>[];
  readonly selectionHash: string;
  /** Stored archives only (undefined with ?compress=1). */
  readonly plan: ZipPlan<MemberRef> | undefined;
  /** Indexes whose cached CRC is known to match (the request copies it). */
  readonly verified: ReadonlySet<number>;
}

/** The single-flight key: everything the plan depends on besides the storage's contents. */
function planKey(items: readonly SelectionItem[], compress: boolean): string {
  return JSON.stringify([compress, items.map((i) => [i.path.relative, i.top ?? null])]);
}

async function buildPlan(items: readonly SelectionItem[], compress: boolean, deps: ZipRouteDeps, signal: AbortSignal, budget: EntryBudget, remember: Remember): Promise<PlannedArchive> {
  const members = await collectMembers(items, deps, signal, budget);
  const selectionHash = hashSelection(members);
  const verified = new Set<number>();
  if (compress) return { members, selectionHash, plan: undefined, verified };
  const chosen = await chooseLayout(members, selectionHash, deps, verified, remember, signal);
  const plan = planZip(chosen.members, { layout: chosen.layout }, selectionHash);
  return { members, selectionHash, plan, verified };
}

async function serveZip(request: FastifyRequest, reply: FastifyReply, deps: ZipRouteDeps & { readonly flights: PlanFlights<PlannedArchive> }, watchdog: ProgressWatchdog): Promise<void> {
  const startedAt = performance.now();
  const method = request.method === 'HEAD' ? 'HEAD' : 'GET';
  const res = reply.raw;
  const h = request.headers;
  const parsed = parseSelection(request.raw.url);

  const gone = abortOnClose(res);
  const signal = gone.signal;
  const counters = { crcComputedBytes: 0 };
  const finish = (f: LogFields, body: boolean): void => {
    const durationMs = Math.round((performance.now() - startedAt) * 1000) / 1000;
    if (body) publish<ZipFinishedEvent>(channels.zipFinished, { bytes: f.bytes, entries: f.entries, durationMs, outcome: f.outcome });
    request.log.info({
      event: 'zip', method, selection: parsed.label, status: f.status, bytes: f.bytes, entries: f.entries, archiveBytes: f.archiveBytes,
      layout: f.layout, ranges: f.ranges, crcComputedBytes: counters.crcComputedBytes, durationMs, outcome: f.outcome,
    }, f.outcome === 'completed' ? 'zip finished' : `zip ${f.outcome}`);
  };

  const remember = createRemember(request.log);
  // Planning is work too: GET and HEAD take a transfer slot before it (limits, queue), and
  // GET keeps it for the body.
  const subject: TransferSubject = { identity: request.identity, clientAddress: request.ip };
  let release: () => void = () => {};
  let lease: { readonly value: PlannedArchive; release(): void } | undefined;
  try {
    if (deps.transfer !== undefined) release = await deps.transfer.admit(subject, signal);
    lease = await deps.flights.acquire(planKey(parsed.items, parsed.compress), signal, (signal: AbortSignal, budget: EntryBudget) => buildPlan(parsed.items, parsed.compress, deps, signal, budget, remember));
    const planned = lease.value;
    const selection: Selection = { members: planned.members, archiveName: toArchiveFileName(parsed.name, parsed.fallbackName), label: parsed.label };
    const selectionHash = planned.selectionHash;
    const verified = new Set<number>(planned.verified);
    const source = createStorageSource(deps, counters, verified, remember);
    const headers: PlannedHeaders = {
      'x-request-id': request.id,
      'content-type': CONTENT_TYPE,
      'content-disposition': formatContentDisposition(selection.archiveName),
      'x-content-type-options': 'nosniff',
    };

    if (parsed.compress) {
      await serveDeflated(request, reply, deps, watchdog, { selection, selectionHash, source, headers, method, subject, signal: signal, finish });
      return;
    }

    let plan = planned.plan!;
    // No Last-Modified: the newest member's mtime does not change when an older file is added
    // or one is removed, so a date would validate a different archive (an If-Range by date
    // would splice two archives). The strong ETag covers every change; date conditions are
    // then ignored (RFC 9110 §13.1.3, §13.1.4) and If-Range with a date is false (§13.1.5).
    const validators: Validators = { etag: plan.etag, lastModifiedMs: undefined };
    const logBase = { entries: plan.entries.length, layout: plan.layout, archiveBytes: plan.totalBytes };

    // Preconditions → If-Range → range → 416 → multipart → HEAD, decided in one pure step;
    // each part is produced by the same range writer.
    const answer = planDownload({
      method, requestHeaders: h, validators, length: plan.totalBytes, rangeable: true,
      contentType: CONTENT_TYPE, headers: { ...headers, 'accept-ranges': 'bytes', etag: plan.etag }, maxRanges: deps.config.maxRanges,
    });
    if (answer.kind === 'precondition-failed' || answer.kind === 'range-not-satisfiable') throw refusalError(answer, ARCHIVE_WORDING);
    if (answer.kind === 'not-modified') {
      sendHeaderOnly(reply, 304, answer.headers);
      finish({ ...logBase, status: 304, bytes: 0, outcome: 'completed', ranges: 0 }, false);
      return;
    }
    const { status, rangeCount } = answer;

    if (!answer.body) {
      sendHeaderOnly(reply, status, answer.headers);
      finish({ ...logBase, status, bytes: 0, outcome: 'completed', ranges: rangeCount }, false);
      return;
    }

    {
      if (plan.layout === 'crc-first') plan = await prefetchCrcs(plan, source, deps.config.zipCrcPrefetch, signal);
      const frozen = plan;
      const mode = deps.config.zipVerifyCrc;
      const verifyCrc = mode === 'always' ? true : mode === 'never' ? false : (e: ZipSourceEntry<MemberRef>): boolean => !verified.has(e.index);
      const parts = answer.parts ?? [];
      const body = async function* (): AsyncGenerator<Buffer> {
        for (const part of parts) {
          if (typeof part === 'string') yield Buffer.from(part, 'latin1');
          else yield* readZipRange(frozen, part, source, { signal: signal, verifyCrc });
        }
      };
      await sendBody({ request, reply, deps, watchdog, status, headers: answer.headers, body: body(), subject, signal: signal, finish, log: { ...logBase, ranges: rangeCount } });
    }
  } catch (err) {
    // Refused before any byte (bad path, limits, a member gone while its CRC was computed):
    // the error handler answers problem+json; the archive still gets its one log line.
    if (!res.headersSent) {
      const status = isFerryError(err) ? err.statusCode : 500;
      finish({ status, bytes: 0, entries: 0, outcome: 'failed', layout: undefined, ranges: 0, archiveBytes: undefined }, false);
    }
    throw err;
  } finally {
    lease?.release();
    release();
    gone.dispose();
  }
}

interface DeflatedArgs {
  readonly selection: Selection;
  readonly selectionHash: string;
  readonly source: ZipDataSource<MemberRef>;
  readonly headers: PlannedHeaders;
  readonly method: 'GET' | 'HEAD';
  readonly subject: TransferSubject;
  readonly signal: AbortSignal;
  readonly finish: (f: LogFields, body: boolean) => void;
}

/**
 * `?compress=1`: deflate what compresses; the length is unknown before the end, so no
 * Content-Length, no Range (`Accept-Ranges: none`) and only a weak ETag (same selection →
 * same content, but the bytes depend on the zlib build).
 */
async function serveDeflated(request: FastifyRequest, reply: FastifyReply, deps: ZipRouteDeps, watchdog: ProgressWatchdog, a: DeflatedArgs): Promise<void> {
  const etag = `W/"zd-${a.selectionHash.slice(0, 27)}"`;
  const headers: PlannedHeaders = { ...a.headers, 'accept-ranges': 'none', etag };
  const logBase = { entries: a.selection.members.length, layout: 'deflate' as const, archiveBytes: undefined, ranges: 0 };
  // The same planner as stored archives: with no length, Range is ignored and the answer is whole.
  const answer = planDownload({
    method: a.method, requestHeaders: request.headers, validators: { etag, lastModifiedMs: undefined }, length: undefined, rangeable: false,
    contentType: CONTENT_TYPE, headers, maxRanges: deps.config.maxRanges,
  });
  if (answer.kind === 'precondition-failed' || answer.kind === 'range-not-satisfiable') throw refusalError(answer, ARCHIVE_WORDING);
  if (answer.kind === 'not-modified') {
    sendHeaderOnly(reply, 304, answer.headers);
    a.finish({ ...logBase, status: 304, bytes: 0, outcome: 'completed' }, false);
    return;
  }
  if (!answer.body) {
    sendHeaderOnly(reply, answer.status, answer.headers);
    a.finish({ ...logBase, status: answer.status, bytes: 0, outcome: 'completed' }, false);
    return;
  }
  const body = streamZip(a.selection.members, a.source, { signal: a.signal, compress: (m) => isCompressible(m.name, m.size) });
  await sendBody({ request, reply, deps, watchdog, status: answer.status, headers: answer.headers, body, subject: a.subject, signal: a.signal, finish: a.finish, log: logBase });
}

interface SendBodyArgs {
  readonly request: FastifyRequest;
  readonly reply: FastifyReply;
  readonly deps: ZipRouteDeps;
  readonly watchdog: ProgressWatchdog;
  readonly status: number;
  readonly headers: OutgoingHttpHeaders;
  readonly body: AsyncGenerator<Buffer, unknown>;
  readonly subject: TransferSubject;
  readonly signal: AbortSignal;
  readonly finish: (f: LogFields, body: boolean) => void;
  readonly log: Pick<LogFields, 'entries' | 'layout' | 'archiveBytes' | 'ranges'>;
}

/**
 * Produces the first chunk before any header goes out (a member that vanished, a failing CRC
 * computation: still a clean problem+json), then streams the rest with backpressure. After the
 * header, any failure destroys the connection: no end record, a visibly truncated download.
 */
async function sendBody(a: SendBodyArgs): Promise<void> {
  const { request, reply, signal } = a;
  const res = reply.raw;
  const iterator = a.body;
  const first = await iterator.next();
  let bytes = 0;
  let outcome: ZipFinishedEvent['outcome'] = 'completed';
  async function* all(): AsyncGenerator<Buffer> {
    try {
      if (first.done !== true) yield first.value;
      for (;;) {
        const n = await iterator.next();
        if (n.done === true) return;
        yield n.value;
      }
    } finally {
      await iterator.return(undefined);
    }
  }
  const source = Readable.from(all(), { objectMode: false, highWaterMark: 64 * 1024 });
  // Rate limits are applied by the pump (pieces paid for before they are written).
  const pacing = pacingFor(a.deps.transfer, a.subject, signal);
  reply.hijack();
  const socket = request.raw.socket;
  const progress = a.watchdog.watch(socket, () => socketProgress(socket));
  try {
    signal.throwIfAborted();
    res.writeHead(a.status, a.headers);
    await pumpReadable(source, res, signal, (n) => { bytes += n; }, pacing);
  } catch (err) {
    source.destroy();
    if (signal.aborted || isPrematureClose(err)) {
      outcome = 'aborted';
    } else {
      outcome = 'failed';
      request.log.warn({ err }, 'zip failed after the response started; connection destroyed');
    }
    // After the header went out, a cut connection is the only honest error signal.
    if (!res.destroyed) res.destroy();
  } finally {
    progress[Symbol.dispose]();
    a.finish({ ...a.log, status: a.status, bytes, outcome }, true);
  }
}

function isPrematureClose(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED';
}
