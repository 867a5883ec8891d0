import type { Storage } from '../storage/index.ts';
import type { MetaStore } from '../meta/index.ts';
import type { TransferControl } from '../limits/index.ts';

/** The options serve reads (a structural subset of FerryConfig: serve does not import config). */
export interface ServeConfig {
  readonly maxRanges: number;
  readonly compress: 'on' | 'off';
  readonly readBufferSize: number;
  readonly sendTimeout: number;
  /** --s3-redirect: GETs of files answered with 302 to a presigned URL (when the backend can). */
  readonly s3Redirect: boolean;
  /** --s3-redirect-ttl, milliseconds. */
  readonly s3RedirectTtl: number;
}

/** What the composition root hands to `registerServeRoutes`. */
export interface ServeDeps {
  readonly config: ServeConfig;
  readonly storage: Storage;
  readonly meta: MetaStore;
  readonly transfer: TransferControl;
}
