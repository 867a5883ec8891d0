/**
 * Pure planning of a segmented download. The file is cut into fixed-size pieces (the unit of
 * integrity: one CRC-32 per piece in the resume state); segments always start and end on piece
 * boundaries (except where a resumed partial piece continues), so every piece is written front
 * to back by exactly one segment and its CRC can be computed on the fly.
 */

/** Half-open byte range [start, end). */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

export const MIB = 1024 * 1024;
/** Smallest piece; keeps a kill -9 loss and the state file small. */
export const MIN_PIECE_BYTES = MIB;
/** Most pieces in one state file (≈ 40 KiB of JSON). */
export const MAX_PIECES = 4096;
/** `--segments` cap (issue: default 4, cap 16). */
export const MAX_SEGMENTS = 16;

/** The power of two ≥ 1 MiB that keeps the piece count ≤ MAX_PIECES. */
export function choosePieceSize(sizeBytes: number): number {
  let piece = MIN_PIECE_BYTES;
  while (Math.ceil(sizeBytes / piece) > MAX_PIECES) piece *= 2;
  return piece;
}

export function pieceCount(sizeBytes: number, pieceBytes: number): number {
  return Math.ceil(sizeBytes / pieceBytes);
}

/** First piece boundary ≥ offset (capped at `sizeBytes`). */
export function alignUp(offset: number, pieceBytes: number, sizeBytes: number): number {
  return Math.min(sizeBytes, Math.ceil(offset / pieceBytes) * pieceBytes);
}

/**
 * The byte ranges still to fetch, given which pieces are complete and how many leading bytes
 * of some incomplete pieces are already on disk (`partialBytes`: piece index → bytes).
 * Adjacent missing pieces are merged into one range.
 */
export function missingRanges(sizeBytes: number, pieceBytes: number, complete: readonly boolean[], partialBytes: ReadonlyMap<number, number> = new Map()): ByteRange[] {
  const out: ByteRange[] = [];
  const n = pieceCount(sizeBytes, pieceBytes);
  let open: { start: number; end: number } | undefined;
  for (let i = 0; i < n; i++) {
    const pieceStart = i * pieceBytes;
    const pieceEnd = Math.min(sizeBytes, pieceStart + pieceBytes);
    if (complete[i] === true) {
      if (open !== undefined) { out.push(open); open = undefined; }
      continue;
    }
    const have = Math.min(partialBytes.get(i) ?? 0, pieceEnd - pieceStart);
    if (have > 0) {
      // A partial piece starts its own range so its CRC seed stays attached to it.
      if (open !== undefined) { out.push(open); open = undefined; }
      if (pieceStart + have < pieceEnd) open = { start: pieceStart + have, end: pieceEnd };
      continue;
    }
    if (open === undefined) open = { start: pieceStart, end: pieceEnd };
    else open.end = pieceEnd;
  }
  if (open !== undefined) out.push(open);
  return out;
}

/**
 * Divides the missing ranges into at most `count` segments of at least `minSegmentBytes`
 * (a smaller range stays whole), cutting only on piece boundaries. Segments are handed out to
 * the gaps in proportion to their size: each extra segment goes to the gap whose parts are
 * currently largest.
 */
export function planSegments(gaps: readonly ByteRange[], count: number, pieceBytes: number, minSegmentBytes: number, sizeBytes: number): ByteRange[] {
  const parts = gaps.map(() => 1);
  let used = gaps.length;
  while (used < count) {
    let best = -1;
    let bestSize = 0;
    for (let i = 0; i < gaps.length; i++) {
      const g = gaps[i]!;
      const len = g.end - g.start;
      const k = parts[i]!;
      if (len / (k + 1) < minSegmentBytes) continue;
      if (len / k > bestSize) { bestSize = len / k; best = i; }
    }
    if (best === -1) break;
    parts[best]!++;
    used++;
  }
  const out: ByteRange[] = [];
  for (let i = 0; i < gaps.length; i++) {
    const g = gaps[i]!;
    const k = parts[i]!;
    let start = g.start;
    for (let j = 1; j <= k; j++) {
      const end = j === k ? g.end : Math.min(g.end, alignUp(g.start + Math.round(((g.end - g.start) * j) / k), pieceBytes, sizeBytes));
      if (end > start) { out.push({ start, end }); start = end; }
    }
  }
  return out;
}

/** A running segment as the work stealer sees it. */
export interface ActiveSegment {
  /** Bytes before this offset are already received (they may still be in a write buffer). */
  readonly receivedPos: number;
  readonly end: number;
}

/**
 * Work stealing: an idle worker takes the back half of the segment with the largest remaining
 * gap. Returns the victim's index and the split offset (a piece boundary; the victim keeps
 * [receivedPos, split), the thief gets [split, end)), or undefined when no segment has at least
 * two minimum segments left.
 */
export function chooseSteal(active: readonly ActiveSegment[], pieceBytes: number, minSegmentBytes: number, sizeBytes: number): { index: number; split: number } | undefined {
  let index = -1;
  let largest = 0;
  for (let i = 0; i < active.length; i++) {
    const s = active[i]!;
    const remaining = s.end - s.receivedPos;
    if (remaining > largest) { largest = remaining; index = i; }
  }
  if (index === -1 || largest < 2 * minSegmentBytes) return undefined;
  const victim = active[index]!;
  const split = alignUp(victim.receivedPos + Math.floor(largest / 2), pieceBytes, sizeBytes);
  if (split - victim.receivedPos < Math.min(minSegmentBytes, pieceBytes) || victim.end - split < minSegmentBytes) return undefined;
  return { index, split };
}
