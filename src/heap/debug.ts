// The debug hooks' reports: what assembly/debug/hooks.ts found, in the format of CPython's
// _PyObject_DebugDumpAddress (REFERENCE.md section 5), built from the block's own bytes.

import { MemoryCorruptionError, type DebugProblem } from './errors.js';

/** Word size of wasm32: the S of the debug layout. */
const S = 4;
const FORBIDDEN = 0xfd;
const DEAD = 0xdd;

/** DebugViolation of assembly/debug/hooks.ts. */
const PROBLEMS: Record<number, DebugProblem> = {
  1: 'bad-id',
  2: 'bad-leading-pad',
  3: 'bad-trailing-pad',
  4: 'freed',
  5: 'written-after-free',
  6: 'bad-size',
};

/** The record debugReport() leaves in the IO buffer. */
export interface DebugRecord {
  violation: number;
  /** The API char code the call went through; 0 for check(). */
  expectedApi: number;
  /** The block: p - 2S. */
  block: number;
  /** Bytes the allocator below gave the block. */
  capacity: number;
  /** The debug layout's bytes: 3S, or 4S with serial numbers. */
  extra: number;
  /** The block's bytes, when they were copied before it was made DEAD again (a write after free found on reuse). */
  snapshot?: Uint8Array;
}

/** Reads the record debugReport() wrote at `io` (a view of the IO buffer). */
export function readDebugRecord(io: Uint32Array): DebugRecord {
  const record: DebugRecord = {
    violation: io[0], expectedApi: io[1], block: io[2], capacity: io[3], extra: io[4],
  };
  // Found on reuse (an API to check against), the block was copied before it was made DEAD again.
  if (record.violation === 5 && record.expectedApi !== 0) {
    record.snapshot = new Uint8Array(io.buffer, io.byteOffset + 32, record.capacity).slice();
  }
  return record;
}

const hex2 = (byte: number): string => byte.toString(16).padStart(2, '0');
/** An address as glibc's %p prints it. */
const pointer = (address: number): string => `0x${(address >>> 0).toString(16)}`;

/** " xx xx ... xx": up to 8 bytes from the start, " ...", up to 8 from the end. */
function dataLine(bytes: Uint8Array): string {
  let line = '    Data at p:';
  const head = Math.min(8, bytes.length);
  for (let i = 0; i < head; i++) line += ` ${hex2(bytes[i])}`;
  let from = head;
  if (bytes.length - from > 8) {
    line += ' ...';
    from = bytes.length - 8;
  }
  for (let i = from; i < bytes.length; i++) line += ` ${hex2(bytes[i])}`;
  return line;
}

/** The "pad bytes" line and, when one is wrong, a line per byte. */
function padLines(intro: string, label: (i: number) => string, pads: Uint8Array): string[] {
  if (pads.every((b) => b === FORBIDDEN)) return [`${intro} are FORBIDDENBYTE, as expected.`];
  const lines = [`${intro} are not all FORBIDDENBYTE (0x${hex2(FORBIDDEN)}):`];
  pads.forEach((b, i) => lines.push(`        at ${label(i)}: 0x${hex2(b)}${b === FORBIDDEN ? '' : ' *** OUCH'}`));
  return lines;
}

const readBE = (bytes: Uint8Array, at: number): number =>
  ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0;

/** The dump of a block that is handed out (CPython's, line for line). */
function liveDump(p: number, bytes: Uint8Array, record: DebugRecord): string[] {
  const id = bytes[S];
  const requested = readBE(bytes, 0);
  // A size word that says more than the block holds is shown as it is, read no further.
  const n = Math.min(requested, record.capacity - record.extra);
  const lines = [
    `Debug memory block at address p=${pointer(p)}: API '${String.fromCharCode(id)}'`,
    `    ${requested} bytes originally requested`,
    ...padLines(`    The ${S - 1} pad bytes at p-${S - 1}`, (i) => `p-${S - 1 - i}`, bytes.subarray(S + 1, 2 * S)),
    ...padLines(`    The ${S} pad bytes at tail=${pointer(p + n)}`, (i) => `tail+${i}`, bytes.subarray(2 * S + n, 3 * S + n)),
  ];
  if (record.extra === 4 * S) {
    lines.push(`    The block was made by call #${readBE(bytes, 3 * S + n)} to debug malloc/realloc.`);
  }
  if (n > 0) lines.push(dataLine(bytes.subarray(2 * S, 2 * S + n)));
  return lines;
}

/** The dump of a freed pymalloc block: DEAD from p-S on, in the same form. */
function freedDump(p: number, bytes: Uint8Array): string[] {
  const dead = bytes.subarray(S);
  const lines = [`Debug memory block at address p=${pointer(p)}: freed`];
  const intro = `    The ${dead.length} bytes at p-${S}`;
  const bad: number[] = [];
  dead.forEach((b, i) => { if (b !== DEAD) bad.push(i); });
  if (!bad.length) {
    lines.push(`${intro} are DEADBYTE, as expected.`);
  } else {
    lines.push(`${intro} are not all DEADBYTE (0x${hex2(DEAD)}):`);
    const at = (offset: number) => (offset < 0 ? `p${offset}` : `p+${offset}`);
    for (const i of bad.slice(0, 8)) lines.push(`        at ${at(i - S)}: 0x${hex2(dead[i])} *** OUCH`);
    if (bad.length > 8) lines.push(`        and ${bad.length - 8} more`);
  }
  lines.push(dataLine(bytes.subarray(2 * S)));
  return lines;
}

function problemText(problem: DebugProblem, operation: string, id: number, expectedApi: number): string {
  switch (problem) {
    case 'bad-id':
      return expectedApi
        ? `bad ID: Allocated using API '${String.fromCharCode(id)}', verified using API '${String.fromCharCode(expectedApi)}'`
        : `bad ID: API '${String.fromCharCode(id)}' is none of 'r', 'm', 'o'`;
    case 'bad-leading-pad': return 'bad leading pad byte';
    case 'bad-trailing-pad': return 'bad trailing pad byte';
    case 'bad-size': return "bad size: the block's size word says more than the block holds";
    case 'freed': return operation.includes('ealloc') ? 'realloc of a freed block' : 'double free: the block is free already';
    case 'written-after-free': return 'use after free: a freed block was written to';
  }
}

/**
 * The MemoryCorruptionError for the violation in `record`, found by `operation`.
 * `traceback` gives the allocation traceback lines of the block (tracemalloc), or undefined
 * when tracing is off.
 */
export function debugError(
  operation: string, record: DebugRecord, memory: WebAssembly.Memory, traceback: (p: number) => string[] | undefined,
): MemoryCorruptionError {
  const problem = PROBLEMS[record.violation];
  const p = record.block + 2 * S;
  const bytes = record.snapshot ?? new Uint8Array(memory.buffer, record.block, record.capacity).slice();
  const freed = problem === 'freed' || problem === 'written-after-free';
  const lines = freed ? freedDump(p, bytes) : liveDump(p, bytes, record);
  lines.push('');
  const frames = traceback(p);
  if (frames === undefined) lines.push('Enable tracemalloc to get the memory block allocation traceback');
  else if (frames.length) lines.push('Memory block allocated at (most recent call first):', ...frames);
  lines.push('', `${operation}: ${problemText(problem, operation, bytes[S], record.expectedApi)}`);
  return new MemoryCorruptionError(operation, p, problem, lines.join('\n'));
}
