// The address-based importers on hand-written lines of their documented formats. Real mtrace
// output is covered by record.test.ts, which records real programs.

import { describe, expect, it } from 'vitest';

import { OP_ALLOC, OP_FREE, OP_REALLOC, parseTraceText, TraceFormatError } from '../../src/tools/trace/index.js';

function triples(ops: Uint32Array): number[][] {
  const rows: number[][] = [];
  for (let i = 0; i < ops.length; i += 3) rows.push([ops[i]!, ops[i + 1]!, ops[i + 2]!]);
  return rows;
}

const CALLER = '@ ./prog:(main+0x1c)[0x4005d3]';

describe('mtrace importer', () => {
  it('maps addresses to ids and reallocs to the id of the old block', () => {
    const { ops, summary } = parseTraceText(
      [
        '= Start',
        `${CALLER} + 0x1a2b2a0 0x20`,
        `${CALLER} + 0x1a2b2d0 0x400`,
        `${CALLER} < 0x1a2b2d0`,
        `${CALLER} > 0x1a2c000 0x800`,
        `@ [0x7f3a4c0a] - 0x1a2b2a0`,
        `+ 0x1a2b2a0 0`, // no caller, and a zero size printed by %#lx
        `${CALLER} - 0x1a2c000`,
        '= End',
      ].join('\n'),
    );
    expect(triples(ops)).toEqual([
      [OP_ALLOC, 0, 0x20],
      [OP_ALLOC, 1, 0x400],
      [OP_REALLOC, 1, 0x800],
      [OP_FREE, 0, 0],
      [OP_ALLOC, 0, 0], // id 0 was released, so it is handed out again
      [OP_FREE, 1, 0],
    ]);
    expect(summary).toMatchObject({ format: 'mtrace', ops: 6, idLimit: 2, liveAtEnd: 1, skippedFrees: 0 });
  });

  it('skips and counts frees of addresses allocated before tracing began', () => {
    //   before "= Start":  0xaaa0 and 0xbbb0 allocated (unseen)
    //   traced:            free 0xaaa0 (skipped), realloc 0xbbb0 -> 0xccc0 (old half skipped)
    const { ops, summary } = parseTraceText(
      ['= Start', `${CALLER} - 0xaaa0`, `${CALLER} < 0xbbb0`, `${CALLER} > 0xccc0 0x40`, `${CALLER} - 0xccc0`].join('\n'),
    );
    expect(triples(ops)).toEqual([
      [OP_ALLOC, 0, 0x40],
      [OP_FREE, 0, 0],
    ]);
    expect(summary.skippedFrees).toBe(2);
  });

  it('ignores failed calls and inserts the free that an address reuse implies', () => {
    const { ops, summary } = parseTraceText(
      [
        '= Start',
        `${CALLER} + (nil) 0xffffffffffff`, // malloc failed
        `${CALLER} + 0x1000 0x10`,
        `${CALLER} ! 0x1000 0x100000000`, // realloc failed: the block is untouched
        `${CALLER} + 0x1000 0x30`, // its free was not traced
      ].join('\n'),
    );
    expect(triples(ops)).toEqual([
      [OP_ALLOC, 0, 0x10],
      [OP_FREE, 0, 0],
      [OP_ALLOC, 0, 0x30],
    ]);
    expect(summary.impliedFrees).toBe(1);
  });

  it('starts an empty heap at each "= Start" after events, forgiving the line exec cut short', () => {
    // A wrapper script execs the real program: the wrapper's buffer ends mid-line.
    const { ops, summary } = parseTraceText(
      ['= Start', `${CALLER} + 0x1000 0x10`, `${CALLER} + 0x2000 0x20`, '@ /usr/b', '= Start', `${CALLER} + 0x1000 0x99`].join('\n'),
    );
    expect(triples(ops)).toEqual([
      [OP_ALLOC, 0, 0x10],
      [OP_ALLOC, 1, 0x20],
      [OP_FREE, 0, 0],
      [OP_FREE, 1, 0],
      [OP_ALLOC, 1, 0x99],
    ]);
    expect(summary).toMatchObject({ liveAtEnd: 1, truncatedLines: 1 });
  });

  it('refuses a malformed line anywhere else, naming it', () => {
    const text = ['= Start', `${CALLER} + 0x1000 0x10`, '@ /usr/b', `${CALLER} - 0x1000`].join('\n');
    expect(() => parseTraceText(text, { source: 'ls.mtrace' })).toThrow(/^ls\.mtrace:3: malformed mtrace line "@ \/usr\/b": expected/);
    expect(() => parseTraceText(['= Start', `${CALLER} + 0x1000`].join('\n'))).toThrow(TraceFormatError);
    expect(() => parseTraceText(['= Start', `${CALLER} < 0x1000`, `${CALLER} - 0x1000`].join('\n'), { source: 'm' })).toThrow(
      `m:3: expected the '>' line of the realloc begun on line 2, got "${CALLER} - 0x1000"`,
    );
  });
});

