// JSON graphs: building a graph of dicts, lists, strs, ints, floats, bools and None from a
// tape the host wrote, and writing a graph back as a tape or as JSON text, each in one call
// (heap.fromJSON, heap.toJSON, heap.stringifyJSON; json-parse.ts reads JSON text).
//
// A tape is a run of u32 words, each item a head word and its payload:
//
// ╒══════════════════ tape item (head: tag in bits 0-3, n in bits 4-31) ══════════════════╕
//  NONE 0, FALSE 1, TRUE 2    the head alone
//  INT 3                      n is the value, signed (28 bits: arithmetic shift of the head)
//  INT64 4                    the head, then the value as an i64 (2 words)
//  FLOAT 5                    the head, then the value as an f64 (2 words)
//  STR 6                      n UTF-16 code units of text: the next bytes of the tape's text
//  LIST 7, TUPLE 9            n items (TUPLE only in a dump: the host reads it as an array)
//  DICT 8                     n (key, value) pairs; a key is a STR, or an INT/INT64 in a dump
//  KEY 10                     a build tape's dict key met for the first time: a STR, memoized
//  KEY_AGAIN 11               the key memoized n-th (from 0): the same str, one more reference
// ╘═════════════════════════════════════════════════════════════════════════════════════════╛
// Keys are memoized as CPython's json scanner does (its memo dict): a document of records
// holds one str per field name, not one per record.
//
// The strings' UTF-8 bytes are not in the tape but in its text, one run of bytes holding
// every string in tape order: the host encodes all of them in one call (TextEncoder) and
// decodes them in one call (TextDecoder), taking each string as a slice of n UTF-16 units.
// A string's bytes are found from n by counting units: one per UTF-8 sequence, two for a
// 4-byte one (a character outside the BMP, a surrogate pair in JS).
//
// A build tape is in postorder: a container's items come before its head, so that the
// builder keeps one stack of finished values and a head takes its n (or 2n) values off it.
// Tricky: that stack lives in the tape itself, over the words already read. Every item
// takes at least one word and pushes at most one value, so after k items the stack holds
// at most k values: the stack's top never reaches the word being read.
// A dump tape is in preorder (a container's head first), written into a raw block that
// doubles as it fills; the walk keeps its own stack of (container, position) frames, and a
// container met again on the path is a cycle, refused (JSON has none; json.dumps raises).
//
// Ownership: every value the builder makes is owned by the stack until its container takes
// it over (dictSetOwned, a list's item array), so a failure releases what the stack holds
// and leaves nothing behind. A built dict is presized for its n pairs, as _PyDict_NewPresized.

import { IO, CHECKED, CALL_SCRATCH, CALL_SCRATCH_BYTES } from "../memory/header";
import { rawAlloc, rawFreeInternal, INTERNAL } from "../raw/tlsf";
import { heldMalloc } from "../debug/hooks";
import {
  Kind, ObjectError, ListObject, VarObject, DictObject, DictKeys, TypeRecord, typeOf, typeRecord,
  allocateObject, freeObject, incref, decref, dictEntries, state,
} from "../objects/object";
import {
  Builtin, IntObject, FloatObject, STR_DATA, newInt, newStr, newFloat, boolObject, noneObject,
} from "../objects/builtins";
import { presize, dictSetOwned, isKey } from "../objects/dict";
import { adopt } from "../gc/collector";

export const enum Tag {
  NONE = 0,
  FALSE = 1,
  TRUE = 2,
  INT = 3,
  INT64 = 4,
  FLOAT = 5,
  STR = 6,
  LIST = 7,
  DICT = 8,
  TUPLE = 9,
  KEY = 10,
  KEY_AGAIN = 11,
}

