/**
 * Pure HTTP semantics (RFC 9110, 6266, 8187, 9530): every protocol decision a route needs,
 * as functions that take strings and numbers and return data. No I/O, no logger, no config.
 * Other areas (serve, zip, uploads, download) import only from this file.
 */
export { parseHttpDate, formatHttpDate, toHttpDateSeconds } from './http-date.ts';
export {
  generateEtag, parseEntityTag, parseEntityTagList, strongMatch, weakMatch,
  type EntityTag, type EtagSource, type EntityTagList,
} from './etag.ts';
export {
  evaluatePreconditions, evaluateIfRange, checkIfMatch, checkIfUnmodifiedSince, checkIfNoneMatch, checkIfModifiedSince,
  headerValue, conditionalHeadersFrom, type IncomingHeaders,
  type ConditionalHeaders, type Validators, type PreconditionResult, type ConditionResult,
} from './preconditions.ts';
export {
  parseRangeHeader, resolveRanges, coalesceRanges, planRanges, sumRangesSize, formatContentRange, formatUnsatisfiedRange,
  type ByteRange, type RangeSpec, type RangeHeader, type RangePlan, type PlanRangesOptions,
} from './range.ts';
export {
  planDownload, type DownloadPlan, type PlanDownloadOptions, type PlannedHeaders, type PlannedPart,
} from './plan-download.ts';
export { planMultipartByteranges, generateBoundary, type MultipartPlan, type MultipartPart } from './multipart.ts';
export { formatContentDisposition, asciiFallbackFilename, encodeExtValue } from './content-disposition.ts';
export {
  parseAcceptEncoding, negotiateEncoding, isCompressibleType,
  type ContentCoding, type AcceptEncodingEntry,
} from './encoding.ts';
export {
  parseWantDigest, wantsSha256, formatDigestField, digestCacheKey, DIGEST_CACHE_NAMESPACE,
  type DigestKeySource,
} from './digest.ts';
