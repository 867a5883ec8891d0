/** RFC 9110 §14.6 multipart/byteranges: framing and an exact, precomputed Content-Length. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planMultipartByteranges, generateBoundary } from '../../../src/http/index.ts';

function render(plan: ReturnType<typeof planMultipartByteranges>, content: Buffer): Buffer {
  const chunks: Buffer[] = [];
  for (const part of plan.parts) {
    chunks.push(Buffer.from(part.head, 'latin1'), content.subarray(part.range.start, part.range.end + 1));
  }
  chunks.push(Buffer.from(plan.tail, 'latin1'));
  return Buffer.concat(chunks);
}

test('the body matches RFC 9110 §14.6 example framing and the planned length exactly', () => {
  const content = Buffer.from('0123456789'.repeat(127));
  const plan = planMultipartByteranges([{ start: 0, end: 50 }, { start: 100, end: 150 }], content.length, 'text/plain', 'THIS_STRING_SEPARATES');
  assert.equal(plan.contentType, 'multipart/byteranges; boundary=THIS_STRING_SEPARATES');
  const body = render(plan, content);
  assert.equal(body.length, plan.contentLength);
  const expected = [
    '--THIS_STRING_SEPARATES',
    'Content-Type: text/plain',
    'Content-Range: bytes 0-50/1270',
    '',
    content.subarray(0, 51).toString(),
    '--THIS_STRING_SEPARATES',
    'Content-Type: text/plain',
    'Content-Range: bytes 100-150/1270',
    '',
    content.subarray(100, 151).toString(),
    '--THIS_STRING_SEPARATES--',
    '',
  ].join('\r\n');
  assert.equal(body.toString('latin1'), expected);
});

test('exact length for many parts, multi-digit sizes and binary content', () => {
  const content = Buffer.alloc(123_456_7, 0xab);
  const ranges = Array.from({ length: 16 }, (_, i) => ({ start: i * 70_000, end: i * 70_000 + i * 13 }));
  const plan = planMultipartByteranges(ranges, content.length, 'application/octet-stream');
  assert.equal(render(plan, content).length, plan.contentLength);
});

test('boundaries are random, valid bchars and at most 70 characters (RFC 2046 §5.1.1)', () => {
  const a = generateBoundary();
  const b = generateBoundary();
  assert.notEqual(a, b);
  assert.match(a, /^[0-9A-Za-z'()+_,\-./:=?]{1,70}$/);
});
