// JSON graphs: building a graph of dicts, lists, strs, ints, floats, bools and None from a
// tape the host wrote, and writing a graph back as a tape, each in one call.
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
// ╘═════════════════════════════════════════════════════════════════════════════════════════╛
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

import { IO, CHECKED } from "../memory/header";
import { rawAlloc, rawFreeInternal, INTERNAL } from "../raw/tlsf";
import { heldMalloc } from "../debug/hooks";
import {
  Kind, ObjectError, ListObject, VarObject, DictObject, DictKeys, TypeRecord, typeOf, typeRecord,
  allocateObject, freeObject, decref, dictEntries, state,
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

function fail(error: ObjectError): usize {
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
function releaseValues(from: usize, n: u32): void {
  for (let i: u32 = 0; i < n; i++) decref(load<usize>(from + (<usize>i << 2)));
}

/** A list that takes over the n values at `values`; 0 if out of memory (the values still the stack's). */
function buildList(values: usize, n: u32): usize {
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
function buildDict(values: usize, n: u32): usize {
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
      case Tag.STR: {
        const bytes = utf8Bytes(text, textEnd, n);
        if (bytes < 0) { error = ObjectError.BAD_VALUE; break; }
        v = newStr(<u32>bytes);
        if (v) memory.copy(v + STR_DATA, text, bytes);
        text += bytes;
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
@unmanaged class Growing {
  block: usize;
  used: usize;
  capacity: usize;
}

/** Makes room for `bytes` more; false if out of memory. */
function reserve(g: Growing, bytes: usize): bool {
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
  const state = changetype<Growing>(memory.data(<i32>(offsetof<Growing>() * 3), 4));
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

/** Exact powers of ten, 10^0 .. 10^22. */
const POWERS = memory.data<f64>([
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
  1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
]);

// @ts-ignore: decorator
@inline function power(k: i32): f64 {
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

// ───────────────────────────── parse ─────────────────────────────
// JSON text (RFC 8259) straight to a graph, in one pass: a value stack of finished values and
// a stack of open containers (kind, where its values start), each container built when it
// closes (buildList, buildDict) as a build tape's head would be. Strings are checked to be
// UTF-8 and unescaped; a \u escape of a lone surrogate becomes U+FFFD, as TextEncoder makes
// of one (a str holds UTF-8, which cannot hold a surrogate). Integers are ints, other numbers floats, converted here when the decimal
// is exact in a double's arithmetic (at most 15 significant digits and a power of ten up to
// 10^22, Clinger's fast path) and otherwise left for the host to convert (the IO buffer lists
// them), so every float is the correctly rounded double JSON.parse would give. Integers beyond
// 64 bits are floats too.

/** Why a parse failed: IO[1] (IO[0] is the byte offset). */
export const enum SyntaxProblem {
  UNEXPECTED = 1,
  END = 2,
  BAD_UTF8 = 3,
  BAD_ESCAPE = 4,
  CONTROL = 5,
}

// @ts-ignore: decorator
@inline const OPEN_LIST: u32 = 0;
// @ts-ignore: decorator
@inline const OPEN_DICT: u32 = 1;
/** Powers of ten a double holds exactly. */
// @ts-ignore: decorator
@inline const EXACT_POWERS: i32 = 22;
// @ts-ignore: decorator
@inline const EXACT_DIGITS: i32 = 15;

/** Where a parse stopped, and why: the IO buffer's words 0 and 1. */
function syntax(at: usize, text: usize, problem: SyntaxProblem): usize {
  store<u32>(IO, <u32>(at - text));
  store<u32>(IO, problem, 4);
  return 0;
}

// @ts-ignore: decorator
@inline function isSpace(c: u32): bool {
  return c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09;
}

// @ts-ignore: decorator
@inline function isDigit(c: u32): bool {
  return c - 0x30 < 10;
}

/** The length of the UTF-8 sequence at p (lead byte >= 0x80), or 0 if it is not well formed. */
function utf8Sequence(p: usize, end: usize): usize {
  const lead = <u32>load<u8>(p);
  let length: usize;
  let low: u32 = 0x80;
  let high: u32 = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) length = 2;
  else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) low = 0xa0;
    else if (lead == 0xed) high = 0x9f; // no surrogates
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) low = 0x90;
    else if (lead == 0xf4) high = 0x8f; // nothing past U+10FFFF
  } else return 0;
  if (p + length > end) return 0;
  const second = <u32>load<u8>(p, 1);
  if (second < low || second > high) return 0;
  for (let i: usize = 2; i < length; i++) {
    if ((load<u8>(p + i) & 0xc0) != 0x80) return 0;
  }
  return length;
}

// @ts-ignore: decorator
@inline function hexDigit(c: u32): i32 {
  if (c - 0x30 < 10) return <i32>(c - 0x30);
  const lower = c | 0x20;
  if (lower - 0x61 < 6) return <i32>(lower - 0x61 + 10);
  return -1;
}

/** The four hex digits at p as a code unit, or -1. */
function hex4(p: usize): i32 {
  let v: i32 = 0;
  for (let i: usize = 0; i < 4; i++) {
    const d = hexDigit(load<u8>(p + i));
    if (d < 0) return -1;
    v = (v << 4) | d;
  }
  return v;
}

/** Writes code point cp as UTF-8 at out (when out is not 0); returns its length. */
function putCodePoint(out: usize, cp: u32): usize {
  const length: usize = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  if (!out) return length;
  if (length == 1) store<u8>(out, <u8>cp);
  else if (length == 2) {
    store<u8>(out, <u8>(0xc0 | (cp >> 6)));
    store<u8>(out, <u8>(0x80 | (cp & 0x3f)), 1);
  } else if (length == 3) {
    store<u8>(out, <u8>(0xe0 | (cp >> 12)));
    store<u8>(out, <u8>(0x80 | ((cp >> 6) & 0x3f)), 1);
    store<u8>(out, <u8>(0x80 | (cp & 0x3f)), 2);
  } else {
    store<u8>(out, <u8>(0xf0 | (cp >> 18)));
    store<u8>(out, <u8>(0x80 | ((cp >> 12) & 0x3f)), 1);
    store<u8>(out, <u8>(0x80 | ((cp >> 6) & 0x3f)), 2);
    store<u8>(out, <u8>(0x80 | (cp & 0x3f)), 3);
  }
  return length;
}

/**
 * One pass over the string whose content starts at p (after its quote): with out == 0 it
 * checks it and returns its UTF-8 length, with out it writes the unescaped bytes there. The
 * closing quote's address goes to the Growing `at` (its used word); -1 on an error, at the
 * offending byte.
 */
function unescape(p: usize, end: usize, out: usize, at: Growing): isize {
  let bytes: usize = 0;
  while (p < end) {
    const c = <u32>load<u8>(p);
    if (c == 0x22) {
      at.used = p;
      return <isize>bytes;
    }
    if (c < 0x20) {
      at.used = p;
      at.capacity = SyntaxProblem.CONTROL;
      return -1;
    }
    if (c < 0x80 && c != 0x5c) {
      if (out) store<u8>(out + bytes, <u8>c);
      bytes++;
      p++;
      continue;
    }
    if (c >= 0x80) {
      const length = utf8Sequence(p, end);
      if (!length) {
        at.used = p;
        at.capacity = SyntaxProblem.BAD_UTF8;
        return -1;
      }
      if (out) memory.copy(out + bytes, p, length);
      bytes += length;
      p += length;
      continue;
    }
    // A backslash.
    if (p + 1 >= end) break;
    const e = <u32>load<u8>(p, 1);
    let unit: i32 = -1;
    switch (e) {
      case 0x22: unit = 0x22; break;
      case 0x5c: unit = 0x5c; break;
      case 0x2f: unit = 0x2f; break;
      case 0x62: unit = 0x08; break;
      case 0x66: unit = 0x0c; break;
      case 0x6e: unit = 0x0a; break;
      case 0x72: unit = 0x0d; break;
      case 0x74: unit = 0x09; break;
      case 0x75: unit = p + 6 <= end ? hex4(p + 2) : -1; break;
    }
    if (unit < 0) {
      at.used = p;
      at.capacity = SyntaxProblem.BAD_ESCAPE;
      return -1;
    }
    let cp = <u32>unit;
    p += e == 0x75 ? 6 : 2;
    if (cp >= 0xd800 && cp <= 0xdfff) {
      // A surrogate pair makes one character; a lone surrogate, U+FFFD.
      const low = cp <= 0xdbff && p + 6 <= end && load<u8>(p) == 0x5c && load<u8>(p, 1) == 0x75 ? hex4(p + 2) : -1;
      if (low >= 0xdc00 && low <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (<u32>low - 0xdc00);
        p += 6;
      } else cp = 0xfffd;
    }
    bytes += putCodePoint(out ? out + bytes : 0, cp);
  }
  at.used = end;
  at.capacity = SyntaxProblem.END;
  return -1;
}

// @ts-ignore: decorator
@inline function pushValue(values: Growing, v: usize): bool {
  if (!reserve(values, 4)) return false;
  store<usize>(values.block + values.used, v);
  values.used += 4;
  return true;
}

/**
 * A number's object, from its text at [p, q) (already matched to the grammar): an int, or a
 * float (one the host must convert is listed in `pending`); 0 if out of memory.
 */
function numberObject(p: usize, q: usize, pending: Growing): usize {
  const negative = load<u8>(p) == 0x2d;
  let s = negative ? p + 1 : p;
  let mantissa: u64 = 0;
  let digits: i32 = 0; // significant digits taken into the mantissa
  let dropped: i32 = 0; // integer digits past them
  let fraction: i32 = 0;
  let exact = true;
  let isInteger = true;
  for (; s < q && isDigit(load<u8>(s)); s++) {
    const d = <u64>(load<u8>(s) - 0x30);
    if (digits == 0 && d == 0) continue;
    if (digits < 19) {
      mantissa = mantissa * 10 + d;
      digits++;
    } else {
      dropped++;
      exact = false;
    }
  }
  if (s < q && load<u8>(s) == 0x2e) {
    isInteger = false;
    for (s++; s < q && isDigit(load<u8>(s)); s++) {
      const d = <u64>(load<u8>(s) - 0x30);
      if (digits == 0 && d == 0) {
        fraction++;
        continue;
      }
      if (digits < 19) {
        mantissa = mantissa * 10 + d;
        digits++;
        fraction++;
      } else exact = false;
    }
  }
  let exponent: i32 = 0;
  if (s < q) {
    isInteger = false;
    s++; // e or E
    let negativeExponent = false;
    if (load<u8>(s) == 0x2b || load<u8>(s) == 0x2d) negativeExponent = load<u8>(s++) == 0x2d;
    for (; s < q; s++) {
      if (exponent < 100000) exponent = exponent * 10 + <i32>(load<u8>(s) - 0x30);
    }
    if (negativeExponent) exponent = -exponent;
  }
  // 19 digits fit a u64; an int must fit an i64 (-2^63 .. 2^63 - 1). A longer integer is a
  // float, as JSON.parse makes it (CPython would make a long, which a heap does not have).
  if (isInteger && !dropped && mantissa <= (negative ? <u64>0x8000_0000_0000_0000 : <u64>0x7fff_ffff_ffff_ffff)) {
    return newInt(negative ? <i64>(0 - mantissa) : <i64>mantissa);
  }
  const e10 = exponent + dropped - fraction;
  let value: f64 = 0;
  const fast = exact && digits <= EXACT_DIGITS && e10 >= -EXACT_POWERS && e10 <= EXACT_POWERS;
  if (fast && mantissa != 0) {
    value = <f64>mantissa;
    const power = Math.pow(10, <f64>(e10 < 0 ? -e10 : e10)); // exact: 10^22 fits a double's 53 bits
    value = e10 < 0 ? value / power : value * power;
  }
  const o = newFloat(negative ? -value : value);
  if (!o || fast || mantissa == 0) return o;
  if (!reserve(pending, 12)) {
    decref(o);
    return 0;
  }
  const entry = pending.block + pending.used;
  store<usize>(entry, o);
  store<usize>(entry, p, 4);
  store<u32>(entry, <u32>(q - p), 8);
  pending.used += 12;
  return o;
}

/** The end of the number starting at p, matched to JSON's grammar, or 0. */
function numberEnd(p: usize, end: usize): usize {
  if (p < end && load<u8>(p) == 0x2d) p++;
  if (p >= end || !isDigit(load<u8>(p))) return 0;
  if (load<u8>(p) == 0x30) p++;
  else while (p < end && isDigit(load<u8>(p))) p++;
  if (p < end && load<u8>(p) == 0x2e) {
    p++;
    if (p >= end || !isDigit(load<u8>(p))) return 0;
    while (p < end && isDigit(load<u8>(p))) p++;
  }
  if (p < end && (load<u8>(p) | 0x20) == 0x65) {
    p++;
    if (p < end && (load<u8>(p) == 0x2b || load<u8>(p) == 0x2d)) p++;
    if (p >= end || !isDigit(load<u8>(p))) return 0;
    while (p < end && isDigit(load<u8>(p))) p++;
  }
  return p;
}

/** True iff the bytes at p spell `word` (4 or 5 ASCII letters, given little-endian in a u64). */
// @ts-ignore: decorator
@inline function spells(p: usize, end: usize, word: u64, length: usize): bool {
  if (p + length > end) return false;
  for (let i: usize = 0; i < length; i++) {
    if (<u64>load<u8>(p + i) != ((word >> (<u64>i << 3)) & 0xff)) return false;
  }
  return true;
}

/**
 * Parses `bytes` bytes of JSON text at `text` into a graph: the root (a new reference), or 0
 * with the ObjectError recorded: SYNTAX (IO[0] the byte offset, IO[1] the SyntaxProblem) or
 * OUT_OF_MEMORY, nothing left allocated. On success IO[0] holds how many floats the host must
 * convert and IO[1] the address of their list (0 if none; scratchFree it): per float its
 * object, the address of its text and the text's length, 3 words.
 */
export function parseText(text: usize, bytes: usize): usize {
  const state3 = changetype<Growing>(memory.data(<i32>(offsetof<Growing>() * 4), 4));
  memory.fill(changetype<usize>(state3), 0, offsetof<Growing>() * 4);
  const values = state3;
  const open = changetype<Growing>(changetype<usize>(state3) + offsetof<Growing>());
  const pending = changetype<Growing>(changetype<usize>(state3) + offsetof<Growing>() * 2);
  const at = changetype<Growing>(changetype<usize>(state3) + offsetof<Growing>() * 3);
  const end = text + bytes;
  let p = text;
  let result: usize = 0;
  let error = ObjectError.OUT_OF_MEMORY;
  let expectKey = false;
  /** Set once the parse has its result, or an error. */
  let stop = false;
  while (!stop) {
    // A value (or, in a dict, a key) is due.
    while (p < end && isSpace(load<u8>(p))) p++;
    if (p >= end) { syntax(p, text, SyntaxProblem.END); error = ObjectError.SYNTAX; break; }
    const c = <u32>load<u8>(p);
    let v: usize = 0;
    if (expectKey && c != 0x22) { syntax(p, text, SyntaxProblem.UNEXPECTED); error = ObjectError.SYNTAX; break; }
    if (c == 0x7b || c == 0x5b) {
      if (!reserve(open, 8)) break;
      store<u32>(open.block + open.used, c == 0x7b ? OPEN_DICT : OPEN_LIST);
      store<u32>(open.block + open.used, <u32>(values.used >> 2), 4);
      open.used += 8;
      p++;
      while (p < end && isSpace(load<u8>(p))) p++;
      if (p < end && <u32>load<u8>(p) == (c == 0x7b ? 0x7d : 0x5d)) {
        // Empty: closed below, as after a value.
        expectKey = false;
      } else {
        expectKey = c == 0x7b;
        continue;
      }
    } else {
      if (c == 0x22) {
        const length = unescape(p + 1, end, 0, at);
        if (length < 0) { syntax(at.used, text, <SyntaxProblem>at.capacity); error = ObjectError.SYNTAX; break; }
        const close = at.used;
        v = newStr(<u32>length);
        if (!v) break;
        if (close - (p + 1) == <usize>length) memory.copy(v + STR_DATA, p + 1, length);
        else unescape(p + 1, end, v + STR_DATA, at);
        p = close + 1;
      } else if (c == 0x2d || isDigit(c)) {
        const q = numberEnd(p, end);
        if (!q) { syntax(p, text, SyntaxProblem.UNEXPECTED); error = ObjectError.SYNTAX; break; }
        v = numberObject(p, q, pending);
        if (!v) break;
        p = q;
      } else if (c == 0x74 && spells(p, end, 0x65757274, 4)) { v = boolObject(true); p += 4; }
      else if (c == 0x66 && spells(p, end, 0x65736c6166, 5)) { v = boolObject(false); p += 5; }
      else if (c == 0x6e && spells(p, end, 0x6c6c756e, 4)) { v = noneObject(); p += 4; }
      else { syntax(p, text, SyntaxProblem.UNEXPECTED); error = ObjectError.SYNTAX; break; }
      if (!v) break;
      if (!pushValue(values, v)) { decref(v); break; }
      if (expectKey) {
        while (p < end && isSpace(load<u8>(p))) p++;
        if (p >= end || load<u8>(p) != 0x3a) { syntax(p, text, p >= end ? SyntaxProblem.END : SyntaxProblem.UNEXPECTED); error = ObjectError.SYNTAX; break; }
        p++;
        expectKey = false;
        continue;
      }
      while (p < end && isSpace(load<u8>(p))) p++;
    }
    // After a value: a comma, or the close of the innermost container (a run of them).
    stop = true;
    while (true) {
      if (!open.used) {
        if (p != end) { syntax(p, text, SyntaxProblem.UNEXPECTED); error = ObjectError.SYNTAX; break; }
        result = load<usize>(values.block);
        values.used = 0;
        break;
      }
      if (p >= end) { syntax(p, text, SyntaxProblem.END); error = ObjectError.SYNTAX; break; }
      const top = open.block + open.used - 8;
      const kind = load<u32>(top);
      const c2 = <u32>load<u8>(p);
      if (c2 == 0x2c) {
        p++;
        expectKey = kind == OPEN_DICT;
        stop = false;
        break;
      }
      if (c2 != (kind == OPEN_DICT ? 0x7d : 0x5d)) { syntax(p, text, SyntaxProblem.UNEXPECTED); error = ObjectError.SYNTAX; break; }
      p++;
      const start = load<u32>(top, 4);
      const n = <u32>(values.used >> 2) - start;
      const items = values.block + (<usize>start << 2);
      open.used -= 8;
      values.used = <usize>start << 2;
      const container = kind == OPEN_DICT ? buildDict(items, n >> 1) : buildList(items, n);
      if (!container) {
        if (kind == OPEN_LIST) values.used += <usize>n << 2; // still the stack's, released below
        break;
      }
      if (!pushValue(values, container)) {
        decref(container);
        break;
      }
      while (p < end && isSpace(load<u8>(p))) p++;
    }
  }
  if (values.block) {
    releaseValues(values.block, <u32>(values.used >> 2));
    rawFreeInternal(values.block);
  }
  if (open.block) rawFreeInternal(open.block);
  if (!result) {
    if (pending.block) rawFreeInternal(pending.block);
    return fail(error);
  }
  store<u32>(IO, <u32>(pending.used / 12));
  store<usize>(IO, pending.block, 4);
  return result;
}
