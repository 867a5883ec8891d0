/**
 * The HMAC keys for signed links (--link-keys K1,K2: the first signs, all verify). Without
 * configured keys one random key is made per server start (links die with the process).
 * The access hook (verifies) and the links route (signs) must share it, so keys are
 * remembered per owner object: the server passes its frozen config to both.
 */
import { randomBytes } from 'node:crypto';

const byOwner = new WeakMap<object, readonly Uint8Array[]>();

/** Keys as bytes (UTF-8 of each configured key), signing key first; one random key when none are configured. */
export function resolveLinkKeys(configured: readonly string[] | undefined, owner: object): readonly Uint8Array[] {
  let keys = byOwner.get(owner);
  if (keys === undefined) {
    keys = Object.freeze(configured !== undefined && configured.length > 0
      ? configured.map((k) => Buffer.from(k, 'utf8'))
      : [randomBytes(32)]);
    byOwner.set(owner, keys);
  }
  return keys;
}
