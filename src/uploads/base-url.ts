/**
 * The absolute base URL for `Location` (tus §Creation: "The Server MUST set the Location header
 * to the URL of the created resource"). Behind a proxy (`--trust-proxy`) it is built from
 * `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Forwarded-Prefix`; otherwise from the socket
 * and `Host`. Values that are not a plain scheme / host / path are ignored, so a header cannot
 * inject anything into `Location`. Pure.
 */
import type { HeaderBag } from './decide-tus.ts';
import { header } from './decide-tus.ts';

export interface BaseUrlInput {
  readonly headers: HeaderBag;
  readonly trustProxy: boolean;
  /** The connection is TLS. */
  readonly encrypted: boolean;
  /** `host:port` of the listening socket, used when `Host` is absent or malformed. */
  readonly localHost: string;
}

const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;
const PREFIX = /^(?:\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+$/;

function first(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const v = value.split(',')[0]!.trim();
  return v === '' ? undefined : v;
}

/** e.g. `https://files.example.org/ferry` (no trailing slash). */
export function requestBaseUrl(input: BaseUrlInput): string {
  let proto = input.encrypted ? 'https' : 'http';
  let host = first(header(input.headers, 'host'));
  if (host === undefined || !HOST.test(host)) host = input.localHost;
  let prefix = '';
  if (input.trustProxy) {
    const fproto = first(header(input.headers, 'x-forwarded-proto'))?.toLowerCase();
    if (fproto === 'http' || fproto === 'https') proto = fproto;
    const fhost = first(header(input.headers, 'x-forwarded-host'));
    if (fhost !== undefined && HOST.test(fhost)) host = fhost;
    const fprefix = first(header(input.headers, 'x-forwarded-prefix'))?.replace(/\/+$/, '');
    if (fprefix !== undefined && PREFIX.test(fprefix)) prefix = fprefix;
  }
  return `${proto}://${host}${prefix}`;
}
