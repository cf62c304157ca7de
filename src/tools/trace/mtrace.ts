// Importer for glibc's mtrace output (MALLOC_TRACE=file, see mtrace(3); glibc 2.34 and later
// keep mtrace in libc_malloc_debug.so.0). Each event line names its caller, then the event:
//
//     = Start                                                          tracing began
//     @ /lib/x86_64-linux-gnu/libc.so.6:[0x39221] + 0x55cc..2a0 0x5    malloc, calloc, memalign,
//                                                                      or realloc of NULL
//     @ ./prog:(main+0x1c)[0x11c9] - 0x55cc..2a0                       free, or realloc to size 0
//     @ ./prog:[0x38896] < 0x55cc..520                                 realloc: the old block...
//     @ ./prog:[0x38896] > 0x55cc..170 0x800                           ...then the new block
//     @ [0x7f3a4c0a] ! 0x55cc..520 0x100000000                         realloc that failed
//     = End                                                            muntrace() was called
//
// The caller part ("@ ... ") is left out when the caller is unknown. Sizes are printed with
// %#lx, so 0 appears as "0", not "0x0"; a failed malloc prints its address as "(nil)".
// A '<' line is always directly followed by its '>' line: glibc holds the stream lock across both.
//
// A "= Start" after events begins a new process image (the recorded process exec'd another
// program, see scripts/record/mtrace-shim.c): the old image's heap is gone, so its live blocks
// are freed. Exec also discards the old image's unwritten buffer, so the line before such a
// "= Start" may be cut short, and a realloc may lack its '>' line; both are forgiven there only.
//
// glibc writes the trace through a 512-byte stdio buffer and flushes it at exit(); a program
// that ends with _exit() (dash does) loses the buffer's tail, so the stream stops mid-line. A
// last line without its newline is therefore dropped, whether or not it parses: "- 0x55d8ef"
// may be the front of "- 0x55d8ef1a2b30". The lines dropped, there and before a "= Start", are
// counted in truncatedLines.

import { isAbsolute, resolve } from 'node:path';

import { TraceFormatError } from './errors.js';
import { MAX_U32, NO_SITE } from './format.js';
import { AddressMap, type ImportCounts, type LineImporter, type OpSink } from './ops.js';

/**
 * The event at the end of a line, after the caller part (which may contain anything but "] ").
 * Addresses are printed with %p: no leading zeros, so at most 16 digits on a 64-bit system.
 */
const EVENT = /(?:^|\] )([-+<>!]) (0x[0-9a-f]{1,16}|\(nil\))(?: (0x[0-9a-f]+|0))?$/;

const NULL_ADDRESS = '(nil)';

/**
 * The caller part: "@ <module>:(<symbol>)[<address>] " or "@ [<address>] ". glibc prints the
 * address relative to the module's load address when it knows the module (dladdr), absolute
 * otherwise; the symbol is the nearest dynamic one, with its offset, when dladdr found one.
 */
const CALLER = /^@ (?:(.*?):(?:\(([^()]*)\))?)?\[(0x[0-9a-f]{1,16})\] /;

/** The mtrace event letters that carry a size. */
const SIZED = new Set(['+', '>', '!']);

/** Whether a line is an mtrace line; used by format detection. */
export function isMtraceLine(text: string): boolean {
  return text === '= Start' || text === '= End' || ((text.startsWith('@ ') || /^[-+<>!] /.test(text)) && EVENT.test(text));
}

export class MtraceImporter implements LineImporter {
  private readonly addresses: AddressMap;
  /** The address of a '<' line waiting for its '>' line, or undefined. */
  private reallocFrom: string | undefined;
  private reallocLine = 0;
  /** The error for a malformed line, thrown at the next line unless that one is "= Start". */
  private cutLine: TraceFormatError | undefined;
  private truncatedLines = 0;
  /** The site of each caller part seen, keyed by its text: callers repeat, lines are many. */
  private readonly siteOfCaller = new Map<string, number>();
  private siteCount = 0;

  constructor(
    private readonly sink: OpSink,
    private readonly source: string,
    /** Resolves relative module paths (ReadTraceOptions.moduleDir). */
    private readonly moduleDir?: string,
  ) {
    this.addresses = new AddressMap(sink);
  }

