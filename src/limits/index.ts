export { createUnlimitedTransferControl, type TransferControl, type TransferSubject, type ReleasePermit } from './types.ts';
