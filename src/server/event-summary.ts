/**
 * Logs a burst of like events (refused or cut connections) as one line when it starts and one
 * summary per interval while it lasts, never one line per event: a flood must not turn into
 * a flood of log lines.
 */
import type { Logger } from '../observability/logger.ts';

export interface EventSummary extends Disposable {
  /** Records one event with its reason. */
  note(reason: string): void;
}

export function createEventSummary(logger: Logger, event: string, message: string, intervalMs: number): EventSummary {
  let counts = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    timer = undefined;
    if (counts.size === 0) return;
    logger.warn({ event, counts: Object.fromEntries(counts), intervalMs }, `${message} (summary)`);
    counts = new Map();
    timer = setTimeout(flush, intervalMs);
    timer.unref();
  };
  return {
    note(reason) {
      if (timer === undefined) {
        // The first event of a burst is logged at once; the rest are summed up per interval.
        logger.warn({ event, reason }, message);
        timer = setTimeout(flush, intervalMs);
        timer.unref();
        return;
      }
      counts.set(reason, (counts.get(reason) ?? 0) + 1);
    },
    [Symbol.dispose]() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}
