// JSON values to and from the core's tapes (assembly/heap/json.ts draws the format): the host
// walks a JS value once into a postorder tape in a JS buffer, every string appended to one
// text (a dict key only the first time: the core memoizes keys as CPython's json does), the
// core builds the whole graph from both in one call; and the reverse for toJSON:
// the core writes a preorder tape and its text in one call, this side decodes the text in one
// TextDecoder call and reads JS values out of the tape, each string a slice of the text.
// Short strings are where the time goes otherwise: one encode or decode call per string
// costs more than the string.

/** What fromJSON takes and toJSON gives: JSON.parse's results (ints beyond 2^53 as bigints). */
export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | { [key: string]: JsonValue };

// Tags of assembly/heap/json.ts.
const NONE = 0;
const FALSE = 1;
const TRUE = 2;
const INT = 3;
const INT64 = 4;
const FLOAT = 5;
const STR = 6;
const LIST = 7;
const DICT = 8;
const TUPLE = 9;
const KEY = 10;
const KEY_AGAIN = 11;
const TAG_BITS = 4;
const TAG_MASK = (1 << TAG_BITS) - 1;
/** The largest count or length a head holds. */
const MAX_N = 2 ** (32 - TAG_BITS) - 1;
const SMALL_MIN = -(2 ** (31 - TAG_BITS));
const SMALL_MAX = 2 ** (31 - TAG_BITS) - 1;
const TWO_32 = 2 ** 32;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const INITIAL_BYTES = 1 << 16;
/** From this depth on, each container is looked for on the path (see TapeWriter.#path). */
const SEARCHED_DEPTH = 64;

const decoder = new TextDecoder();

function notJson(what: string): TypeError {
  return new TypeError(`fromJSON: ${what} is not a JSON value`);
}

function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'object') return `a ${(value as object).constructor?.name ?? 'null-prototype'} object`;
  return `a ${typeof value}`;
}

/** A build tape: its words (a view of the writer's buffer, valid until its next call) and its text. */
export interface Tape {
  words: Uint8Array;
  text: string;
}

/** Writes JS values as build tapes; one per heap, its buffer reused from call to call. */
export class TapeWriter {
  #buffer = new ArrayBuffer(INITIAL_BYTES);
  #u32 = new Uint32Array(this.#buffer);
  #u8 = new Uint8Array(this.#buffer);
  #view = new DataView(this.#buffer);
  /** Words written. */
  #words = 0;
  /**
   * The containers on the path from the root. A cycle makes the path grow without end, so it
   * is searched only once it is deeper than JSON documents go: a cycle is still found, and
   * the usual document pays a push and a pop per container.
   */
  #path: object[] = [];
  /** Every string so far, in tape order (V8 keeps the appends as a rope until it is encoded). */
  #text = '';
  /** The dict keys met so far, numbered in order: a key met again is a KEY_AGAIN (json's memo). */
  #keys = new Map<string, number>();

  write(value: unknown): Tape {
    this.#words = 0;
    this.#text = '';
    this.#path.length = 0;
    this.#keys.clear();
    this.#value(value);
    const tape = { words: new Uint8Array(this.#buffer, 0, this.#words << 2), text: this.#text };
    this.#text = '';
    return tape;
  }

  #reserve(bytes: number): void {
    const needed = (this.#words << 2) + bytes;
    if (needed <= this.#buffer.byteLength) return;
    let size = this.#buffer.byteLength << 1;
    while (size < needed) size <<= 1;
    const buffer = new ArrayBuffer(size);
    new Uint8Array(buffer).set(this.#u8.subarray(0, this.#words << 2));
    this.#buffer = buffer;
    this.#u32 = new Uint32Array(buffer);
    this.#u8 = new Uint8Array(buffer);
    this.#view = new DataView(buffer);
  }

  #head(tag: number, n: number): void {
    this.#reserve(4);
    this.#u32[this.#words++] = ((n << TAG_BITS) | tag) >>> 0;
  }

  #value(value: unknown): void {
    switch (typeof value) {
      case 'string': return this.#string(value);
      case 'number': return this.#number(value);
      case 'boolean': return this.#head(value ? TRUE : FALSE, 0);
      case 'bigint': return this.#bigint(value);
      case 'object':
        if (value === null) return this.#head(NONE, 0);
        return this.#container(value);
      default: throw notJson(describe(value));
    }
  }

  #string(s: string, tag = STR): void {
    if (s.length > MAX_N) throw new RangeError(`fromJSON: a string of ${s.length} UTF-16 units is longer than ${MAX_N}`);
    this.#head(tag, s.length);
    this.#text += s;
  }

  #key(key: string): void {
    const seen = this.#keys.get(key);
    if (seen !== undefined) return this.#head(KEY_AGAIN, seen);
    this.#keys.set(key, this.#keys.size);
    this.#string(key, KEY);
  }

