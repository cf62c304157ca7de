// JSON text (RFC 8259) straight to a graph in one pass: heap.parseJSON. A value stack of
// finished values and a stack of open containers (kind, where its values start), each
// container built when it closes with json.ts's builders (buildList, buildDict), as a build
// tape's head would be. Strings are checked to be UTF-8 and unescaped; a \u escape of a lone
// surrogate becomes U+FFFD, as TextEncoder makes of one (a str holds UTF-8, which cannot hold
// a surrogate). Integers are ints up to 64 bits; other numbers are floats, converted here
// when the decimal is exact in a double's arithmetic (at most 15 significant digits and a
// power of ten up to 10^22, Clinger's fast path) and otherwise left for the host to convert
// (the IO buffer lists them), so every float is the correctly rounded double JSON.parse
// would give.
//
// Keys are memoized, as CPython's json scanner does (its memo dict): within one parse, every
// dict key spelled alike (without escapes) is the same str object, made once. A document of
// records then holds one str per field name, not one per record.
import { IO } from "../memory/header";
import { rawAlloc, rawFreeInternal, INTERNAL } from "../raw/tlsf";
import { ObjectError, decref, incref } from "../objects/object";
import { STR_DATA, newInt, newStr, newFloat, boolObject, noneObject, bytesHash } from "../objects/builtins";
import {
  Growing, reserve, fail, releaseValues, buildList, buildDict, power, EXACT_DIGITS, EXACT_POWERS, PARSE_STATE,
} from "./json";

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
    value = e10 < 0 ? value / power(-e10) : value * power(e10);
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

/** The first key memo: 64 slots. */
// @ts-ignore: decorator
@inline const MEMO_INITIAL: usize = 64;

/**
 * The key memo: an open-addressed table of strs (block, `capacity` slots, `used` of them
 * taken), probed linearly from the str's hash and kept at most 2/3 full.
 */
function memoSlot(memo: Growing, bytes: usize, length: usize, hash: u32): usize {
  const mask = memo.capacity - 1;
  let i = <usize>hash & mask;
  let s: usize;
  // At most 2/3 full: the probe meets an empty slot.
  while ((s = load<usize>(memo.block + (i << 2))) && !(load<u32>(s, 8) == <u32>length && memory.compare(s + STR_DATA, bytes, length) == 0)) {
    i = (i + 1) & mask;
  }
  return memo.block + (i << 2);
}

/** A key spelled by `length` bytes at `bytes` (no escapes): the memo's str (a new reference), or a new one; 0 if out of memory. */
function memoKey(memo: Growing, bytes: usize, length: usize): usize {
  if (memo.used * 3 >= memo.capacity * 2 && !memoGrow(memo)) return 0;
  const hash = bytesHash(bytes, length);
  const slot = memoSlot(memo, bytes, length, hash);
  let s = load<usize>(slot);
  if (s) {
    incref(s);
    return s;
  }
  s = newStr(<u32>length);
  if (!s) return 0;
  memory.copy(s + STR_DATA, bytes, length);
  store<u32>(s, hash, 12); // the hash a str caches (objects/builtins.ts)
  store<usize>(slot, s);
  memo.used++;
  return s;
}

/** Doubles the memo (or makes the first); false if out of memory. */
function memoGrow(memo: Growing): bool {
  const size = memo.capacity ? memo.capacity << 1 : MEMO_INITIAL;
  const table = rawAlloc(size << 2, INTERNAL);
  if (!table) return false;
  memory.fill(table, 0, size << 2);
  const old = memo.block;
  const oldSize = memo.capacity;
  memo.block = table;
  memo.capacity = size;
  for (let i: usize = 0; i < oldSize; i++) {
    const s = load<usize>(old + (i << 2));
    if (s) store<usize>(memoSlot(memo, s + STR_DATA, load<u32>(s, 8), load<u32>(s, 12)), s);
  }
  if (old) rawFreeInternal(old);
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
  const parts = changetype<Growing>(PARSE_STATE);
  memory.fill(changetype<usize>(parts), 0, offsetof<Growing>() * 5);
  const values = parts;
  const open = changetype<Growing>(changetype<usize>(parts) + offsetof<Growing>());
  const pending = changetype<Growing>(changetype<usize>(parts) + offsetof<Growing>() * 2);
  const at = changetype<Growing>(changetype<usize>(parts) + offsetof<Growing>() * 3);
  const memo = changetype<Growing>(changetype<usize>(parts) + offsetof<Growing>() * 4);
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
        const plain = close - (p + 1) == <usize>length;
        if (expectKey && plain) v = memoKey(memo, p + 1, length);
        else {
          v = newStr(<u32>length);
          if (v && plain) memory.copy(v + STR_DATA, p + 1, length);
          else if (v) unescape(p + 1, end, v + STR_DATA, at);
        }
        if (!v) break;
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
  if (memo.block) rawFreeInternal(memo.block); // the strs are the graph's (or released with it)
  if (!result) {
    if (pending.block) rawFreeInternal(pending.block);
    return fail(error);
  }
  store<u32>(IO, <u32>(pending.used / 12));
  store<usize>(IO, pending.block, 4);
  return result;
}
