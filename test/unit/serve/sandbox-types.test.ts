/**
 * Which files go out with `Content-Security-Policy: sandbox` (security hardening: "XML types
 * that browsers render as active content"). The old rule was a deny-list of five types, so
 * .rdf, .xslt, .atom, .rss, .smil, .wsdl and .mml were served without the sandbox and their
 * XHTML <script> ran on Ferry's origin: those rows failed on the old code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contentTypeOf, needsSandbox } from '../../../src/serve/representation.ts';

/** extension → sandboxed? */
const BY_EXTENSION: ReadonlyArray<readonly [string, boolean]> = [
  // documents that run script
  ['html', true], ['htm', true], ['xhtml', true], ['svg', true], ['xml', true], ['xsl', true], ['xsd', true],
  ['xslt', true], ['rdf', true], ['atom', true], ['rss', true], ['smil', true], ['wsdl', true], ['mml', true], ['kml', true],
  // not known to be inert → sandboxed too
  ['js', true], ['mjs', true], ['css', true], ['md', true], ['vtt', true], ['ics', true], ['wasm', true], ['swf', true],
  ['webmanifest', true], ['jsonld', true], ['sh', true], ['ps', true],
  // inert
  ['txt', false], ['log', false], ['csv', false], ['json', false], ['map', false],
  ['png', false], ['jpg', false], ['gif', false], ['webp', false], ['avif', false], ['ico', false], ['bmp', false], ['tif', false],
  ['mp4', false], ['webm', false], ['mkv', false], ['mov', false], ['mp3', false], ['ogg', false], ['flac', false], ['m4a', false],
  ['woff', false], ['woff2', false], ['ttf', false], ['otf', false], ['eot', false],
  ['zip', false], ['gz', false], ['tar', false], ['7z', false], ['rar', false], ['xz', false], ['bz2', false], ['epub', false],
  ['pdf', false], ['bin', false], ['iso', true],
];

test('sandbox by file extension (via the Content-Type Ferry sends)', () => {
  const wrong = BY_EXTENSION.filter(([ext, want]) => needsSandbox(contentTypeOf(`file.${ext}`)) !== want)
    .map(([ext, want]) => `.${ext} (${contentTypeOf(`file.${ext}`)}): want ${want ? 'sandbox' : 'none'}`);
  assert.deepEqual(wrong, []);
});

test('unknown and missing extensions are application/octet-stream: no sandbox (downloaded, nosniff)', () => {
  for (const name of ['README', 'data.unknownext', '.hidden', 'archive.zst']) {
    assert.equal(contentTypeOf(name), 'application/octet-stream', name);
    assert.equal(needsSandbox(contentTypeOf(name)), false, name);
  }
});

test('sandbox by media type: any XML, unknown types and odd spellings are sandboxed', () => {
  const cases: ReadonlyArray<readonly [string, boolean]> = [
    ['application/vnd.example+xml', true], ['text/xml-external-parsed-entity', true], ['IMAGE/SVG+XML; charset=utf-8', true],
    ['text/html', true], ['TEXT/HTML ; charset=utf-8', true], ['application/x-unknown', true], ['', true], ['garbage', true],
    ['multipart/x-mixed-replace', true], ['model/gltf-binary', true],
    ['image/png', false], ['Image/PNG', false], ['text/plain; charset=utf-8', false], ['application/json', false],
    ['application/vnd.openxmlformats-officedocument.wordprocessingml.document', true], ['application/epub+zip', false],
  ];
  for (const [type, want] of cases) assert.equal(needsSandbox(type), want, type);
});