  #number(v: number): void {
    if (Number.isSafeInteger(v)) {
      if (v >= SMALL_MIN && v <= SMALL_MAX) return this.#head(INT, v & (MAX_N >>> 0));
      this.#head(INT64, 0);
      this.#reserve(8);
      this.#u32[this.#words] = v >>> 0;
      this.#u32[this.#words + 1] = Math.floor(v / TWO_32) >>> 0;
      this.#words += 2;
      return;
    }
    this.#head(FLOAT, 0);
    this.#reserve(8);
    this.#view.setFloat64(this.#words << 2, v, true);
    this.#words += 2;
  }

  #bigint(v: bigint): void {
    if (v < INT64_MIN || v > INT64_MAX) throw new RangeError(`fromJSON: the int ${v}n does not fit in 64 bits`);
    this.#head(INT64, 0);
    this.#reserve(8);
    this.#view.setBigInt64(this.#words << 2, v, true);
    this.#words += 2;
  }

  #container(value: object): void {
    const path = this.#path;
    if (path.length >= SEARCHED_DEPTH && path.includes(value)) throw new TypeError('fromJSON: the value is circular (an object contains itself)');
    path.push(value);
    if (Array.isArray(value)) {
      if (value.length > MAX_N) throw new RangeError(`fromJSON: an array of ${value.length} items is longer than ${MAX_N}`);
      for (let i = 0; i < value.length; i++) this.#value(value[i]);
      this.#head(LIST, value.length);
    } else {
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw notJson(describe(value));
      let n = 0;
      for (const key in value) {
        this.#key(key);
        this.#value((value as Record<string, unknown>)[key]);
        n++;
      }
      if (n > MAX_N) throw new RangeError(`fromJSON: an object of ${n} keys has more than ${MAX_N}`);
      this.#head(DICT, n);
    }
    path.pop();
  }
}

/** Where a dump tape and its text are in linear memory (byte addresses). */
export interface DumpedTape {
  address: number;
  words: number;
  text: number;
  textBytes: number;
}

/** Reads the JS value of a dump tape. */
export function readTape(memory: ArrayBuffer, tape: DumpedTape): JsonValue {
  return new TapeReader(memory, tape).value();
}

class TapeReader {
  readonly #u32: Uint32Array;
  readonly #view: DataView;
  readonly #text: string;
  /** The word being read, from the start of the tape. */
  #p = 0;
  /** Where the next string starts in the text, in UTF-16 units. */
  #at = 0;

  constructor(memory: ArrayBuffer, { address, words, text, textBytes }: DumpedTape) {
    this.#u32 = new Uint32Array(memory, address, words);
    this.#view = new DataView(memory, address, words << 2);
    this.#text = textBytes === 0 ? '' : decoder.decode(new Uint8Array(memory, text, textBytes));
  }

  value(): JsonValue {
    const head = this.#u32[this.#p++];
    const n = head >>> TAG_BITS;
    switch (head & TAG_MASK) {
      case NONE: return null;
      case FALSE: return false;
      case TRUE: return true;
      case INT: return head >> TAG_BITS;
      case INT64: return this.#int64();
      case FLOAT: {
        const v = this.#view.getFloat64(this.#p << 2, true);
        this.#p += 2;
        return v;
      }
      case STR: return this.#text.slice(this.#at, (this.#at += n));
      case LIST:
      case TUPLE: {
        const items: JsonValue[] = new Array(n);
        for (let i = 0; i < n; i++) items[i] = this.value();
        return items;
      }
      case DICT: {
        const object: { [key: string]: JsonValue } = {};
        for (let i = 0; i < n; i++) {
          const key = String(this.value());
          const v = this.value();
          // JSON.parse makes "__proto__" an own property; an assignment would set the prototype.
          if (key === '__proto__') Object.defineProperty(object, key, { value: v, enumerable: true, writable: true, configurable: true });
          else object[key] = v;
        }
        return object;
      }
      default: throw new Error(`toJSON: the heap wrote an unknown tape item ${head & TAG_MASK}`);
    }
  }

  #int64(): number | bigint {
    const low = this.#u32[this.#p];
    const high = this.#u32[this.#p + 1] | 0;
    this.#p += 2;
    const v = high * TWO_32 + low;
    return Number.isSafeInteger(v) ? v : this.#view.getBigInt64((this.#p - 2) << 2, true);
  }
}
