/**
 * Who a request is and what each route needs. Every route declares `config: { access }`;
 * the auth hook (src/auth + src/server) enforces it, and a test sweeps the route table so a
 * route without a declared access level cannot slip by.
 */
export const ROLES = ['read', 'write', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/**
 * - `public`: everyone (health checks).
 * - `read` / `write` / `admin`: at least that role.
 * - `metrics`: loopback or admin (or everyone with --metrics-public).
 * - `loopback-or-admin`: diagnostics.
 */
export type Access = 'public' | Role | 'metrics' | 'loopback-or-admin';

export interface Identity {
  readonly kind: 'anonymous' | 'token' | 'jwt' | 'link';
  /** Token name, JWT subject, or the client address for anonymous requests. */
  readonly name: string;
  /** undefined = anonymous without read access. */
  readonly role: Role | undefined;
  /** Bound rate from a signed link (bytes/s), if any. */
  readonly maxRateBytesPerSec?: number;
}

const ROLE_RANK: Readonly<Record<Role, number>> = { read: 1, write: 2, admin: 3 };

/** True when `role` is at least `needed`. */
export function roleAtLeast(role: Role | undefined, needed: Role): boolean {
  return role !== undefined && ROLE_RANK[role] >= ROLE_RANK[needed];
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Required access for this route (enforced by the auth hook). */
    access?: Access;
  }
  interface FastifyRequest {
    /** Set by the auth hook before any handler runs. */
    identity?: Identity;
  }
}
