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
function putValue(out: Growing, text: Growing, frames: Growing, o: usize): ObjectError {
  if (!o) return ObjectError.BAD_VALUE; // an empty slot of a tuple or list: no JSON value
  const t = changetype<TypeRecord>(typeOf(o));
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
  putWord(out, (n << TAG_BITS) | head);
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
 * Writes the graph under o as a preorder tape and its text into two new INTERNAL raw blocks:
 * returns the tape (IO[0] words) and leaves the text in IO[1] (its address, 0 if it is
 * empty) and IO[2] (its bytes); the host frees both with scratchFree. Or 0, with the
 * ObjectError recorded and IO[0] naming the object at fault (WRONG_KIND: not a JSON value;
 * CYCLE; BAD_VALUE: an empty slot, or a str or container too large for a head).
 */
export function dumpGraph(o: usize): usize {
  const out = changetype<Growing>(memory.data(<i32>(offsetof<Growing>() * 3), 4));
  const text = changetype<Growing>(changetype<usize>(out) + offsetof<Growing>());
  const frames = changetype<Growing>(changetype<usize>(out) + offsetof<Growing>() * 2);
  memory.fill(changetype<usize>(out), 0, offsetof<Growing>() * 3);
  store<usize>(IO, o);
  let status = putValue(out, text, frames, o);
  while (status == ObjectError.OK && frames.used) {
    const frame = frames.block + frames.used - FRAME_BYTES;
    const c = load<usize>(frame);
    const position = load<u32>(frame, 4);
    const t = typeOf(c);
    if (t.kind == Kind.DICT) {
      const keys = changetype<DictObject>(c).keys;
      const entries = dictEntries(keys);
      let ix = position;
      while (ix < changetype<DictKeys>(keys).nentries && !load<usize>(entries + (<usize>ix << 3))) ix++;
      if (ix == changetype<DictKeys>(keys).nentries) {
        frames.used -= FRAME_BYTES;
        continue;
      }
      store<u32>(frame, ix + 1, 4);
      const key = load<usize>(entries + (<usize>ix << 3));
      store<usize>(IO, c);
      status = putValue(out, text, frames, key);
      if (status == ObjectError.OK) status = putValue(out, text, frames, load<usize>(entries + (<usize>ix << 3), 4));
    } else {
      if (position == changetype<VarObject>(c).size) {
        frames.used -= FRAME_BYTES;
        continue;
      }
      store<u32>(frame, position + 1, 4);
      store<usize>(IO, c);
      const items = t.kind == Kind.LIST ? changetype<ListObject>(c).items : c + offsetof<VarObject>();
      status = putValue(out, text, frames, load<usize>(items + (<usize>position << 2)));
    }
  }
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