describe('address tokens', () => {
  it('refuses addresses wider than 64 bits and block numbers a double cannot hold, naming the line', () => {
    expect(() => parseTraceText(['= Start', `${CALLER} + 0x10000000000000000 0x10`].join('\n'), { source: 'm' })).toThrow(
      /^m:2: malformed mtrace line/,
    );
    expect(parseTraceText(['= Start', `${CALLER} + 0xffffffffffffffff 0x10`].join('\n')).summary.liveAtEnd).toBe(1);
    expect(() => parseTraceText('1 1 malloc(8)=0x00010000000000000000\n')).toThrow(
      '<text>:1: malformed logalloc line "1 1 malloc(8)=0x00010000000000000000": expected "<pid> <tid> malloc(<size>)=<address>"',
    );
    expect(() => parseTraceText('1 1 malloc(8)=#1000000000000000\n')).toThrow(/^<text>:1: malformed logalloc line/);
    expect(parseTraceText('1 1 malloc(8)=#999999999999999\n1 1 free(#999999999999999)\n').summary).toMatchObject({ ops: 2, liveAtEnd: 0 });
  });
});

describe('logalloc importer', () => {
  it('reads every documented call', () => {
    const { ops, summary } = parseTraceText(
      [
        '18545 18545 malloc(32)=0x7f90495120e0',
        '18545 18545 calloc(3,148)=0x7f9049537480',
        '18545 18545 realloc(0x7f90495120e0,64)=0x7f9049536680',
        '18545 18545 posix_memalign(256,240)=0x7f9049583300',
        '18545 18546 aligned_alloc(64,100)=0x7f9049584000',
        '18545 18545 memalign(16,24)=0x7f9049585000',
        '18545 18545 valloc(4096)=0x7f9049600000',
        '18545 18545 jemalloc_stats()',
        '18545 18545 free(0x7f9049536680)',
        '18545 18545 free(0x7f9049583300)',
      ].join('\n'),
    );
    expect(triples(ops)).toEqual([
      [OP_ALLOC, 0, 32],
      [OP_ALLOC, 1, 3 * 148],
      [OP_REALLOC, 0, 64],
      [OP_ALLOC, 2, 240],
      [OP_ALLOC, 3, 100],
      [OP_ALLOC, 4, 24],
      [OP_ALLOC, 5, 4096],
      [OP_FREE, 0, 0],
      [OP_FREE, 2, 0],
    ]);
    expect(summary).toMatchObject({ format: 'logalloc', ops: 9, idLimit: 6, liveAtEnd: 4 });
  });

  it('handles null pointers, realloc edge cases and unknown addresses', () => {
    const { ops, summary } = parseTraceText(
      [
        '7 7 malloc(16)=0x0', // failed
        '7 7 free(0x0)', // free(NULL): nothing, and nothing skipped
        '7 7 realloc(0x0,48)=0x1000', // realloc(NULL, n) allocates
        '7 7 realloc(0x1000,99999)=(nil)', // failed: the block is untouched
        '7 7 free(0xdead0)', // allocated before logging began
        '7 7 realloc(0xbeef0,8)=0x2000', // likewise; the new block starts here
        '7 7 realloc(0x1000,0)=0x0', // realloc(p, 0) freed p
      ].join('\n'),
    );
    expect(triples(ops)).toEqual([
      [OP_ALLOC, 0, 48],
      [OP_ALLOC, 1, 8],
      [OP_FREE, 0, 0],
    ]);
    expect(summary.skippedFrees).toBe(2);
  });

  it('reads logs preprocessed by logalloc_munge.py, with or without a tid column', () => {
    const { ops } = parseTraceText(['1 1 malloc(32)=#1', '1 1 calloc(1,148)=#2', '1 1 realloc(#1,64)=#1', '1 free(#1)'].join('\n'));
    expect(triples(ops)).toEqual([
      [OP_ALLOC, 0, 32],
      [OP_ALLOC, 1, 148],
      [OP_REALLOC, 0, 64],
      [OP_FREE, 0, 0],
    ]);
  });

  it('imports the first process only and counts the lines of the others', () => {
    const { summary } = parseTraceText(['100 100 malloc(8)=0x10', '200 200 malloc(8)=0x10', '200 200 free(0x10)', '100 100 free(0x10)'].join('\n'));
    expect(summary).toMatchObject({ ops: 2, otherProcessEvents: 2, liveAtEnd: 0 });
  });

  it('refuses malformed calls, naming the line and the expected form', () => {
    const text = ['1 1 malloc(8)=0x10', '1 1 malloc(8)', '1 1 free(0x10)'].join('\n');
    expect(() => parseTraceText(text, { source: 'ff.log' })).toThrow(
      'ff.log:2: malformed logalloc line "1 1 malloc(8)": expected "<pid> <tid> malloc(<size>)=<address>"',
    );
    expect(() => parseTraceText('1 1 malloc(8)=0x10\n1 1 calloc(x,8)=0x20\n')).toThrow(
      '<text>:2: malformed logalloc line "1 1 calloc(x,8)=0x20": expected "<pid> <tid> calloc(<count>,<size>)=<address>"',
    );
    expect(() => parseTraceText('1 1 calloc(65536,65536)=0x20\n')).toThrow('allocates 4294967296 bytes; sizes must be below 2^32');
  });
});
