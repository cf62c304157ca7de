// Importer for the canonical format (format.ts): reads its ops one line at a time and checks
// the id invariants the format states.

import { TraceFormatError } from './errors.js';
import { MAX_U32, NO_SITE, OP_ALLOC, OP_FREE, OP_REALLOC, type OpKind } from './format.js';
import type { ImportCounts, LineImporter, OpSink } from './ops.js';

const SPACE = 0x20;
const TAB = 0x09;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const LETTER_A = 0x61;
const LETTER_F = 0x66;
const LETTER_R = 0x72;

const EXPECTED_FORM = ['"a <id> <size>"', '"f <id>"', '"r <id> <size>"'] as const;
const EXPECTED_ANY = '"a <id> <size>", "f <id>" or "r <id> <size>"';
const EXPECTED_WITH_SITE = ['"a <id> <size> <site>"', '', '"r <id> <size> <site>"'] as const;

/** "# site <id> <address> <symbol> <module>" (format.ts); the module is the rest of the line. */
const SITE_DECLARATION = /^#[ \t]*site[ \t]+(\d+)[ \t]+(0x[0-9a-fA-F]{1,16})[ \t]+(\S+)[ \t]+(\S.*?)[ \t]*$/;
const SITE_COMMENT = /^#[ \t]*site[ \t]/;

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
  /** One more than the largest site declared; sites are declared 1, 2, 3... in order. */
  private siteLimit = NO_SITE + 1;

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
    let site = NO_SITE;
    if (kind !== OP_FREE) {
      pos = this.field(text, lineNumber, pos, kind, 'size');
      size = scannedValue;
      const next = skipBlanks(text, pos);
      if (next !== pos && next !== text.length) {
        pos = this.field(text, lineNumber, pos, kind, 'site', EXPECTED_WITH_SITE[kind]);
        site = scannedValue;
        if (site === NO_SITE || site >= this.siteLimit) {
          throw new TraceFormatError(this.source, lineNumber, text, `line {line} names site ${site}, which no earlier "# site ${site} ..." line declared`);
        }
      }
    }
    if (skipBlanks(text, pos) !== text.length) {
      throw this.malformed(text, lineNumber, `expected ${site === NO_SITE ? EXPECTED_FORM[kind] : EXPECTED_WITH_SITE[kind]}`);
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
    this.sink.push(kind, id, size, site);
  }

  /** Takes a "# site" declaration; other comments say nothing. */
  comment(text: string, lineNumber: number): void {
    const trimmed = text.trim();
    if (!SITE_COMMENT.test(trimmed)) return;
    const declaration = SITE_DECLARATION.exec(trimmed);
    if (declaration === null) {
      throw new TraceFormatError(this.source, lineNumber, text, `malformed site declaration {line}: expected "# site <id> <address> <symbol or -> <module or ->"`);
    }
    const [, idText, address, symbol, module] = declaration as unknown as [string, string, string, string, string];
    const id = Number(idText);
    if (id !== this.siteLimit) {
      throw new TraceFormatError(this.source, lineNumber, text, `line {line} declares site ${id}; the next site must be ${this.siteLimit} (sites are declared in order from 1)`);
    }
    this.siteLimit++;
    this.sink.declareSite({ id, address: address.toLowerCase(), symbol: symbol === '-' ? '' : symbol, module: module === '-' ? '' : module });
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
  private field(text: string, lineNumber: number, pos: number, kind: OpKind, name: string, expected: string = EXPECTED_FORM[kind]): number {
    const start = skipBlanks(text, pos);
    const end = start === pos ? NO_DIGITS : scanDecimal(text, start);
    if (end === TOO_LARGE) throw this.malformed(text, lineNumber, `${name} must be below 2^32`);
    if (end === NO_DIGITS) throw this.malformed(text, lineNumber, `expected ${expected}`);
    return end;
  }

  private malformed(text: string, lineNumber: number, problem: string): TraceFormatError {
    return new TraceFormatError(this.source, lineNumber, text, `malformed line {line}: ${problem}`);
  }
}