// @ts-ignore: decorator
@inline const TAG_BITS: u32 = 4;
// @ts-ignore: decorator
@inline const TAG_MASK: u32 = (1 << TAG_BITS) - 1;
/** The largest n a head holds. */
// @ts-ignore: decorator
@inline const MAX_N: u32 = (1 << (32 - TAG_BITS)) - 1;
// @ts-ignore: decorator
@inline const SMALL_MIN: i64 = -(1 << (31 - TAG_BITS));
// @ts-ignore: decorator
@inline const SMALL_MAX: i64 = (1 << (31 - TAG_BITS)) - 1;
/** The first dump block; it doubles from there. */
// @ts-ignore: decorator
@inline const DUMP_INITIAL: usize = 4096;
// @ts-ignore: decorator
@inline const FRAME_BYTES: usize = 8;

export function fail(error: ObjectError): usize {
  state().error = error;
  return 0;
}

// ───────────────────────────── build ─────────────────────────────

/** The UTF-8 bytes from `text` that hold `units` UTF-16 code units, or -1 past `end` or mid-character. */
function utf8Bytes(text: usize, end: usize, units: u32): isize {
  let p = text;
  let counted: u32 = 0;
  while (counted < units) {
    if (p >= end) return -1;
    const lead = load<u8>(p);
    const length: usize = lead < 0x80 ? 1 : lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
    counted += length == 4 ? 2 : 1;
    p += length;
  }
  return counted == units && p <= end ? <isize>(p - text) : -1;
}

/** UTF-16 code units of the UTF-8 bytes at p: one per sequence, two for a 4-byte one. */
function utf16Units(p: usize, bytes: usize): usize {
  let units: usize = 0;
  const end = p + bytes;
  for (; p < end; p++) {
    const b = load<u8>(p);
    if ((b & 0xc0) != 0x80) units += b >= 0xf0 ? 2 : 1;
  }
  return units;
}

/** Releases the n values of the stack from `from` up. */
export function releaseValues(from: usize, n: u32): void {
  for (let i: u32 = 0; i < n; i++) decref(load<usize>(from + (<usize>i << 2)));
}

/** A list that takes over the n values at `values`; 0 if out of memory (the values still the stack's). */
export function buildList(values: usize, n: u32): usize {
  const list = allocateObject(typeRecord(Builtin.LIST), 0);
  if (!list) return 0;
  if (n) {
    const items = heldMalloc(<usize>n << 2);
    if (!items) {
      freeObject(list, typeRecord(Builtin.LIST)); // never counted nor tracked
      return 0;
    }
    memory.copy(items, values, <usize>n << 2);
    const l = changetype<ListObject>(list);
    l.items = items;
    l.size = n;
    l.allocated = n;
  }
  adopt(list);
  return list;
}

/**
 * A dict that takes over the n (key, value) pairs at `values`. On failure returns 0 with the
 * error recorded, every pair released, and the dict gone.
 */
export function buildDict(values: usize, n: u32): usize {
  for (let i: u32 = 0; i < n; i++) {
    if (!isKey(load<usize>(values + (<usize>i << 3)))) {
      releaseValues(values, n << 1);
      return fail(ObjectError.UNHASHABLE);
    }
  }
  const d = allocateObject(typeRecord(Builtin.DICT), 0);
  if (!d || !presize(changetype<DictObject>(d), n)) {
    if (d) freeObject(d, typeRecord(Builtin.DICT));
    releaseValues(values, n << 1);
    return fail(ObjectError.OUT_OF_MEMORY);
  }
  adopt(d);
  for (let i: u32 = 0; i < n; i++) {
    const pair = values + (<usize>i << 3);
    if (!dictSetOwned(changetype<DictObject>(d), load<usize>(pair), load<usize>(pair, 4))) {
      releaseValues(pair, (n - i) << 1);
      decref(d);
      return fail(ObjectError.OUT_OF_MEMORY);
    }
  }
  return d;
}

/**
 * Builds the graph a postorder tape of `words` words at `tape` describes; returns its root
 * (a new reference), or 0 with the ObjectError recorded (OUT_OF_MEMORY, UNHASHABLE, or
 * BAD_VALUE for a tape that is not well formed) and nothing left allocated. The tape is
 * overwritten.
 */
