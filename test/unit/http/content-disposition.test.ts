/**
 * RFC 6266 Content-Disposition with RFC 8187 filename*: the UTF-8 name survives, and the
 * ASCII fallback has no `?`, `%XX`, `\` or `"`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatContentDisposition, asciiFallbackFilename, encodeExtValue } from '../../../src/http/index.ts';

/** Decodes an RFC 8187 ext-value as a user agent would. */
function decodeExtValue(value: string): string {
  const m = /^UTF-8''(.*)$/i.exec(value);
  assert.ok(m, value);
  return decodeURIComponent(m[1]!);
}

function parse(header: string): { type: string; filename: string; filenameStar: string } {
  const m = /^(attachment|inline); filename="([^"]*)"; filename\*=(\S+)$/.exec(header);
  assert.ok(m, header);
  return { type: m[1]!, filename: m[2]!, filenameStar: decodeExtValue(m[3]!) };
}

test('names survive through filename* and the fallback is safe', () => {
  const names = [
    '季度报告 2026.pdf',
    'résumé.docx',
    'plain.txt',
    'a "quoted" name.txt',
    'back\\slash.txt',
    'what?.txt',
    '100% done.txt',
    'already%20encoded.txt',
    "it's (1) [x] *.txt",
    'emoji 🚀.bin',
    'tab\there.txt',
    'crlf\r\ninjection.txt',
    '....',
    '日本',
    ';semi=colon.txt',
  ];
  for (const name of names) {
    const header = formatContentDisposition(name);
    const parsed = parse(header);
    assert.equal(parsed.type, 'attachment');
    assert.equal(parsed.filenameStar, name, `filename* round-trips ${name}`);
    assert.doesNotMatch(parsed.filename, /[?\\"%]/, `fallback of ${name}: ${parsed.filename}`);
    assert.match(parsed.filename, /^[\x20-\x7e]+$/, 'printable ASCII only');
    assert.doesNotMatch(header, /[\r\n]/, 'no header injection');
    assert.ok(parsed.filename.length > 0);
  }
});

test('fallback keeps what it can', () => {
  assert.equal(asciiFallbackFilename('résumé.docx'), 'resume.docx');
  assert.equal(asciiFallbackFilename('季度报告 2026.pdf'), '_ 2026.pdf');
  assert.equal(asciiFallbackFilename('100% done?.txt'), '100_ done_.txt');
  assert.equal(asciiFallbackFilename('日本'), 'download');
  assert.equal(asciiFallbackFilename('日本.pdf'), '_.pdf');
  assert.equal(asciiFallbackFilename('plain.txt'), 'plain.txt');
});

test('RFC 8187 §3.2.1: only attr-char stays unencoded; percent-encoding uses UTF-8 octets', () => {
  assert.equal(encodeExtValue('€ rates'), "UTF-8''%E2%82%AC%20rates"); // the RFC's own example
  assert.equal(encodeExtValue("a'b(c)*"), "UTF-8''a%27b%28c%29%2A");
  assert.equal(encodeExtValue('!#$&+-.^_`|~'), "UTF-8''!#$&+-.^_`|~");
});
