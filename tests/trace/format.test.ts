// The canonical format: what it accepts, what it refuses, and how detection chooses a format.

import { describe, expect, it } from 'vitest';

import {
  detectFormat,
  OP_ALLOC,
  OP_FREE,
  OP_REALLOC,
  parseTraceText,
  TraceFormatError,
} from '../../src/tools/trace/index.js';

function triples(ops: Uint32Array): number[][] {
  const rows: number[][] = [];
  for (let i = 0; i < ops.length; i += 3) rows.push([ops[i]!, ops[i + 1]!, ops[i + 2]!]);
  return rows;
}

/** The TraceFormatError that parsing `text` throws. */
function formatError(text: string, source = 'traces/x.trace'): TraceFormatError {
  try {
    parseTraceText(text, { source });
  } catch (error) {
    expect(error).toBeInstanceOf(TraceFormatError);
    return error as TraceFormatError;
  }
  throw new Error('expected a TraceFormatError');
}

describe('canonical format', () => {
  it('reads ops as triples, skipping comments and blank lines', () => {
    const { ops, summary } = parseTraceText(
      ['# pymalloc-trace v1', '# a comment', 'a 0 32', '', 'a 1 100', '  # indented comment', 'r 0 64', 'f 1', 'f 0', 'a 1 0'].join('\n'),
    );
    expect(triples(ops)).toEqual([
      [OP_ALLOC, 0, 32],
      [OP_ALLOC, 1, 100],
      [OP_REALLOC, 0, 64],
      [OP_FREE, 1, 0],
      [OP_FREE, 0, 0],
      [OP_ALLOC, 1, 0],
    ]);
    expect(summary).toEqual({
      format: 'pymalloc',
      ops: 6,
      allocs: 3,
      frees: 2,
      reallocs: 1,
      idLimit: 2,
      liveAtEnd: 1,
      skippedFrees: 0,
      impliedFrees: 0,
      otherProcessEvents: 0,
      truncatedLines: 0,
      sites: 0,
    });
  });

  it('accepts tabs, repeated spaces and CRLF line ends', () => {
    const { summary } = parseTraceText('# pymalloc-trace v1\r\na\t7   4294967295 \r\nf  7\r\n');
    expect(summary.ops).toBe(2);
    expect(summary.idLimit).toBe(8);
  });

  it('accepts the largest id and size, and refuses 2^32', () => {
    expect(parseTraceText('# pymalloc-trace v1\na 4294967295 4294967295\n').summary.idLimit).toBe(2 ** 32);
    expect(formatError('# pymalloc-trace v1\na 4294967296 1\n').message).toBe(
      'traces/x.trace:2: malformed line "a 4294967296 1": id must be below 2^32',
    );
    expect(formatError('# pymalloc-trace v1\na 1 4294967296\n').message).toBe(
      'traces/x.trace:2: malformed line "a 1 4294967296": size must be below 2^32',
    );
  });

  it('names the line number and the line of a malformed line', () => {
    const error = formatError('# pymalloc-trace v1\na 1 2\n\n# note\na 12\n');
    expect(error.lineNumber).toBe(5);
    expect(error.line).toBe('a 12');
    expect(error.message).toBe('traces/x.trace:5: malformed line "a 12": expected "a <id> <size>"');
  });

  it.each([
    ['f 1 2', 'expected "f <id>"'],
    ['r 1', 'expected "r <id> <size>"'],
    ['a -1 2', 'expected "a <id> <size>"'],
    ['a 1 0x20', 'expected "a <id> <size>"'],
    ['a1 2', 'expected "a <id> <size>"'],
    ['x 1 2', 'expected "a <id> <size>", "f <id>" or "r <id> <size>"'],
  ])('refuses %j', (line, expected) => {
    expect(formatError(`# pymalloc-trace v1\na 1 8\n${line}\n`).message).toBe(
      `traces/x.trace:3: malformed line ${JSON.stringify(line)}: ${expected}`,
    );
  });

  it('refuses to free an id that was never allocated', () => {
    const error = formatError('# pymalloc-trace v1\na 0 16\nf 0\nf 3\n');
    expect(error.lineNumber).toBe(4);
    expect(error.message).toBe('traces/x.trace:4: line "f 3" frees id 3, which is not live');
  });

  it('refuses a double free, a realloc of a freed id and a double allocation', () => {
    expect(formatError('# pymalloc-trace v1\na 0 16\nf 0\nf 0\n').message).toBe(
      'traces/x.trace:4: line "f 0" frees id 0, which is not live',
    );
    expect(formatError('# pymalloc-trace v1\na 0 16\nf 0\nr 0 32\n').message).toBe(
      'traces/x.trace:4: line "r 0 32" reallocates id 0, which is not live',
    );
    expect(formatError('# pymalloc-trace v1\na 0 16\na 0 16\n').message).toBe(
      'traces/x.trace:3: line "a 0 16" allocates id 0, which is already live',
    );
  });

  it('requires the header before the first op', () => {
    expect(formatError('a 0 16\n').message).toBe(
      'traces/x.trace:1: line "a 0 16" is an op, but the header "# pymalloc-trace v1" must come first',
    );
    expect(formatError('# pymalloc-trace v2\na 0 16\n').message).toBe(
      'traces/x.trace:1: unsupported trace version "# pymalloc-trace v2": this reader knows "# pymalloc-trace v1"',
    );
    expect(formatError('\n\n').message).toBe('traces/x.trace: empty trace: no header and no events');
  });

  it('reads a header-only trace as an empty trace', () => {
    const { ops, summary } = parseTraceText('# pymalloc-trace v1\n');
    expect(ops.length).toBe(0);
    expect(summary.ops).toBe(0);
    expect(summary.idLimit).toBe(0);
  });
});

describe('detectFormat', () => {
  it('recognises each format by its first meaningful line', () => {
    expect(detectFormat(['', '# pymalloc-trace v1', 'a 0 1'])).toBe('pymalloc');
    expect(detectFormat(['= Start', '@ ./prog:[0x4005d3] + 0x1a2b2a0 0x20'])).toBe('mtrace');
    expect(detectFormat(['@ /lib/x86_64-linux-gnu/libc.so.6:(_IO_file_doallocate+8c)[0x758cc] + 0x55cc0 0x1000'])).toBe('mtrace');
    expect(detectFormat(['@ [0x7f3a4c0a] - 0x1a2b2a0'])).toBe('mtrace');
    expect(detectFormat(['18545 18545 malloc(32)=0x7f90495120e0'])).toBe('logalloc');
    expect(detectFormat(['# a comment first', '1 1 free(#1)'])).toBe('logalloc');
    expect(detectFormat(['13663 malloc(42)=0x7f0c33502040'])).toBe('logalloc');
  });

  it('refuses what it does not know, naming the line', () => {
    expect(() => detectFormat(['', 'hello world'], 'x.txt')).toThrow(
      'x.txt:2: unrecognised trace format at "hello world": expected "# pymalloc-trace v1", glibc mtrace or Mozilla logalloc lines',
    );
    expect(() => detectFormat(['18545 18545 mmap(32)=0x7f90495120e0'])).toThrow(TraceFormatError);
    expect(() => detectFormat(['# only a comment'])).toThrow('no trace header and no events in the first 1 lines');
  });
});