export function buildGraph(tape: usize, words: u32, text: usize, textBytes: usize): usize {
  if (SCRATCH_END > CALL_SCRATCH + CALL_SCRATCH_BYTES) ERROR("memory/header.ts: CALL_SCRATCH_BYTES is too small for heap/json.ts's records");
  const memo = changetype<Growing>(MEMO);
  memory.fill(changetype<usize>(memo), 0, offsetof<Growing>());
  const root = build(tape, words, text, textBytes, memo);
  if (memo.block) rawFreeInternal(memo.block); // borrowed: the strs are the graph's (or released with it)
  return root;
}

function build(tape: usize, words: u32, text: usize, textBytes: usize, memo: Growing): usize {
  const end = tape + (<usize>words << 2);
  const textEnd = text + textBytes;
  let p = tape;
  let sp: u32 = 0; // values on the stack, which starts at `tape`
  while (p < end) {
    const head = load<u32>(p);
    const n = head >> TAG_BITS;
    p += 4;
    let v: usize = 0;
    let error = ObjectError.OUT_OF_MEMORY;
    switch (head & TAG_MASK) {
      case Tag.NONE: v = noneObject(); break;
      case Tag.FALSE: v = boolObject(false); break;
      case Tag.TRUE: v = boolObject(true); break;
      case Tag.INT: v = newInt(<i64>(<i32>head >> TAG_BITS)); break;
      case Tag.INT64: {
        if (p + 8 > end) { error = ObjectError.BAD_VALUE; break; }
        v = newInt(load<i64>(p));
        p += 8;
        break;
      }
      case Tag.FLOAT: {
        if (p + 8 > end) { error = ObjectError.BAD_VALUE; break; }
        v = newFloat(load<f64>(p));
        p += 8;
        break;
      }
      case Tag.STR:
      case Tag.KEY: {
        const bytes = utf8Bytes(text, textEnd, n);
        if (bytes < 0) { error = ObjectError.BAD_VALUE; break; }
        v = newStr(<u32>bytes);
        if (v) memory.copy(v + STR_DATA, text, bytes);
        text += bytes;
        if (v && (head & TAG_MASK) == Tag.KEY) {
          if (reserve(memo, 4)) {
            store<usize>(memo.block + memo.used, v);
            memo.used += 4;
          } else {
            decref(v);
            v = 0;
          }
        }
        break;
      }
      case Tag.KEY_AGAIN: {
        if (<usize>n >= memo.used >> 2) { error = ObjectError.BAD_VALUE; break; }
        v = load<usize>(memo.block + (<usize>n << 2));
        incref(v);
        break;
      }
      case Tag.LIST: {
        if (n > sp) { error = ObjectError.BAD_VALUE; break; }
        sp -= n;
        v = buildList(tape + (<usize>sp << 2), n);
        if (!v) sp += n; // the values are still the stack's, released below
        break;
      }
      case Tag.DICT: {
        if (<u64>n << 1 > sp) { error = ObjectError.BAD_VALUE; break; }
        sp -= n << 1;
        v = buildDict(tape + (<usize>sp << 2), n);
        if (!v) error = <ObjectError>state().error; // the pairs are released already
        break;
      }
      default: error = ObjectError.BAD_VALUE;
    }
    if (!v) {
      releaseValues(tape, sp);
      return fail(error);
    }
    if (CHECKED) assert(tape + (<usize>sp << 2) < p); // the stack stays behind the reading (see the top)
    store<usize>(tape + (<usize>sp << 2), v);
    sp++;
  }
  if (sp != 1) {
    releaseValues(tape, sp);
    return fail(ObjectError.BAD_VALUE);
  }
  return load<usize>(tape);
}

// ───────────────────────────── dump ─────────────────────────────

