import type { Storage } from '../storage/index.ts';
import type { MetaStore } from '../meta/index.ts';
import type { TransferControl } from '../limits/index.ts';

/** The options serve reads (a structural subset of FerryConfig: serve does not import config). */
export interface ServeConfig {
  readonly maxRanges: number;
  readonly compress: 'on' | 'off';
  readonly readBufferSize: number;
  readonly sendTimeout: number;
}

/** What the composition root hands to `registerServeRoutes`. */
export interface ServeDeps {
  readonly config: ServeConfig;
  readonly storage: Storage;
  readonly meta: MetaStore;
  readonly transfer: TransferControl;
}
