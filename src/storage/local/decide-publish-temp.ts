/**
 * When a cross-filesystem publish's temp copy may be removed (pure, STYLE.md habit 1). The
 * copy sits hidden in a target folder, noted in the journal before it was created; the state
 * dir may be shared by a previous server that is still draining or by a second instance, and
 * neither must lose a publish in progress. Two signs are required before deleting: the copy is
 * idle, and its writer is gone (or is this process and is not using it).
 */

/**
 * A file untouched this long belongs to no live request. Generous on purpose: removing a crash
 * leftover is never urgent (the timer sweeps again), removing a live file loses an upload.
 */
export const ORPHAN_IDLE_MS = 60 * 60 * 1000;

export function isIdle(mtimeMs: number, nowMs: number): boolean {
  return nowMs - mtimeMs >= ORPHAN_IDLE_MS;
}

export interface PublishTempSweepInput {
  /** The process that noted the temp copy. */
  readonly pid: number;
  /** The temp copy's mtime; undefined when it does not exist (yet, or any more). */
  readonly mtimeMs: number | undefined;
  readonly nowMs: number;
  readonly ownPid: number;
  /** The copy is one of this process's publishes in progress. */
  readonly active: boolean;
  readonly isProcessAlive: (pid: number) => boolean;
}

/**
 * A cross-filesystem temp copy in a target folder (noted in the journal before it was created):
 * `delete` the file and its note, `forget` only the note (no file, writer gone), or `keep` both.
 */
export function decidePublishTemp(input: PublishTempSweepInput): 'delete' | 'forget' | 'keep' {
  if (input.active) return 'keep';
  const writerGone = input.pid === input.ownPid || !input.isProcessAlive(input.pid);
  if (input.mtimeMs === undefined) return writerGone ? 'forget' : 'keep';
  return writerGone && isIdle(input.mtimeMs, input.nowMs) ? 'delete' : 'keep';
}