/** A raw block that doubles as it fills: the dump tape, and the walk's frames. */
@unmanaged export class Growing {
  block: usize;
  used: usize;
  capacity: usize;
}

// Where each entry point keeps its Growing records for the length of a call: in the header's
// call scratch (memory/header.ts), not in memory.data, whose zeros a worker attaching to a
// shared heap would write over a call in progress. One place per entry point, so that a
// finalizer running during one (an allocation may collect) can make the other's calls.
// @ts-ignore: decorator
@inline const MEMO: usize = CALL_SCRATCH;
// @ts-ignore: decorator
@inline const DUMP_STATE: usize = MEMO + offsetof<Growing>();
// @ts-ignore: decorator
@inline export const PARSE_STATE: usize = DUMP_STATE + offsetof<Growing>() * 3;
// @ts-ignore: decorator
@inline const SCRATCH_END: usize = PARSE_STATE + offsetof<Growing>() * 5;

/** Makes room for `bytes` more; false if out of memory. */
export function reserve(g: Growing, bytes: usize): bool {
  if (g.used + bytes <= g.capacity) return true;
  let capacity = g.capacity ? g.capacity : DUMP_INITIAL;
  while (capacity < g.used + bytes) capacity <<= 1;
  const block = rawAlloc(capacity, INTERNAL);
  if (!block) return false;
  if (g.block) {
    memory.copy(block, g.block, g.used);
    rawFreeInternal(g.block);
  }
  g.block = block;
  g.capacity = capacity;
  return true;
}

// @ts-ignore: decorator
@inline function putWord(g: Growing, w: u32): void {
  store<u32>(g.block + g.used, w);
  g.used += 4;
}

/** Writes an int's item: INT when it fits the head, else INT64. */
function putInt(g: Growing, value: i64): bool {
  if (value >= SMALL_MIN && value <= SMALL_MAX) {
    if (!reserve(g, 4)) return false;
    putWord(g, (<u32>value << TAG_BITS) | Tag.INT);
    return true;
  }
  if (!reserve(g, 12)) return false;
  putWord(g, Tag.INT64);
  store<i64>(g.block + g.used, value);
  g.used += 8;
  return true;
}

/**
 * Writes o's item (a container's head, its items to follow; a str's bytes into `text`) and,
 * for a container with items, pushes its frame. Returns OK, or the error with the offending
 * object in IO[0].
 */
function putValue(out: Growing, text: Growing, frames: Growing, o: usize, asText: bool): ObjectError {
  if (!o) return ObjectError.BAD_VALUE; // an empty slot of a tuple or list: no JSON value
  const t = changetype<TypeRecord>(typeOf(o));
  if (asText && t.kind != Kind.LIST && t.kind != Kind.TUPLE && t.kind != Kind.DICT) return putText(out, text, o, t);
  let n: u32 = 0;
  let head: u32 = 0;
  switch (t.kind) {
    case Kind.NONE: head = Tag.NONE; break;
    case Kind.BOOL: head = changetype<IntObject>(o).value ? Tag.TRUE : Tag.FALSE; break;
    case Kind.INT: return putInt(out, changetype<IntObject>(o).value) ? ObjectError.OK : ObjectError.OUT_OF_MEMORY;
    case Kind.FLOAT: {
      if (!reserve(out, 12)) return ObjectError.OUT_OF_MEMORY;
      putWord(out, Tag.FLOAT);
      store<f64>(out.block + out.used, changetype<FloatObject>(o).value);
      out.used += 8;
      return ObjectError.OK;
    }
    case Kind.STR: {
      const length = <usize>load<u32>(o, 8);
      const units = utf16Units(o + STR_DATA, length);
      if (units > MAX_N) return ObjectError.BAD_VALUE;
      if (!reserve(out, 4) || !reserve(text, length)) return ObjectError.OUT_OF_MEMORY;
      putWord(out, (<u32>units << TAG_BITS) | Tag.STR);
      memory.copy(text.block + text.used, o + STR_DATA, length);
      text.used += length;
      return ObjectError.OK;
    }
    case Kind.LIST:
    case Kind.TUPLE: {
      n = changetype<VarObject>(o).size;
      head = t.kind == Kind.LIST ? Tag.LIST : Tag.TUPLE;
      break;
    }
    case Kind.DICT: {
      n = changetype<DictObject>(o).used;
      head = Tag.DICT;
      break;
    }
    default: {
      store<usize>(IO, o);
      return ObjectError.WRONG_KIND;
    }
  }
  if (n > MAX_N) return ObjectError.BAD_VALUE;
  if (!reserve(out, 4)) return ObjectError.OUT_OF_MEMORY;
  if (asText) {
    const open: u32 = head == Tag.DICT ? 0x7b : 0x5b;
    store<u8>(out.block + out.used++, <u8>open);
    if (!n) store<u8>(out.block + out.used++, <u8>(open + 2)); // [] or {}
  } else putWord(out, (n << TAG_BITS) | head);
  if (!n) return ObjectError.OK;
  for (let f = frames.block; f < frames.block + frames.used; f += FRAME_BYTES) {
    if (load<usize>(f) == o) {
      store<usize>(IO, o);
      return ObjectError.CYCLE;
    }
  }
  if (!reserve(frames, FRAME_BYTES)) return ObjectError.OUT_OF_MEMORY;
  store<usize>(frames.block + frames.used, o);
  store<u32>(frames.block + frames.used, 0, 4);
  frames.used += FRAME_BYTES;
  return ObjectError.OK;
}

