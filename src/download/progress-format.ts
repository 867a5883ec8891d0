/**
 * Pure text rendering of transfer progress (one terminal line), shared by `ferry get`,
 * `ferry put` and anything else that shows a TransferEvent to a person.
 */
import { formatBytes } from '../core/units.ts';
import type { ProgressEvent } from './events.ts';

/** 3723000 → "1:02:03", 5000 → "0:05". */
export function formatEta(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}` : `${m}:${String(s).padStart(2, '0')}`;
}

/**
 * One line, at most `width` columns:
 * `[#########.........]  45%  230.1 MiB/512 MiB  85.3 MiB/s  ETA 0:03  8 conn`
 */
export function formatProgressLine(p: Pick<ProgressEvent, 'doneBytes' | 'sizeBytes' | 'speedBytesPerSec' | 'etaMs' | 'connections'>, width: number): string {
  const speed = `${formatBytes(p.speedBytesPerSec)}/s`;
  const conn = p.connections > 1 ? `  ${p.connections} conn` : '';
  if (p.sizeBytes === null || p.sizeBytes === 0) {
    return clip(`${formatBytes(p.doneBytes)}  ${speed}${conn}`, width);
  }
  const fraction = Math.min(1, p.doneBytes / p.sizeBytes);
  const pct = `${Math.floor(fraction * 100)}%`.padStart(4);
  const eta = p.etaMs === null ? 'ETA --:--' : `ETA ${formatEta(p.etaMs)}`;
  const tail = `${pct}  ${formatBytes(p.doneBytes)}/${formatBytes(p.sizeBytes)}  ${speed}  ${eta}${conn}`;
  const barWidth = Math.min(30, width - tail.length - 4);
  if (barWidth < 5) return clip(tail, width);
  const filled = Math.round(fraction * barWidth);
  return `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${tail}`;
}

function clip(text: string, width: number): string {
  return text.length <= width ? text : text.slice(0, Math.max(0, width));
}
