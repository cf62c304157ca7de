// The canonical trace format, "pymalloc-trace v1".
//
// A trace is the sequence of heap operations of one program, with blocks named by small integer
// ids instead of addresses, so that any allocator can replay it. One op per line:
//
//     # pymalloc-trace v1              header: the first line that is not blank
//     # recorded from: python3 x.py    comment: any line whose first non-blank character is '#'
//     a 0 32                           allocate 32 bytes; the block is called 0 from now on
//     a 1 100
//     r 0 64                           resize block 0 to 64 bytes; it is still called 0
//     f 1                              free block 1; id 1 may be allocated again
//     f 0
//
// Grammar (fields separated by spaces or tabs; blank lines and comments allowed anywhere, but
// the header must come before the first op):
//
//     a <id> <size>     allocate
//     f <id>            free
//     r <id> <size>     reallocate
//
// where <id> and <size> are decimal integers in [0, 2^32).
//
// Invariants, checked by the reader (a violation is a TraceFormatError naming the line):
//   - `a id` is allowed iff id is not live; afterwards id is live.
//   - `f id` and `r id` are allowed iff id is live; after `f id`, id is not live.
// Importers recycle ids (an id freed is handed out again), so one more than the largest id is
// the peak number of live blocks: a replayer can index a dense table by id.
//
// A file whose name ends in `.gz` is written gzip-compressed; readers recognise gzip by its
// magic bytes (1f 8b), whatever the name.
//
// In memory, ops travel as triples [kind, id, size] packed in a Uint32Array: kind is OP_ALLOC,
// OP_FREE or OP_REALLOC, and size is 0 for a free.

import { TraceFormatError } from './errors.js';
import type { LineImporter, ImportCounts, OpSink } from './ops.js';

// ---- the format's constants ---------------------------------------------------------------------

/** The header line; its version number changes iff old readers could misread new files. */
export const TRACE_HEADER = '# pymalloc-trace v1';

export const OP_ALLOC = 0;
export const OP_FREE = 1;
export const OP_REALLOC = 2;
export type OpKind = typeof OP_ALLOC | typeof OP_FREE | typeof OP_REALLOC;

/** Numbers in one op triple: kind, id, size. */
export const OP_FIELDS = 3;

/** Largest id or size: both must fit a u32. */
export const MAX_U32 = 0xffff_ffff;

/** The text formats a trace file can be in; see detect.ts for how each is recognised. */
export type TraceFormat = 'pymalloc' | 'mtrace' | 'logalloc';

// ---- what readers hand out ----------------------------------------------------------------------

/** A batch of ops read from a trace. */
export interface TraceChunk {
  /** Triples [kind, id, size]; a fresh array the consumer may keep. */
  ops: Uint32Array;
  /** Set on the last chunk only (which may hold no ops); the stream ends after it. */
  summary?: TraceSummary;
}

/** What a whole trace contained, after import. */
export interface TraceSummary {
  /** The format the input was in. */
  format: TraceFormat;
  /** Ops produced: allocs + frees + reallocs. */
  ops: number;
  allocs: number;
  frees: number;
  reallocs: number;
  /** One more than the largest id used (0 for no ops): the size of a table indexed by id. */
  idLimit: number;
  /** Blocks still live at the end of the trace. */
  liveAtEnd: number;
  /** Frees and reallocs of addresses never allocated while tracing (allocated before it began);
   *  each is skipped, and a realloc's new block becomes a fresh allocation. Always 0 for pymalloc. */
  skippedFrees: number;
  /** Allocations returning an address that was still live: the free between them was not traced,
   *  so a free of the old block is inserted. Always 0 for pymalloc. */
  impliedFrees: number;
  /** logalloc lines of processes other than the first one, which are left out. */
  otherProcessEvents: number;
  /** mtrace lines cut short, and dropped: the last line when a stream ends without a newline
   *  (the program _exit()ed with its trace buffer unwritten), and a malformed line just before
   *  a "= Start" (an exec cut it off). Always 0 for the other formats. */
  truncatedLines: number;
}

// ---- reading the canonical format ---------------------------------------------------------------

const SPACE = 0x20;
const TAB = 0x09;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const LETTER_A = 0x61;
const LETTER_F = 0x66;
const LETTER_R = 0x72;

const EXPECTED_FORM = ['"a <id> <size>"', '"f <id>"', '"r <id> <size>"'] as const;
const EXPECTED_ANY = '"a <id> <size>", "f <id>" or "r <id> <size>"';

const NO_DIGITS = -1;
const TOO_LARGE = -2;

function skipBlanks(text: string, pos: number): number {
  while (pos < text.length) {
    const c = text.charCodeAt(pos);
    if (c !== SPACE && c !== TAB) break;
    pos++;
  }
  return pos;
}