/**
 * Walks the graph under o, writing each item as it is met (putValue): the preorder tape and
 * its text, or (asText) JSON text and its pending floats. OK, or the error with the object
 * at fault in IO[0].
 */
function walk(o: usize, out: Growing, text: Growing, frames: Growing, asText: bool): ObjectError {
  store<usize>(IO, o);
  let status = putValue(out, text, frames, o, asText);
  while (status == ObjectError.OK && frames.used) {
    const frame = frames.block + frames.used - FRAME_BYTES;
    const c = load<usize>(frame);
    const position = load<u32>(frame, 4);
    const t = typeOf(c);
    const isDict = t.kind == Kind.DICT;
    let entry: usize = 0;
    let done: bool;
    if (isDict) {
      const keys = changetype<DictKeys>(changetype<DictObject>(c).keys);
      const entries = dictEntries(changetype<usize>(keys));
      let ix = position;
      while (ix < keys.nentries && !load<usize>(entries + (<usize>ix << 3))) ix++;
      done = ix == keys.nentries;
      entry = entries + (<usize>ix << 3);
      store<u32>(frame, ix + 1, 4);
    } else {
      done = position == changetype<VarObject>(c).size;
      const items = t.kind == Kind.LIST ? changetype<ListObject>(c).items : c + offsetof<VarObject>();
      entry = items + (<usize>position << 2);
      store<u32>(frame, position + 1, 4);
    }
    if (asText && !reserve(out, 1)) return ObjectError.OUT_OF_MEMORY;
    if (done) {
      frames.used -= FRAME_BYTES;
      if (asText) store<u8>(out.block + out.used++, isDict ? 0x7d : 0x5d);
      continue;
    }
    if (asText && position) store<u8>(out.block + out.used++, 0x2c);
    store<usize>(IO, c);
    if (!isDict) {
      status = putValue(out, text, frames, load<usize>(entry), asText);
      continue;
    }
    const key = load<usize>(entry);
    status = asText ? putTextKey(out, key) : putValue(out, text, frames, key, false);
    if (status == ObjectError.OK) status = putValue(out, text, frames, load<usize>(entry, 4), asText);
  }
  return status;
}

