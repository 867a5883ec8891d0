/**
 * Keeps the send-timeout honest for slow clients (SPEC §2.1: "a connection that makes no
 * progress for --send-timeout is closed"; a slow but moving client is never cut).
 *
 * The server closes a socket that is idle for --send-timeout (socket idle timer, see
 * src/server/create-server.ts). Node only resets that timer when a whole write completes, so
 * with 256 KiB chunks a client reading at 4 KiB/s would be cut after 60 s although it never
 * stopped. This watchdog samples each active transfer a few times per timeout period and,
 * when bytes moved (the kernel accepted some of the pending write, or a pre-body phase such
 * as hashing advanced), restarts the socket's idle timer. A stalled client makes no progress,
 * so its timer runs out and the server closes it as before.
 */
import type { Socket } from 'node:net';

interface Watched {
  readonly socket: Socket;
  readonly progress: () => number;
  last: number;
}

/** The kernel-accepted byte position of a socket: changes only when bytes leave the process. */
export function socketProgress(socket: Socket): number {
  // `writeQueueSize` (bytes libuv still holds) is a long-standing property of the TCP handle
  // but not public API; without it, fall back to bytesWritten (progress per completed write).
  const handle = (socket as unknown as { _handle?: { writeQueueSize?: number } | null })._handle;
  const queued = typeof handle?.writeQueueSize === 'number' ? handle.writeQueueSize : 0;
  return socket.bytesWritten - queued;
}

export class ProgressWatchdog {
  readonly #watched = new Set<Watched>();
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;

  /** @param sendTimeoutMs the socket idle timeout; sampled 4× per period (50 ms–1 s). */
  constructor(sendTimeoutMs: number) {
    this.#intervalMs = Math.max(50, Math.min(1000, Math.floor(sendTimeoutMs / 4)));
  }

  /** Watches `socket` while `progress()` keeps changing; returns the disposer. */
  watch(socket: Socket, progress: () => number): Disposable {
    const entry: Watched = { socket, progress, last: progress() };
    this.#watched.add(entry);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => { this.#tick(); }, this.#intervalMs);
      this.#timer.unref();
    }
    return {
      [Symbol.dispose]: () => {
        this.#watched.delete(entry);
        if (this.#watched.size === 0 && this.#timer !== undefined) {
          clearInterval(this.#timer);
          this.#timer = undefined;
        }
      },
    };
  }

  get size(): number { return this.#watched.size; }

  #tick(): void {
    for (const w of this.#watched) {
      if (w.socket.destroyed) continue;
      const now = w.progress();
      if (now !== w.last) {
        w.last = now;
        // Restart the idle timer with its current duration (set by the server).
        const ms = w.socket.timeout;
        if (ms !== undefined && ms > 0) w.socket.setTimeout(ms);
      }
    }
  }

  close(): void {
    this.#watched.clear();
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
