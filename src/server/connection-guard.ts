/**
 * Caps on open connections, checked when a connection is accepted and before any HTTP work:
 * --max-connections in total, --max-connections-client per client address (never for a
 * trusted proxy, whose connections carry many clients), and an fd-headroom guard that stops
 * accepting while the process is near its open-files limit, so that the clients already
 * connected can still open the files they asked for. A refused connection is destroyed at
 * once; refusals are counted and logged once per interval, never per socket.
 */
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { normalizeAddress } from './proxy-trust.ts';
import { countOpenFds } from './system-routes.ts';

export type ConnectionRefusal = 'max-connections' | 'max-connections-client' | 'fd-headroom';

export interface ConnectionLimits {
  /** Open connections at most (undefined: no cap). */
  readonly maxConnections: number | undefined;
  /** Open connections per client address (undefined: no cap). */
  readonly maxConnectionsClient: number | undefined;
  /** New connections are refused while the process has this many fds open (undefined: no guard). */
  readonly fdCeiling: number | undefined;
}

/**
 * The caps from the options and the fd soft limit (pure). fds are kept in reserve for files,
 * the state database, logs and Node itself: an eighth of the limit, at least 64. Each
 * connection may hold a file open too, so the default connection cap is half of the rest;
 * one client address may hold a quarter of that (at least 16).
 */
export function planConnectionLimits(input: { fdLimit: number | undefined; maxConnections: number | undefined; maxConnectionsClient: number | undefined }): ConnectionLimits {
  const { fdLimit } = input;
  const fdCeiling = fdLimit === undefined ? undefined : Math.max(16, fdLimit - Math.max(64, Math.floor(fdLimit / 8)));
  const maxConnections = input.maxConnections ?? (fdCeiling === undefined ? undefined : Math.max(16, Math.floor(fdCeiling / 2)));
  const maxConnectionsClient = input.maxConnectionsClient ?? (maxConnections === undefined ? undefined : Math.max(16, Math.floor(maxConnections / 4)));
  return { maxConnections, maxConnectionsClient, fdCeiling };
}

/** The soft "Max open files" limit from /proc/self/limits (Linux), or undefined. */
export async function readFdSoftLimit(): Promise<number | undefined> {
  try {
    const text = await readFile('/proc/self/limits', 'utf8');
    const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
    if (m === null || m[1] === 'unlimited') return undefined;
    return Number(m[1]);
  } catch {
    return undefined;
  }
}

export interface ConnectionGuardOptions extends ConnectionLimits {
  /** A trusted proxy's address is exempt from the per-client cap. */
  readonly isTrustedProxy: (address: string) => boolean;
  readonly onRefuse: (reason: ConnectionRefusal, address: string) => void;
}

export interface ConnectionGuard {
  /** Open connections now. */
  readonly open: number;
}

/** Decides one new connection (pure). */
export function decideConnection(state: { open: number; openFromClient: number; fdsInUse: number | undefined; exempt: boolean }, limits: ConnectionLimits): ConnectionRefusal | undefined {
  if (limits.maxConnections !== undefined && state.open >= limits.maxConnections) return 'max-connections';
  if (!state.exempt && limits.maxConnectionsClient !== undefined && state.openFromClient >= limits.maxConnectionsClient) return 'max-connections-client';
  if (limits.fdCeiling !== undefined && state.fdsInUse !== undefined && state.fdsInUse >= limits.fdCeiling) return 'fd-headroom';
  return undefined;
}

/** Installs the guard as the server's first 'connection' listener. */
export function installConnectionGuard(server: Server, options: ConnectionGuardOptions): ConnectionGuard {
  let open = 0;
  const byClient = new Map<string, number>();
  // fds in use: a sample of /proc/self/fd plus the connections accepted since (each one fd).
  // Sampled at most every 250 ms, and only while the guard matters (past half the ceiling).
  let fdSample: number | undefined;
  let acceptedSinceSample = 0;
  let sampledAt = 0;
  let sampling = false;
  const sample = (): void => {
    if (sampling || options.fdCeiling === undefined) return;
    sampling = true;
    const started = Date.now();
    void countOpenFds().then((n) => {
      fdSample = n;
      acceptedSinceSample = 0;
      sampledAt = started;
      sampling = false;
    });
  };
  sample();

  const onConnection = (socket: Socket): void => {
    const address = normalizeAddress(socket.remoteAddress ?? '');
    const estimate = fdSample === undefined ? undefined : fdSample + acceptedSinceSample;
    if (options.fdCeiling !== undefined && (estimate === undefined || estimate >= options.fdCeiling / 2) && Date.now() - sampledAt > 250) sample();
    const refusal = decideConnection({ open, openFromClient: byClient.get(address) ?? 0, fdsInUse: estimate, exempt: options.isTrustedProxy(address) }, options);
    if (refusal !== undefined) {
      options.onRefuse(refusal, address);
      socket.destroy();
      return;
    }
    open++;
    acceptedSinceSample++;
    byClient.set(address, (byClient.get(address) ?? 0) + 1);
    socket.once('close', () => {
      open--;
      acceptedSinceSample--;
      const n = (byClient.get(address) ?? 1) - 1;
      if (n <= 0) byClient.delete(address);
      else byClient.set(address, n);
    });
  };
  server.prependListener('connection', onConnection);
  return { get open() { return open; } };
}