/**
 * Writes the graph under o as a preorder tape and its text into two new INTERNAL raw blocks:
 * returns the tape (IO[0] words) and leaves the text in IO[1] (its address, 0 if it is
 * empty) and IO[2] (its bytes); the host frees both with scratchFree. Or 0, with the
 * ObjectError recorded and IO[0] naming the object at fault (WRONG_KIND: not a JSON value;
 * CYCLE; BAD_VALUE: an empty slot, or a str or container too large for a head).
 */
export function dumpGraph(o: usize): usize {
  const out = dumpState();
  const text = changetype<Growing>(changetype<usize>(out) + offsetof<Growing>());
  const frames = changetype<Growing>(changetype<usize>(out) + offsetof<Growing>() * 2);
  const status = walk(o, out, text, frames, false);
  if (frames.block) rawFreeInternal(frames.block);
  if (status != ObjectError.OK) {
    if (out.block) rawFreeInternal(out.block);
    if (text.block) rawFreeInternal(text.block);
    return fail(status);
  }
  store<u32>(IO, <u32>(out.used >> 2));
  store<usize>(IO, text.block, 4);
  store<u32>(IO, <u32>text.used, 8);
  return out.block;
}

/** The three Growing records of a dump (out, text or pending floats, frames), emptied. */
function dumpState(): Growing {
  const state = changetype<Growing>(DUMP_STATE);
  memory.fill(changetype<usize>(state), 0, offsetof<Growing>() * 3);
  return state;
}

// ───────────────────────────── dump as text ─────────────────────────────
// The same walk writing JSON text, as JSON.stringify would write the value toJSON gives,
// except that dict keys keep their insertion order (JS objects put integer-like keys first)
// and ints past 2^53 keep every digit (json.dumps's, with separators "," and ":"). A float
// with a fraction needs the shortest digits that round-trip (ECMAScript's Number::toString):
// written here when they are few (putShortest), else left, place and value, in a pending
// list for the host to write (String of the number). Integral floats below 2^53 print as
// their integer, and NaN and the infinities as null, as JSON.stringify prints them.

/** Floats of 2^53 and above may not print as their integer digits in JS. */
// @ts-ignore: decorator
@inline const EXACT_INTEGER: f64 = 9007199254740992;
// @ts-ignore: decorator
@inline const PENDING_BYTES: usize = 12;

/** Writes an ASCII word of up to 5 letters (little-endian in a u64). */
function putLetters(out: Growing, word: u64, length: usize): bool {
  if (!reserve(out, length)) return false;
  for (let i: usize = 0; i < length; i++) store<u8>(out.block + out.used + i, <u8>(word >> (<u64>i << 3)));
  out.used += length;
  return true;
}

/** Writes v in decimal. */
function putDecimal(out: Growing, v: i64): bool {
  if (!reserve(out, 20)) return false;
  let magnitude: u64 = v < 0 ? <u64>(-(v + 1)) + 1 : <u64>v;
  let digits: usize = 1;
  for (let m = magnitude; m >= 10; m /= 10) digits++;
  if (v < 0) store<u8>(out.block + out.used++, 0x2d);
  for (let i = digits; i > 0; i--) {
    store<u8>(out.block + out.used + i - 1, <u8>(0x30 + magnitude % 10));
    magnitude /= 10;
  }
  out.used += digits;
  return true;
}

