// How a TraceFormatError quotes the offending line: at most 80 characters of printable ASCII,
// so that the first "line" of a binary file is a short excerpt, not 400 characters of mojibake.

import { describe, expect, it } from 'vitest';

import { parseTraceText, TraceFormatError } from '../../src/tools/trace/index.js';

function messageOf(text: string): string {
  try {
    parseTraceText(text, { source: 'x' });
  } catch (error) {
    expect(error).toBeInstanceOf(TraceFormatError);
    return (error as Error).message;
  }
  throw new Error('the text parsed');
}

const PROBLEM = ': expected "# pymalloc-trace v1", glibc mtrace or Mozilla logalloc lines';

describe('quoted lines', () => {
  it('escape control characters, quotes, backslashes and non-ASCII', () => {
    expect(messageOf('\x00\x07\t"q"\\ é\u20ac\u{1f600}\ufffd')).toBe(
      `x:1: unrecognised trace format at "\\x00\\x07\\x09\\"q\\"\\\\ \\xe9\\u20ac\\u{1f600}\\ufffd"${PROBLEM}`,
    );
  });

  it('stop at 80 characters, escapes counted, never cutting an escape in half', () => {
    expect(messageOf('z'.repeat(500))).toBe(`x:1: unrecognised trace format at "${'z'.repeat(80)}..."${PROBLEM}`);
    // 13 escapes of 6 characters fill 78; the 14th would pass 80.
    expect(messageOf('\ufffd'.repeat(100))).toBe(`x:1: unrecognised trace format at "${'\\ufffd'.repeat(13)}..."${PROBLEM}`);
  });

  it('turn random bytes into one short line of printable ASCII', () => {
    let x = 0x2545f491;
    const bytes = Buffer.from(Uint8Array.from({ length: 4000 }, () => {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      return (x >>> 0) & 0xff;
    }));
    const message = messageOf(bytes.toString('utf8').replaceAll('\n', ''));
    expect(message).toMatch(/^[\x20-\x7e]+$/);
    expect(message.length).toBeLessThanOrEqual('x:1: unrecognised trace format at ""...'.length + 80 + PROBLEM.length);
  });
});
