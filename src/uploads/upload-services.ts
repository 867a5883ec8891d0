/**
 * The services behind the upload routes, built once per server: the upload record store, the
 * tus service, the PUT options, and the sweeper (expired uploads, orphaned files) with its
 * timer. No HTTP here: the handlers (tus-handlers.ts, put-handler.ts) use these.
 */
import { sweepWriteLeftovers, type Storage } from '../storage/index.ts';
import type { MetaStore } from '../meta/index.ts';
import type { TransferControl } from '../limits/index.ts';
import { DigestEngine } from './digest-engine.ts';
import type { ConflictPolicy } from './publish-file.ts';
import type { PutOptions } from './put-upload.ts';
import { TusService, sweepIntervalMs, type SweepResult, type UploadLogger } from './tus-service.ts';
import { createInProcessUploadLocker, type UploadLocker } from './upload-lock.ts';
import { UploadStore } from './upload-store.ts';

/** The options uploads read (FerryConfig satisfies this structurally). */
export interface UploadConfig {
  readonly stateDir: string;
  readonly maxUploadSize: number | undefined;
  /** --max-pending-uploads / --max-pending-uploads-client. */
  readonly maxPendingUploads: number;
  readonly maxPendingUploadsClient: number;
  /** --max-upload-metadata: longest Upload-Metadata header in bytes. */
  readonly maxUploadMetadata: number;
  readonly uploadExpiry: number;
  readonly uploadLockWait: number;
  readonly onConflict: ConflictPolicy;
  readonly dotfiles: 'allow' | 'deny';
  readonly trustProxy: boolean;
  /** Durable progress inside one long PATCH (--upload-checkpoint). */
  readonly uploadCheckpoint?: number;
}

export interface UploadRouteDeps {
  readonly config: UploadConfig;
  readonly storage: Storage;
  readonly meta: MetaStore;
  readonly logger: UploadLogger;
  readonly transfer: TransferControl;
  /** Defaults to the in-process lock; a shared (Redis) lock goes here for several instances. */
  readonly locker?: UploadLocker;
}

export interface UploadServices {
  readonly config: UploadConfig;
  readonly transfer: TransferControl;
  readonly logger: UploadLogger;
  readonly service: TusService;
  readonly putOptions: PutOptions;
  /** Staged ids of PUTs in progress (the sweeper leaves them alone). */
  readonly activeTemps: Set<string>;
  /** One sweep now (expired uploads, orphaned files). */
  sweep(): Promise<SweepResult>;
  /** The first sweep and the crash recovery pass, then a sweep on a timer. Call once the server listens. */
  start(): void;
  /** Stops the timer, waits for in-flight writes, closes the digest workers. Safe to call twice. */
  close(): Promise<void>;
}

export async function createUploadServices(deps: UploadRouteDeps): Promise<UploadServices> {
  const cfg = deps.config;
  const digests = new DigestEngine();
  const store = new UploadStore(deps.meta, digests, deps.storage.staging);
  const logger = deps.logger.child({ area: 'uploads' });
  const service = new TusService({
    storage: deps.storage, meta: deps.meta, store, logger,
    locker: deps.locker ?? createInProcessUploadLocker(),
    limits: { maxUploadBytes: cfg.maxUploadSize, maxMetadataBytes: cfg.maxUploadMetadata },
    maxPending: cfg.maxPendingUploads, maxPendingPerClient: cfg.maxPendingUploadsClient,
    expiryMs: cfg.uploadExpiry, lockWaitMs: cfg.uploadLockWait, onConflict: cfg.onConflict, dotfiles: cfg.dotfiles,
    ...(cfg.uploadCheckpoint === undefined ? {} : { checkpointBytes: cfg.uploadCheckpoint }),
  });
  const putOptions: PutOptions = { storage: deps.storage, meta: deps.meta, store, logger, maxUploadBytes: cfg.maxUploadSize, dotfiles: cfg.dotfiles };
  const activeTemps = new Set<string>();

  const sweep = async (): Promise<SweepResult> => {
    const r = await service.sweep(activeTemps);
    // Cross-filesystem temp copies that a killed process left in target folders (same rule as
    // above: never one whose writer is still alive).
    const publishTemps = await sweepWriteLeftovers(deps.storage);
    const all: SweepResult = { ...r, orphans: r.orphans + publishTemps };
    if (all.expired > 0 || all.orphans > 0) logger.info({ event: 'sweep', ...all, publishTemps }, 'expired uploads and orphaned files removed');
    else logger.debug({ event: 'sweep', ...all, publishTemps }, 'upload sweep found nothing to remove');
    return all;
  };

  let timer: NodeJS.Timeout | undefined;
  const start = (): void => {
    const run = (): void => { void sweep().catch((err: unknown) => { logger.warn({ err }, 'upload sweep failed'); }); };
    void (async () => {
      await sweep().catch((err: unknown) => { logger.warn({ err }, 'upload sweep failed'); });
      await service.recover().catch((err: unknown) => { logger.warn({ err }, 'upload recovery failed'); });
    })();
    timer = setInterval(run, sweepIntervalMs(cfg.uploadExpiry));
    timer.unref();
  };
  const close = async (): Promise<void> => {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
    await service.drain();
    await digests.close();
  };

  return { config: cfg, transfer: deps.transfer, logger, service, putOptions, activeTemps, sweep, start, close };
}