/** Writes a str as a JSON string: quoted, with JSON.stringify's escapes. */
function putQuoted(out: Growing, s: usize): bool {
  const length = <usize>load<u32>(s, 8);
  if (!reserve(out, length * 6 + 2)) return false;
  const bytes = s + STR_DATA;
  let q = out.block + out.used;
  store<u8>(q++, 0x22);
  for (let i: usize = 0; i < length; i++) {
    const b = <u32>load<u8>(bytes + i);
    if (b >= 0x20 && b != 0x22 && b != 0x5c) {
      store<u8>(q++, <u8>b);
      continue;
    }
    store<u8>(q++, 0x5c);
    let short: u32 = 0;
    switch (b) {
      case 0x22: short = 0x22; break;
      case 0x5c: short = 0x5c; break;
      case 0x08: short = 0x62; break;
      case 0x0c: short = 0x66; break;
      case 0x0a: short = 0x6e; break;
      case 0x0d: short = 0x72; break;
      case 0x09: short = 0x74; break;
    }
    if (short) {
      store<u8>(q++, <u8>short);
      continue;
    }
    store<u8>(q, 0x75); // u00 and two hex digits: b < 0x20
    store<u8>(q, 0x30, 1);
    store<u8>(q, 0x30, 2);
    store<u8>(q, <u8>(0x30 + (b >> 4)), 3);
    const low = b & 15;
    store<u8>(q, <u8>(low < 10 ? 0x30 + low : 0x61 + low - 10), 4);
    q += 5;
  }
  store<u8>(q++, 0x22);
  out.used = q - out.block;
  return true;
}

/** A dict key as JSON: a str quoted, an int as its quoted decimal (json.dumps's). */
function putTextKey(out: Growing, key: usize): ObjectError {
  let ok: bool;
  if (typeOf(key).kind == Kind.STR) ok = putQuoted(out, key);
  else ok = putLetters(out, 0x22, 1) && putDecimal(out, changetype<IntObject>(key).value) && putLetters(out, 0x22, 1);
  return ok && putLetters(out, 0x3a, 1) ? ObjectError.OK : ObjectError.OUT_OF_MEMORY;
}

/** The largest power of ten a double holds exactly, and the most decimal digits it always holds. */
// @ts-ignore: decorator
@inline export const EXACT_POWERS: i32 = 22;
// @ts-ignore: decorator
@inline export const EXACT_DIGITS: i32 = 15;

/** Exact powers of ten, 10^0 .. 10^EXACT_POWERS. */
const POWERS = memory.data<f64>([
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
  1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
]);

// @ts-ignore: decorator
@inline export function power(k: i32): f64 {
  return load<f64>(POWERS + (<usize>k << 3));
}

/**
 * Writes a float with a fraction in its shortest round-tripping digits, when those are at
 * most 15 and |v| is in [1e-6, 1e15) (where Number::toString writes no exponent); false
 * otherwise, writing nothing (out has 24 bytes of room).
 * Why this is Number::toString's answer: for p digits, the candidates are the p-digit
 * decimals m / 10^k nearest v; m is within 1 of v * 10^k however that product rounds, and
 * m / 10^k converts back exactly rounded (m < 2^53, 10^k exact: Clinger's fast path), so a
 * candidate round-trips iff it converts back to v. With p <= 15 at most one p-digit decimal
 * rounds to v (their spacing, 10^(1-p) of v's magnitude, is wider than v's rounding interval,
 * about 2^-52 of it), so the first p with a candidate that round-trips gives the shortest
 * digits, and the only ones.
 */
function putShortest(out: Growing, v: f64): bool {
  const a = Math.abs(v);
  if (!(a >= 1e-6 && a < 1e15)) return false;
  let e = <i32>Math.floor(Math.log10(a)); // the decimal exponent of a's first digit, mended below
  if (e >= 0 ? power(e) > a : a * power(-e) < 1) e--;
  else if (e + 1 >= 0 ? power(e + 1) <= a : a * power(-(e + 1)) >= 1) e++;
  for (let p: i32 = 1; p <= EXACT_DIGITS; p++) {
    const k = p - 1 - e; // digits after the point: v ~ m / 10^k; k >= 1 since v has a fraction
    if (k < 1 || k > EXACT_POWERS) continue;
    const nearest = Math.round(a * power(k));
    for (let m = nearest - 1; m <= nearest + 1; m++) {
      if (m < power(p - 1) || m >= power(p) || m / power(k) != a) continue;
      putDigits(out, <u64>m, p, k, v < 0);
      return true;
    }
  }
  return false;
}

