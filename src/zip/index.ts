/**
 * Streaming ZIP: a pure planner that knows every byte's offset before the first one is sent,
 * a writer that can produce any byte range of the archive (Range/resume), a one-pass writer for
 * deflated archives, and the CRC-32 cache. See docs/zip.md.
 */
export {
  planZip, hashSelection, zipEtag, entryHasDescriptor, findEntryAt, findCentralEntryAt, validateMember, ZIP_FORMAT_VERSION,
  type ZipLayout, type ZipMemberInput, type ZipEntry, type ZipSourceEntry, type ZipPlan, type PlanZipOptions,
} from './plan-zip.ts';
export { readZipRange, type ZipDataSource, type ReadZipRangeOptions, type ZipByteRange, type CrcProgress } from './read-zip-range.ts';
export { streamZip, deflateBound, type StreamZipSource, type StreamZipOptions, type StreamZipResult } from './stream-zip.ts';
export {
  recordCrc, lookupCrc, lookupCrcRecord, forgetCrc, loadCrcProgress, saveCrcProgress, clearCrcProgress, crcCacheKey, createCrc32, crc32OfChunks,
  CRC_NAMESPACE, CRC_PROGRESS_NAMESPACE, CRC_TTL_MS, type CrcStore, type CrcKey, type CrcRecord, type Crc32Accumulator,
} from './crc-cache.ts';
export { sanitizeSegment, joinEntryName, numberedName, EntryNameRegistry, toArchiveFileName, MAX_ENTRY_NAME_BYTES } from './entry-name.ts';
export { isCompressible, MIN_DEFLATE_BYTES } from './is-compressible.ts';
export { toDosDateTime, toUnixTime32, type DosDateTime } from './dos-time.ts';
export { MAX_U16, MAX_U32 } from './encode-headers.ts';
export { PlanFlights, type PlanFlightOptions, type PlanFlightEvent, type EntryBudget, type PlanLease } from './plan-flight.ts';
