// Importer for Mozilla's logalloc logs (memory/replace/logalloc in Firefox). One call per line:
//
//     <pid> <tid> <function>(<args>)[=<result>]
//
//     18545 18545 malloc(32)=0x7f90495120e0
//     18545 18545 calloc(1,148)=0x7f9049537480                  size is count * size
//     18545 18545 realloc(0x7f90495120e0,64)=0x7f9049536680
//     18545 18545 posix_memalign(256,240)=0x7f9049583300        also aligned_alloc, memalign:
//                                                              (alignment,size)
//     18545 18545 valloc(4096)=0x7f9049600000
//     18545 18545 jemalloc_stats()                              no heap change: ignored
//     18545 18545 free(0x7f9049536680)
//
// Sizes are decimal, addresses hex; a failed call returns a null address ("0x0", "0" or
// "(nil)"). Logs preprocessed by logalloc_munge.py name blocks "#1", "#2", ... instead, with
// "#0" for null, and may have no tid column; both forms are accepted.
//
// A log may interleave several processes. Their heaps are unrelated, so, like Mozilla's
// logalloc-replay, only the process of the first event is imported; the lines of the others
// are counted in otherProcessEvents.

import { TraceFormatError } from './errors.js';
import { MAX_U32 } from './format.js';
import { AddressMap, type ImportCounts, type LineImporter, type OpSink } from './ops.js';

const CALL = /^(\d+)[ \t]+(?:\d+[ \t]+)?([a-z_]+)\(([^()]*)\)(?:=(\S+))?[ \t]*$/;
/** A pointer of up to 64 bits (leading zeros aside), a block number that a double holds exactly, or null. */
const ADDRESS = /^(?:0x0*[0-9a-fA-F]{1,16}|\(nil\)|#\d{1,15}|0)$/;
const NULL_ADDRESS = /^(?:0x0+|\(nil\)|#0|0)$/;
const DECIMAL = /^\d+$/;

/** The functions logalloc logs: the form of their line, argument count, whether they return. */
interface Signature {
  form: string;
  arity: number;
  returns: boolean;
}

const FUNCTIONS: ReadonlyMap<string, Signature> = new Map([
  ['malloc', { form: 'malloc(<size>)=<address>', arity: 1, returns: true }],
  ['valloc', { form: 'valloc(<size>)=<address>', arity: 1, returns: true }],
  ['calloc', { form: 'calloc(<count>,<size>)=<address>', arity: 2, returns: true }],
  ['realloc', { form: 'realloc(<address>,<size>)=<address>', arity: 2, returns: true }],
  ['posix_memalign', { form: 'posix_memalign(<alignment>,<size>)=<address>', arity: 2, returns: true }],
  ['aligned_alloc', { form: 'aligned_alloc(<alignment>,<size>)=<address>', arity: 2, returns: true }],
  ['memalign', { form: 'memalign(<alignment>,<size>)=<address>', arity: 2, returns: true }],
  ['free', { form: 'free(<address>)', arity: 1, returns: false }],
  ['jemalloc_stats', { form: 'jemalloc_stats()', arity: 0, returns: false }],
]);

/** Whether a line is a logalloc line; used by format detection. */
export function isLogallocLine(text: string): boolean {
  const call = CALL.exec(text.trim());
  return call !== null && FUNCTIONS.has(call[2]!);
}

export class LogallocImporter implements LineImporter {
  private readonly addresses: AddressMap;
  private pid: string | undefined;
  private otherProcessEvents = 0;

  constructor(
    sink: OpSink,
    private readonly source: string,
  ) {
    this.addresses = new AddressMap(sink);
  }

  line(text: string, lineNumber: number): void {
    const call = CALL.exec(text.trim());
    const signature = call === null ? undefined : FUNCTIONS.get(call[2]!);
    if (call === null || signature === undefined) {
      throw new TraceFormatError(
        this.source,
        lineNumber,
        text,
        'malformed logalloc line {line}: expected "<pid> <tid> <function>(<args>)[=<result>]" with a function among ' +
          [...FUNCTIONS.keys()].join(', '),
      );
    }
    const [, pid, name, argumentText, result] = call as unknown as [string, string, string, string, string | undefined];
    this.pid ??= pid;
    if (pid !== this.pid) {
      this.otherProcessEvents++;
      return;
    }

    const args = argumentText === '' ? [] : argumentText.split(',').map((arg) => arg.trim());
    if (args.length !== signature.arity || signature.returns !== (result !== undefined)) {
      throw this.unexpected(text, lineNumber, signature);
    }

    switch (name) {
      case 'jemalloc_stats':
        return;
      case 'free': {
        const address = this.address(args[0]!, text, lineNumber, signature);
        if (address !== null) this.addresses.free(address);
        return;
      }
      case 'realloc': {
        const from = this.address(args[0]!, text, lineNumber, signature);
        const size = this.number(args[1]!, text, lineNumber, signature);
        const to = this.address(result!, text, lineNumber, signature);
        if (from === null) {
          if (to !== null) this.addresses.allocate(to, this.checkedSize(size, text, lineNumber));
        } else if (to !== null) {
          this.addresses.reallocate(from, to, this.checkedSize(size, text, lineNumber));
        } else if (size === 0) {
          this.addresses.free(from); // realloc(p, 0) freed p
        }
        // Otherwise the realloc failed and the old block is untouched.
        return;
      }
      default: {
        const numbers = args.map((arg) => this.number(arg, text, lineNumber, signature));
        const size = name === 'calloc' ? numbers[0]! * numbers[1]! : numbers[numbers.length - 1]!;
        const address = this.address(result!, text, lineNumber, signature);
        if (address !== null) this.addresses.allocate(address, this.checkedSize(size, text, lineNumber));
      }
    }
  }

  unterminatedLine(text: string, lineNumber: number): void {
    this.line(text, lineNumber);
  }

  end(): ImportCounts {
    return { ...this.addresses.counts(), otherProcessEvents: this.otherProcessEvents };
  }

  /** The address token, or null for a null pointer. */
  private address(token: string, text: string, lineNumber: number, signature: Signature): string | null {
    if (!ADDRESS.test(token)) throw this.unexpected(text, lineNumber, signature);
    return NULL_ADDRESS.test(token) ? null : token;
  }

  private number(token: string, text: string, lineNumber: number, signature: Signature): number {
    if (!DECIMAL.test(token)) throw this.unexpected(text, lineNumber, signature);
    return Number(token);
  }

  private checkedSize(size: number, text: string, lineNumber: number): number {
    if (size > MAX_U32) {
      throw new TraceFormatError(this.source, lineNumber, text, `line {line} allocates ${size} bytes; sizes must be below 2^32`);
    }
    return size;
  }

  private unexpected(text: string, lineNumber: number, signature: Signature): TraceFormatError {
    return new TraceFormatError(this.source, lineNumber, text, `malformed logalloc line {line}: expected "<pid> <tid> ${signature.form}"`);
  }
}
