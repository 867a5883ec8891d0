/**
 * Timestamps in a ZIP entry. The MS-DOS date/time fields (APPNOTE 4.4.6) can only say
 * 1980-01-01 … 2107-12-31 in 2-second steps and carry no time zone; the Info-ZIP extended
 * timestamp extra field 0x5455 (APPNOTE 4.6.7 names it; Info-ZIP's extra.fld defines it) carries
 * the real modification time as 32-bit Unix seconds, which unzip, 7-Zip, bsdtar and macOS prefer.
 *
 * Ferry writes the DOS fields in UTC, not in the server's zone, so that the bytes of an archive
 * depend only on its manifest (same selection → same bytes → same strong ETag on any host).
 */

const DOS_MIN_MS = Date.UTC(1980, 0, 1, 0, 0, 0);
const DOS_MAX_MS = Date.UTC(2107, 11, 31, 23, 59, 58);

export interface DosDateTime {
  /** Bits 15-9 year-1980, 8-5 month, 4-0 day. */
  readonly date: number;
  /** Bits 15-11 hour, 10-5 minute, 4-0 seconds/2. */
  readonly time: number;
}

/** DOS date/time of `mtimeMs` in UTC, clamped to the representable 1980…2107 range. */
export function toDosDateTime(mtimeMs: number): DosDateTime {
  const ms = Number.isFinite(mtimeMs) ? Math.min(Math.max(Math.floor(mtimeMs), DOS_MIN_MS), DOS_MAX_MS) : DOS_MIN_MS;
  const d = new Date(ms);
  const date = ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate();
  const time = (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (d.getUTCSeconds() >> 1);
  return { date, time };
}

/**
 * The modification time as Unix seconds for the 0x5455 extra, or undefined when it does not fit
 * the field unambiguously (readers disagree on whether it is signed, so only 0 … 2^31-1 is written;
 * outside that range the clamped DOS time is all the archive says).
 */
export function toUnixTime32(mtimeMs: number): number | undefined {
  if (!Number.isFinite(mtimeMs)) return undefined;
  const s = Math.floor(mtimeMs / 1000);
  return s >= 0 && s <= 0x7fff_ffff ? s : undefined;
}
