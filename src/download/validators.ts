/**
 * Which validator guards a resumed or segmented request, and whether a response still belongs
 * to the representation the download started with. Pure.
 */

/** What identifies the remote representation across requests and runs. */
export interface RemoteIdentity {
  /** Complete length in bytes; undefined when the server does not say. */
  readonly sizeBytes: number | undefined;
  readonly etag: string | undefined;
  readonly lastModified: string | undefined;
}

/** RFC 9110 §8.8.3: `entity-tag = [ weak ] opaque-tag`, `weak = %s"W/"`. */
export function isStrongEtag(etag: string | undefined): etag is string {
  return etag !== undefined && /^"[\x21\x23-\x7e\x80-\xff]*"$/.test(etag);
}

/**
 * The value for `If-Range` (RFC 9110 §13.1.5), or undefined when there is no strong validator.
 * "A client MUST NOT generate an If-Range header field containing an entity tag that is marked
 * as weak." A date only "if the client has no entity tag … and the date is a strong validator
 * in the sense defined by Section 8.8.2.2": `Date` at least one second after `Last-Modified`.
 */
export function chooseIfRange(etag: string | undefined, lastModified: string | undefined, date: string | undefined): string | undefined {
  if (isStrongEtag(etag)) return etag;
  if (etag !== undefined) return undefined;
  if (lastModified === undefined || date === undefined) return undefined;
  const lm = Date.parse(lastModified);
  const d = Date.parse(date);
  if (Number.isNaN(lm) || Number.isNaN(d)) return undefined;
  return d - lm >= 1000 ? lastModified : undefined;
}

/**
 * Compares what a response says about the representation with what the download started with.
 * @returns a human sentence describing the change, or undefined when nothing contradicts it.
 */
export function describeChange(started: RemoteIdentity, seen: RemoteIdentity): string | undefined {
  if (started.sizeBytes !== undefined && seen.sizeBytes !== undefined && started.sizeBytes !== seen.sizeBytes) {
    return `its size changed from ${started.sizeBytes} to ${seen.sizeBytes} bytes`;
  }
  if (started.etag !== undefined && seen.etag !== undefined && started.etag !== seen.etag) {
    return `its ETag changed from ${started.etag} to ${seen.etag}`;
  }
  if (started.etag === undefined && started.lastModified !== undefined && seen.lastModified !== undefined && started.lastModified !== seen.lastModified) {
    return `its Last-Modified changed from ${started.lastModified} to ${seen.lastModified}`;
  }
  return undefined;
}
