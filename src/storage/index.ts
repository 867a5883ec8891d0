export type { Storage, PresignGetOptions, Staging, StagedCheckpoint, StagedRef, StagedEntry, StagedWriter, PublishMode, PublishOptions, PublishResult, LocalFolderHandle, FileStat, FileHandleReader, ByteRange, ListEntry, ListOptions, ListResult, OpenReadOptions, StorageHealth, WalkEntry } from './types.ts';
export { FailoverStorage, isAvailabilityFailure, type FailoverStorageOptions, type MidStreamFailover } from './failover/failover-storage.ts';
export { decideSameVersion, type VersionVerdict } from './failover/same-version.ts';
export { decideBreaker, type BreakerState, type BreakerOptions, type BreakerTransition } from './failover/circuit-breaker.ts';
export { LocalStorage, type LocalStorageOptions, type LocalFolder } from './local/local-storage.ts';
export type { WriteJournal } from './local/local-publish.ts';
export { ORPHAN_IDLE_MS, decidePublishTemp, type PublishTempSweepInput } from './local/decide-publish-temp.ts';
export { conflictName, splitExtension } from './conflict-name.ts';
export { S3Storage, type S3StorageOptions, mapS3Error, listFloor } from './s3/s3-storage.ts';
import { mkdir } from 'node:fs/promises';
import { LocalStorage, type LocalStorageOptions } from './local/local-storage.ts';
import { S3Storage, type S3StorageOptions } from './s3/s3-storage.ts';
import type { Storage } from './types.ts';
import { FailoverStorage, isAvailabilityFailure, type FailoverStorageOptions } from './failover/failover-storage.ts';
import { DeferredStorage } from './failover/deferred-storage.ts';
import type { BreakerOptions } from './failover/circuit-breaker.ts';

/** Creates the served root folder when it is missing (a fresh install); nothing when it exists. */
export async function createLocalRoot(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
}

/** The embedded default backend. */
export function createLocalStorage(options: LocalStorageOptions): Promise<LocalStorage> {
  return LocalStorage.create(options);
}

/** Which backend to build, with its options (see --storage). */
export type StorageChoice =
  | ({ readonly kind: 'local' } & LocalStorageOptions)
  | ({ readonly kind: 's3' } & S3StorageOptions);

/**
 * Builds the chosen backend. An S3 backend is checked at once (the bucket answers with these
 * credentials): FERRY_ERR_STORAGE_UNAVAILABLE otherwise, so a bad start-up fails in one line.
 */
export async function createStorage(choice: StorageChoice): Promise<Storage> {
  return createOneStorage(choice);
}

/** A primary, a backup for reads, and the breaker between them (see --storage-backup). */
export interface FailoverChoice extends BreakerOptions {
  readonly primary: StorageChoice;
  readonly backup: StorageChoice;
  readonly onTransition?: FailoverStorageOptions['onTransition'];
  readonly onMidStream?: FailoverStorageOptions['onMidStream'];
}

/**
 * Builds both backends and the FailoverStorage over them. A primary that is unavailable at
 * start (unreachable endpoint, missing bucket, refused credentials) does not stop the start:
 * the breaker starts open, reads go to the backup, and the primary is built again when the
 * cool-down lets a probe through. Any other error (and a backup that cannot be built) does.
 */
export async function createFailoverStorage(choice: FailoverChoice): Promise<FailoverStorage> {
  const backup = await createOneStorage(choice.backup);
  let primary: Storage;
  let startOpen: string | undefined;
  try {
    primary = await createOneStorage(choice.primary);
  } catch (err) {
    if (!isAvailabilityFailure(err)) {
      await backup.close?.();
      throw err;
    }
    primary = new DeferredStorage(() => createOneStorage(choice.primary));
    startOpen = err instanceof Error ? err.message : String(err);
  }
  return new FailoverStorage({
    primary, backup, failureThreshold: choice.failureThreshold, failureWindowMs: choice.failureWindowMs, cooldownMs: choice.cooldownMs,
    ...(startOpen === undefined ? {} : { startOpen }),
    ...(choice.onTransition === undefined ? {} : { onTransition: choice.onTransition }),
    ...(choice.onMidStream === undefined ? {} : { onMidStream: choice.onMidStream }),
  });
}

async function createOneStorage(choice: StorageChoice): Promise<Storage> {
  if (choice.kind === 's3') {
    const { kind: _kind, ...options } = choice;
    return S3Storage.create(options);
  }
  const { kind: _kind, ...options } = choice;
  return LocalStorage.create(options);
}

/** A backend whose writes can leave files behind after a crash (local: cross-filesystem publish temps). */
interface LeavesWriteLeftovers {
  sweepWriteLeftovers(nowMs?: number): Promise<number>;
}

function leavesWriteLeftovers(storage: Storage): storage is Storage & LeavesWriteLeftovers {
  return typeof (storage as Partial<LeavesWriteLeftovers>).sweepWriteLeftovers === 'function';
}

/**
 * Removes what crashed writes left behind in the store (by each backend's own rule: never
 * what a live writer may still use); how many were removed. 0 for backends that leave nothing.
 */
export function sweepWriteLeftovers(storage: Storage, nowMs?: number): Promise<number> {
  return leavesWriteLeftovers(storage) ? storage.sweepWriteLeftovers(nowMs) : Promise.resolve(0);
}
