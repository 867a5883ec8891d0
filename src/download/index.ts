/**
 * The client library: segmented, resumable, verified downloads (`ferry get`, download tasks)
 * and resumable tus uploads (`ferry put`). No CLI code here.
 */
export { download, type DownloadOptions, type DownloadResult } from './download.ts';
export type { TransferEvent, StartEvent, ProgressEvent, RetryEvent, RestartEvent, ResumeEvent, VerifyEvent, WarningEvent, DoneEvent } from './events.ts';
export { formatProgressLine, formatEta } from './progress-format.ts';
export { parseResumeState, readResumeState, STATE_FORMAT, STATE_VERSION, type ResumeState, type PartialPiece } from './resume-state.ts';
export { MAX_SEGMENTS } from './segment-plan.ts';
export { upload, MAX_PARALLEL, type UploadOptions, type UploadResult, type UploadState } from './tus-upload.ts';
