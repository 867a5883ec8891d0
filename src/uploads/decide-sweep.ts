/**
 * What a sweep may delete, as pure decisions (STYLE.md habit 1). A sweep must only remove what
 * is certainly dead: the state dir can be shared by a previous server that is still draining
 * (a rolling restart), or by a second instance, and neither must lose an in-flight upload.
 *
 * Ownership is decided by two independent signs, both required before deleting:
 * - the file has not been written for `ORPHAN_IDLE_MS` (every in-flight upload request writes,
 *   which refreshes the file's mtime; one that stops writing is cut by `--send-timeout`, 60 s by
 *   default), and
 * - for PUT temp files, whose names carry the writer's pid (`put-<pid>-<random>.tmp`): that
 *   process is gone (`kill(pid, 0)` → ESRCH), or it is this process and the file is not one of
 *   its active requests. A pid that lives again (reused) keeps its file until a later sweep;
 *   a pid seen from another pid namespace (two containers sharing a volume) is covered by the
 *   idle time alone.
 */
import { ORPHAN_IDLE_MS as STORAGE_ORPHAN_IDLE_MS } from '../storage/index.ts';

/**
 * A file untouched this long belongs to no live request. Generous on purpose: removing a crash
 * leftover is never urgent (the timer sweeps again), removing a live file loses an upload.
 */
export const ORPHAN_IDLE_MS = STORAGE_ORPHAN_IDLE_MS;

/** A PUT body's staged id, `put-<pid>-<hex>` (on local disk the file name adds `.tmp`). */
const TEMP_NAME = /^put-(?:([1-9][0-9]{0,9})-)?[0-9a-f]+(?:\.tmp)?$/;

/** The pid a PUT temp name carries; `null` for a temp of an older version (no pid); undefined when the name is not a PUT temp. */
export function tempOwnerPid(name: string): number | null | undefined {
  const m = TEMP_NAME.exec(name);
  if (m === null) return undefined;
  return m[1] === undefined ? null : Number(m[1]);
}

export interface TempSweepInput {
  readonly name: string;
  readonly mtimeMs: number;
  readonly nowMs: number;
  /** The sweeping process's pid. */
  readonly ownPid: number;
  /** The file is one of this process's in-flight PUT bodies. */
  readonly active: boolean;
  /** Whether a process with this pid exists (kill(pid, 0) did not fail with ESRCH). */
  readonly isProcessAlive: (pid: number) => boolean;
}

/** Whether a PUT temp file is an orphan that may be deleted. */
export function isTempOrphan(input: TempSweepInput): boolean {
  const pid = tempOwnerPid(input.name);
  if (pid === undefined || input.active) return false;
  if (!isIdle(input.mtimeMs, input.nowMs)) return false;
  if (pid === null || pid === input.ownPid) return true;
  return !input.isProcessAlive(pid);
}

/**
 * Whether an expired tus upload's data file may go. Another process that shares the state dir
 * may be writing it right now (its lock is not ours): then the file was written after the last
 * commit of the record (`dataSyncedAt`) and recently. A file absent, unchanged since the last
 * commit, or idle for `ORPHAN_IDLE_MS` (a writer that crashed mid-chunk) is not in use.
 */
export function isDataIdle(dataMtimeMs: number | undefined, dataSyncedAt: number | undefined, nowMs: number): boolean {
  if (dataMtimeMs === undefined) return true;
  // Date.now() counts whole milliseconds; file times are finer.
  if (dataSyncedAt !== undefined && Math.floor(dataMtimeMs) <= dataSyncedAt) return true;
  return isIdle(dataMtimeMs, nowMs);
}

function isIdle(mtimeMs: number, nowMs: number): boolean {
  return nowMs - mtimeMs >= ORPHAN_IDLE_MS;
}

export { decidePublishTemp, type PublishTempSweepInput } from '../storage/index.ts';
