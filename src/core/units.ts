/**
 * Human units for sizes, rates and durations (SPEC §1): `512k`, `64M`, `1G`; `10M` (bytes/s);
 * `30s`, `5m`. Binary multiples (k = 1024). A bare number is bytes or milliseconds.
 */
const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1, b: 1,
  k: 1024, kb: 1024, kib: 1024,
  m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3,
  t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4,
};

const DURATION_UNITS: Readonly<Record<string, number>> = {
  '': 1, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000,
};

/** Parses `512k`, `64M`, `1.5G`, `1048576` → bytes; undefined when it is not a size. */
export function parseSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (m === null) return undefined;
  const mult = SIZE_UNITS[(m[2] ?? '').toLowerCase()];
  if (mult === undefined) return undefined;
  const value = Math.round(Number(m[1]) * mult);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** Parses a rate in bytes per second: `10M`, `10M/s`, `512k`. */
export function parseRate(text: string): number | undefined {
  return parseSize(text.replace(/\/s$/i, ''));
}

/** Parses `30s`, `5m`, `24h`, `250ms`, `1500` (ms) → milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (m === null) return undefined;
  const mult = DURATION_UNITS[(m[2] ?? '').toLowerCase()];
  if (mult === undefined) return undefined;
  const value = Math.round(Number(m[1]) * mult);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) { value /= 1024; i++; }
  return `${i === 0 ? value : value.toFixed(value >= 100 ? 0 : 1)} ${units[i]}`;
}
