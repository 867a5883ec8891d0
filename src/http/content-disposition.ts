/**
 * `Content-Disposition` (RFC 6266) with both a `filename` ASCII fallback and a `filename*`
 * RFC 8187 extended value, so `季度报告 2026.pdf` survives in every browser:
 *
 *   attachment; filename="_ 2026.pdf"; filename*=UTF-8''%E5%AD%A3%E5%BA%A6%E6%8A%A5%E5%91%8A%202026.pdf
 *
 * RFC 6266 §4.3: "when both filename and filename* are present in a single header field
 * value, recipients SHOULD pick filename* and ignore filename"; §C.2 advises putting
 * `filename` first for old user agents.
 */

/**
 * RFC 8187 §3.2.1 attr-char: ALPHA / DIGIT / "!" / "#" / "$" / "&" / "+" / "-" / "." /
 * "^" / "_" / "`" / "|" / "~". Everything else is percent-encoded from UTF-8.
 */
const ATTR_CHAR = /[A-Za-z0-9!#$&+\-.^_`|~]/;

/** `UTF-8''` + pct-encoded value (RFC 8187 §3.2.1 ext-value, charset UTF-8, no language). */
export function encodeExtValue(value: string): string {
  let out = "UTF-8''";
  for (const byte of Buffer.from(value, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && ATTR_CHAR.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * The `filename` fallback: printable ASCII only, and none of the characters that user agents
 * treat specially in the plain parameter (RFC 6266 §4.3 / Appendix D): no `%` (some decode
 * `%XX`), no `\` (some treat it as an escape or a path separator), no `"`, no `?` (what a
 * lossy conversion would leave behind), no `/`. Accents are stripped (é → e); other runs of
 * non-ASCII become one `_`. Never empty.
 */
export function asciiFallbackFilename(name: string): string {
  const stripped = name.normalize('NFKD').replace(/[\u0300-\u036f]/g, '');
  let out = '';
  let lastWasReplacement = false;
  for (const ch of stripped) {
    const code = ch.codePointAt(0)!;
    const safe = code >= 0x20 && code < 0x7f && !'%\\"?/'.includes(ch);
    if (safe) {
      out += ch;
      lastWasReplacement = false;
    } else if (!lastWasReplacement) {
      out += '_';
      lastWasReplacement = true;
    }
  }
  out = out.trim();
  return out === '' || out === '_' || /^\.+$/.test(out) ? `download${extensionOf(out)}` : out;
}

function extensionOf(name: string): string {
  const m = /\.[A-Za-z0-9]{1,10}$/.exec(name);
  return m === null ? '' : m[0];
}

/**
 * The full field value for a download, e.g. for `?download`.
 * @param filename the file's own name (last path segment), any Unicode.
 */
export function formatContentDisposition(filename: string, type: 'attachment' | 'inline' = 'attachment'): string {
  return `${type}; filename="${asciiFallbackFilename(filename)}"; filename*=${encodeExtValue(filename)}`;
}
