/** `--anonymous read|none|auto` (SPEC §2.3: `read` when listening on loopback, else `none`). */
import type { Role } from '../core/access.ts';

/** True for a loopback listen address or peer address (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1' || h.startsWith('127.') || h.startsWith('::ffff:127.');
}

/** The role of a request without credentials. */
export function resolveAnonymousRole(mode: 'read' | 'none' | 'auto', listenHost: string): Role | undefined {
  if (mode === 'read') return 'read';
  if (mode === 'none') return undefined;
  return isLoopbackHost(listenHost) ? 'read' : undefined;
}