/** Writes m / 10^k (m of p digits, k >= 1) in positional notation: 0.00ddd or dd.ddd. */
function putDigits(out: Growing, m: u64, p: i32, k: i32, negative: bool): void {
  let q = out.block + out.used;
  if (negative) store<u8>(q++, 0x2d);
  const integral = p - k; // digits before the point (<= 0: none)
  if (integral <= 0) {
    store<u8>(q++, 0x30);
    store<u8>(q++, 0x2e);
    for (let i = integral; i < 0; i++) store<u8>(q++, 0x30);
  }
  const width = <usize>(p + (integral > 0 ? 1 : 0));
  let at = q + width;
  for (let i: i32 = 0; i < p; i++) {
    if (integral > 0 && i == k) store<u8>(--at, 0x2e);
    store<u8>(--at, <u8>(0x30 + m % 10));
    m /= 10;
  }
  out.used = q + width - out.block;
}

/** A scalar as JSON text; a float with a fraction goes to `pending` (its byte offset and value). */
function putText(out: Growing, pending: Growing, o: usize, t: TypeRecord): ObjectError {
  let ok = true;
  switch (t.kind) {
    case Kind.NONE: ok = putLetters(out, 0x6c6c756e, 4); break;
    case Kind.BOOL: ok = changetype<IntObject>(o).value ? putLetters(out, 0x65757274, 4) : putLetters(out, 0x65736c6166, 5); break;
    case Kind.INT: ok = putDecimal(out, changetype<IntObject>(o).value); break;
    case Kind.STR: ok = putQuoted(out, o); break;
    case Kind.FLOAT: {
      const v = changetype<FloatObject>(o).value;
      if (!isFinite(v)) ok = putLetters(out, 0x6c6c756e, 4);
      else if (Math.trunc(v) == v && Math.abs(v) < EXACT_INTEGER) ok = putDecimal(out, <i64>v);
      else if (!reserve(out, 24)) ok = false;
      else if (putShortest(out, v)) break;
      else if ((ok = reserve(pending, PENDING_BYTES))) {
        store<u32>(pending.block + pending.used, <u32>out.used);
        store<f64>(pending.block + pending.used, v, 4);
        pending.used += PENDING_BYTES;
      }
      break;
    }
    default: {
      store<usize>(IO, o);
      return ObjectError.WRONG_KIND;
    }
  }
  return ok ? ObjectError.OK : ObjectError.OUT_OF_MEMORY;
}

/**
 * Writes the graph under o as JSON text into a new INTERNAL raw block: returns it, with IO[0]
 * its bytes, IO[1] the pending floats (0 if none; 12 bytes each: the UTF-16 offset in the
 * text where the float goes, and its value) and IO[2] how many; the host frees both blocks
 * with scratchFree. Or 0 as dumpGraph fails.
 */
export function dumpText(o: usize): usize {
  const out = dumpState();
  const pending = changetype<Growing>(changetype<usize>(out) + offsetof<Growing>());
  const frames = changetype<Growing>(changetype<usize>(out) + offsetof<Growing>() * 2);
  // A block even for a text that is only a pending float.
  const status = reserve(out, 1) ? walk(o, out, pending, frames, true) : ObjectError.OUT_OF_MEMORY;
  if (frames.block) rawFreeInternal(frames.block);
  if (status != ObjectError.OK) {
    if (out.block) rawFreeInternal(out.block);
    if (pending.block) rawFreeInternal(pending.block);
    return fail(status);
  }
  // The host splices the floats into the decoded text: their byte offsets become UTF-16 ones.
  let units: usize = 0;
  let from: usize = 0;
  for (let e = pending.block; e < pending.block + pending.used; e += PENDING_BYTES) {
    const at = <usize>load<u32>(e);
    units += utf16Units(out.block + from, at - from);
    from = at;
    store<u32>(e, <u32>units);
  }
  store<u32>(IO, <u32>out.used);
  store<usize>(IO, pending.block, 4);
  store<u32>(IO, <u32>(pending.used / PENDING_BYTES), 8);
  return out.block;
}