  line(text: string, lineNumber: number): void {
    if (text === '= Start') {
      if (this.cutLine !== undefined) this.truncatedLines++;
      this.cutLine = undefined;
      this.reallocFrom = undefined;
      this.addresses.releaseAll();
      return;
    }
    if (this.cutLine !== undefined) throw this.cutLine;
    if (text === '= End') {
      this.expectNoPendingRealloc(text, lineNumber);
      return;
    }
    const event = EVENT.exec(text);
    const [, letter, address, sizeText] = (event ?? []) as unknown as [string, string, string, string | undefined];
    if (
      event === null ||
      (event.index > 0 && !text.startsWith('@ ')) ||
      SIZED.has(letter) !== (sizeText !== undefined)
    ) {
      this.cutLine = this.malformed(text, lineNumber);
      return;
    }

    if (letter === '>') {
      if (this.reallocFrom === undefined) {
        throw new TraceFormatError(this.source, lineNumber, text, `line {line} ends a realloc that no '<' line began`);
      }
      const from = this.reallocFrom;
      this.reallocFrom = undefined;
      this.addresses.reallocate(from, address, this.size(sizeText!, text, lineNumber), this.siteOf(text, event.index));
      return;
    }
    this.expectNoPendingRealloc(text, lineNumber);
    if (address === NULL_ADDRESS) return; // a failed allocation: nothing changed
    switch (letter) {
      case '+':
        this.addresses.allocate(address, this.size(sizeText!, text, lineNumber), this.siteOf(text, event.index));
        break;
      case '-':
        this.addresses.free(address);
        break;
      case '<':
        this.reallocFrom = address;
        this.reallocLine = lineNumber;
        break;
      // '!': a failed realloc leaves the old block as it was.
    }
  }

  unterminatedLine(): void {
    this.truncatedLines++;
    // A '<' line just before it lost its '>' line to the cut: the block stays live as it was.
    this.reallocFrom = undefined;
  }

  end(lineNumber: number): ImportCounts {
    if (this.cutLine !== undefined) throw this.cutLine;
    if (this.reallocFrom !== undefined) {
      throw new TraceFormatError(this.source, lineNumber, '', `the trace ends inside the realloc begun on line ${this.reallocLine}`);
    }
    return { ...this.addresses.counts(), truncatedLines: this.truncatedLines };
  }

  /** The site of the line's caller part (the text before the event, at eventIndex), declared
   *  the first time it is seen; NO_SITE when the line has none. */
  private siteOf(text: string, eventIndex: number): number {
    if (eventIndex === 0) return NO_SITE;
    const caller = text.slice(0, eventIndex + 2);
    const known = this.siteOfCaller.get(caller);
    if (known !== undefined) return known;
    const parts = CALLER.exec(caller);
    if (parts === null) {
      this.siteOfCaller.set(caller, NO_SITE);
      return NO_SITE;
    }
    const [, module = '', symbol = '', address] = parts as unknown as [string, string | undefined, string | undefined, string];
    const id = ++this.siteCount;
    this.siteOfCaller.set(caller, id);
    const resolved = module !== '' && this.moduleDir !== undefined && !isAbsolute(module) ? resolve(this.moduleDir, module) : module;
    this.sink.declareSite({ id, address, symbol, module: resolved });
    return id;
  }

  private expectNoPendingRealloc(text: string, lineNumber: number): void {
    if (this.reallocFrom !== undefined) {
      throw new TraceFormatError(
        this.source,
        lineNumber,
        text,
        `expected the '>' line of the realloc begun on line ${this.reallocLine}, got {line}`,
      );
    }
  }

  private size(sizeText: string, text: string, lineNumber: number): number {
    const size = Number.parseInt(sizeText, 16);
    if (size > MAX_U32) {
      throw new TraceFormatError(this.source, lineNumber, text, `line {line} allocates ${size} bytes; sizes must be below 2^32`);
    }
    return size;
  }

  private malformed(text: string, lineNumber: number): TraceFormatError {
    return new TraceFormatError(
      this.source,
      lineNumber,
      text,
      `malformed mtrace line {line}: expected "@ <caller> + <address> <size>", "- <address>", "< <address>", "> <address> <size>" or "= Start"`,
    );
  }
}