/** The value of the last successful scanDecimal(); a module variable keeps the scan allocation-free. */
let scannedValue = 0;

/** Scans a decimal u32 at pos into scannedValue; returns the position after it, NO_DIGITS or TOO_LARGE. */
function scanDecimal(text: string, pos: number): number {
  const start = pos;
  let value = 0;
  while (pos < text.length) {
    const c = text.charCodeAt(pos);
    if (c < DIGIT_0 || c > DIGIT_9) break;
    value = value * 10 + (c - DIGIT_0);
    if (value > MAX_U32) return TOO_LARGE;
    pos++;
  }
  if (pos === start) return NO_DIGITS;
  scannedValue = value;
  return pos;
}

/**
 * Reads the ops of a canonical trace, one line at a time, and checks the id invariants above.
 * The reader has already consumed the header and drops blank lines and comments.
 */
export class CanonicalImporter implements LineImporter {
  /** Ids allocated and not yet freed: bounded by the live blocks, not by the trace length. */
  private readonly live = new Set<number>();
  private idLimit = 0;

  constructor(
    private readonly sink: OpSink,
    private readonly source: string,
  ) {}

  line(text: string, lineNumber: number): void {
    let pos = skipBlanks(text, 0);
    const letter = text.charCodeAt(pos);
    const kind: OpKind | -1 =
      letter === LETTER_A ? OP_ALLOC : letter === LETTER_F ? OP_FREE : letter === LETTER_R ? OP_REALLOC : -1;
    if (kind === -1) throw this.malformed(text, lineNumber, `expected ${EXPECTED_ANY}`);

    pos = this.field(text, lineNumber, pos + 1, kind, 'id');
    const id = scannedValue;
    let size = 0;
    if (kind !== OP_FREE) {
      pos = this.field(text, lineNumber, pos, kind, 'size');
      size = scannedValue;
    }
    if (skipBlanks(text, pos) !== text.length) {
      throw this.malformed(text, lineNumber, `expected ${EXPECTED_FORM[kind]}`);
    }

    if (kind === OP_ALLOC) {
      if (this.live.has(id)) {
        throw new TraceFormatError(this.source, lineNumber, text, `line {line} allocates id ${id}, which is already live`);
      }
      this.live.add(id);
    } else {
      if (!this.live.has(id)) {
        const verb = kind === OP_FREE ? 'frees' : 'reallocates';
        throw new TraceFormatError(this.source, lineNumber, text, `line {line} ${verb} id ${id}, which is not live`);
      }
      if (kind === OP_FREE) this.live.delete(id);
    }
    if (id >= this.idLimit) this.idLimit = id + 1;
    this.sink.push(kind, id, size);
  }

  end(): ImportCounts {
    return {
      idLimit: this.idLimit,
      liveAtEnd: this.live.size,
      skippedFrees: 0,
      impliedFrees: 0,
      otherProcessEvents: 0,
      truncatedLines: 0,
    };
  }

  unterminatedLine(text: string, lineNumber: number): void {
    this.line(text, lineNumber);
  }

  /** Scans a separator and a number at pos into scannedValue; returns the position after it. */
  private field(text: string, lineNumber: number, pos: number, kind: OpKind, name: string): number {
    const start = skipBlanks(text, pos);
    const end = start === pos ? NO_DIGITS : scanDecimal(text, start);
    if (end === TOO_LARGE) throw this.malformed(text, lineNumber, `${name} must be below 2^32`);
    if (end === NO_DIGITS) throw this.malformed(text, lineNumber, `expected ${EXPECTED_FORM[kind]}`);
    return end;
  }

  private malformed(text: string, lineNumber: number, problem: string): TraceFormatError {
    return new TraceFormatError(this.source, lineNumber, text, `malformed line {line}: ${problem}`);
  }
}

// ---- writing the canonical format ---------------------------------------------------------------

const LETTER_OF_KIND = ['a', 'f', 'r'] as const;

/** The canonical lines of ops (triples), each ending in a newline. */
export function formatOps(ops: Uint32Array): string {
  if (ops.length % OP_FIELDS !== 0) {
    throw new RangeError(`ops.length must be a multiple of ${OP_FIELDS} (triples [kind, id, size]), got ${ops.length}`);
  }
  let text = '';
  for (let i = 0; i < ops.length; i += OP_FIELDS) {
    const kind = ops[i]!;
    const id = ops[i + 1]!;
    if (kind === OP_FREE) {
      text += `f ${id}\n`;
    } else if (kind === OP_ALLOC || kind === OP_REALLOC) {
      text += `${LETTER_OF_KIND[kind]} ${id} ${ops[i + 2]!}\n`;
    } else {
      throw new RangeError(`ops[${i}] is not an op kind (0 alloc, 1 free, 2 realloc): ${kind}`);
    }
  }
  return text;
}
