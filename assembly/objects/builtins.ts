// The kinds of object: constructors, and the operations of tuples, lists, ints, strings (with
// interning) and weak references. Offsets are from the object address (object.ts draws the
// GC header in front of the tracked kinds).
//
// ╒═══ tuple (TUPLE) ═══╕  ╒═══ list (LIST) ═════╕  ╒═══ int (INT) ═══╕  ╒═══ str (STR) ════╕
//  +0  refcnt              +0  refcnt               +0  refcnt           +0  refcnt
//  +4  type                +4  type                 +4  type             +4  type
//  +8  size    u32         +8  size       u32       +8  value  i64       +8  length  u32 (bytes)
//  +12 items   usize x     +12 allocated  u32                            +12 hash    u32, 0 = not yet
//      size                +16 items      usize ->                       +16 UTF-8 bytes
//                              a separate block of allocated references
// ╘═════════════════════╛  ╘═════════════════════╛  ╘══════════════════╛  ╘═══════════════════╛
//
// ╒═════════ weakref (WEAKREF) ═════════╕  ╒═ float (FLOAT) ═╕  ╒═ bool (BOOL) ═╕  ╒═ None (NONE) ═╕
//  +0  refcnt, +4 type                      +0  refcnt           +0  refcnt         +0  refcnt
//  +8  object     usize  the referent (not   +4  type             +4  type           +4  type
//                 counted); 0 once gone      +8  value  f64       +8  value  i64
//  +12 prevRef    usize  links of the                                 (0 or 1)
//  +16 nextRef    usize  referent's weak list
//  +20 callback   u32    non-zero iff the host holds a callback
// ╘═════════════════════════════════════╛  ╘══════════════════╛  ╘═══════════════╛  ╘═══════════════╛
//
// Ints from -5 to 256 are cached and immortal, made on first use. Interned strings are
// immortal (as in CPython 3.12.0), kept in an open-addressed table of addresses probed
// linearly from the str's hash, grown to keep it at most 2/3 full. None, False and True are
// immortal singletons (PEP 683), made on first use; bool is an int subclass in CPython, so
// a bool keeps its value where an int does. A float is CPython's PyFloatObject: one double.
//
// A str's hash is FNV-1a of its UTF-8 bytes with the fixed offset basis, 32 bits, never 0
// (0 marks "not computed yet"), cached in the str. CPython hashes with SipHash under a key
// chosen at random per process; a fixed hash keeps every table (interned strings, dicts)
// the same from run to run, as PYTHONHASHSEED=0 does, at the cost of CPython's protection
// against keys chosen to collide.

import { CHECKED } from "../memory/header";
import { heldRealloc } from "../debug/hooks";
import { rawAlloc, rawFreeInternal, INTERNAL } from "../raw/tlsf";
import {
  Kind, TypeRecord, ListObject, VarObject, WeakrefObject, ObjectState, state, typeRecord,
  allocateObject, incref, gcHead, releaseHeld, walked, ObjectLayerBroken, immortalize,
} from "./object";

/** Indices of the built-in type records (objectsInit defines them in this order). */
export const enum Builtin {
  INT = 0,
  STR = 1,
  TUPLE = 2,
  LIST = 3,
  WEAKREF = 4,
  DICT = 5,
  FLOAT = 6,
  BOOL = 7,
  NONE = 8,
}

@unmanaged export class IntObject {
  refcnt: u32;
  type: usize;
  value: i64;
}

@unmanaged export class FloatObject {
  refcnt: u32;
  type: usize;
  value: f64;
}

@unmanaged class StrObject {
  refcnt: u32;
  type: usize;
  length: u32;
  hash: u32;
}

// @ts-ignore: decorator
@inline const SMALL_INT_MIN: i64 = -5;
// @ts-ignore: decorator
@inline const SMALL_INT_MAX: i64 = 256;
// @ts-ignore: decorator
@inline const SMALL_INTS: u32 = <u32>(SMALL_INT_MAX - SMALL_INT_MIN + 1);
// @ts-ignore: decorator
@inline export const STR_DATA: usize = offsetof<StrObject>();
// @ts-ignore: decorator
@inline const INTERN_INITIAL: u32 = 64;

export function newTuple(t: TypeRecord, size: u32): usize {
  const o = allocateObject(t, <usize>size << 2);
  if (o) changetype<VarObject>(o).size = size;
  return o;
}

// ───────────────────────────── lists ─────────────────────────────

/**
 * Makes room for newsize items with CPython's over-allocation (about 1/8, so appends are
 * amortised O(1)); the array shrinks when less than half of it would be used. False if out
 * of memory, the list unchanged.
 */
function listResize(list: ListObject, newsize: u32): bool {
  const allocated = list.allocated;
  if (allocated >= newsize && newsize >= (allocated >> 1)) {
    list.size = newsize;
    return true;
  }
  if (!newsize) {
    releaseHeld(list.items);
    list.items = 0;
    list.allocated = 0;
    list.size = 0;
    return true;
  }
  let capacity = (newsize + (newsize >> 3) + 6) & ~3;
  if (newsize - list.size > capacity - newsize) capacity = (newsize + 3) & ~3;
  const items = heldRealloc(list.items, <usize>capacity << 2);
  if (!items) {
    // A shrink that cannot move keeps the larger array.
    if (newsize > allocated) return false;
    list.size = newsize;
    return true;
  }
  list.items = items;
  list.allocated = capacity;
  list.size = newsize;
  return true;
}

/** Appends an owned reference to item; false if out of memory. */
export function listAppend(list: ListObject, item: usize): bool {
  const n = list.size;
  if (!listResize(list, n + 1)) return false;
  incref(item);
  store<usize>(list.items + (<usize>n << 2), item);
  return true;
}

/** Removes item `index` and hands its reference to the caller (0 if the item was empty). */
export function listPop(list: ListObject, index: u32): usize {
  const items = list.items;
  const item = load<usize>(items + (<usize>index << 2));
  const tail = list.size - index - 1;
  memory.copy(items + (<usize>index << 2), items + (<usize>(index + 1) << 2), <usize>tail << 2);
  listResize(list, list.size - 1); // a shrink always succeeds

  return item;
}

// ───────────────────────────── ints ─────────────────────────────

export function newInt(value: i64): usize {
  if (value < SMALL_INT_MIN || value > SMALL_INT_MAX) return newIntObject(value);
  const st = state();
  if (!st.smallInts) {
    const cache = rawAlloc(<usize>SMALL_INTS << 2, INTERNAL);
    if (!cache) return 0;
    memory.fill(cache, 0, <usize>SMALL_INTS << 2);
    st.smallInts = cache;
  }
  const slot = st.smallInts + (<usize>(value - SMALL_INT_MIN) << 2);
  let o = load<usize>(slot);
  if (!o) {
    o = newIntObject(value);
    if (!o) return 0;
    immortalize(o);
    store<usize>(slot, o);
  }
  return o;
}

function newIntObject(value: i64): usize {
  const o = allocateObject(typeRecord(Builtin.INT), 0);
  if (o) changetype<IntObject>(o).value = value;
  return o;
}

// ───────────────────────────── floats, bools and None ─────────────────────────────

export function newFloat(value: f64): usize {
  const o = allocateObject(typeRecord(Builtin.FLOAT), 0);
  if (o) changetype<FloatObject>(o).value = value;
  return o;
}

/** An immortal singleton of type `builtin` holding `value`, made on first use; 0 if out of memory. */
function singleton(slot: usize, builtin: Builtin, value: i64): usize {
  let o = load<usize>(slot);
  if (o) return o;
  o = allocateObject(typeRecord(builtin), 0);
  if (!o) return 0;
  if (builtin == Builtin.BOOL) changetype<IntObject>(o).value = value;
  immortalize(o);
  store<usize>(slot, o);
  return o;
}

export function noneObject(): usize {
  return singleton(changetype<usize>(state()) + offsetof<ObjectState>("none"), Builtin.NONE, 0);
}

export function boolObject(value: bool): usize {
  const field = value ? offsetof<ObjectState>("trueObject") : offsetof<ObjectState>("falseObject");
  return singleton(changetype<usize>(state()) + field, Builtin.BOOL, value ? 1 : 0);
}

// ───────────────────────────── strings ─────────────────────────────

/** A new str of `length` zero bytes, for the host to fill. */
export function newStr(length: u32): usize {
  const o = allocateObject(typeRecord(Builtin.STR), length);
  if (o) changetype<StrObject>(o).length = length;
  return o;
}

/** The hash a str of these bytes has (see the top of the file). */
export function bytesHash(bytes: usize, length: usize): u32 {
  let hash: u32 = 0x811c9dc5;
  for (let i: usize = 0; i < length; i++) hash = (hash ^ load<u8>(bytes + i)) * 0x01000193;
  return hash ? hash : 1;
}

export function strHash(o: usize): u32 {
  const s = changetype<StrObject>(o);
  if (!s.hash) s.hash = bytesHash(o + STR_DATA, s.length);
  return s.hash;
}

export function strEquals(a: usize, b: usize): bool {
  const length = changetype<StrObject>(a).length;
  return length == changetype<StrObject>(b).length && memory.compare(a + STR_DATA, b + STR_DATA, length) == 0;
}

/** Inserts s (known absent) into a table with room for it. */
function internInsert(table: usize, mask: u32, s: usize): void {
  let i = strHash(s) & mask;
  let probes: u32 = 0;
  while (load<usize>(table + (<usize>i << 2))) {
    probes = walked(probes, mask, ObjectLayerBroken.INTERN_TABLE, table);
    i = (i + 1) & mask;
  }
  store<usize>(table + (<usize>i << 2), s);
}

/** Doubles the intern table (or makes the first); false if out of memory. */
function internGrow(): bool {
  const st = state();
  const oldSize: u32 = st.internTable ? st.internMask + 1 : 0;
  const size: u32 = oldSize ? oldSize << 1 : INTERN_INITIAL;
  const table = rawAlloc(<usize>size << 2, INTERNAL);
  if (!table) return false;
  memory.fill(table, 0, <usize>size << 2);
  for (let i: u32 = 0; i < oldSize; i++) {
    const s = load<usize>(st.internTable + (<usize>i << 2));
    if (s) internInsert(table, size - 1, s);
  }
  if (st.internTable) rawFreeInternal(st.internTable);
  st.internTable = table;
  st.internMask = size - 1;
  return true;
}

/** sys.intern: the interned str equal to s (s itself, made immortal, if it is the first); 0 if out of memory. */
export function intern(s: usize): usize {
  const st = state();
  if (st.internTable) {
    const mask = st.internMask;
    let probes: u32 = 0;
    for (let i = strHash(s) & mask; ; i = (i + 1) & mask) {
      const e = load<usize>(st.internTable + (<usize>i << 2));
      if (!e) break;
      if (e == s || strEquals(e, s)) return e;
      // The table is kept at most 2/3 full, so a probe always meets an empty slot.
      probes = walked(probes, mask, ObjectLayerBroken.INTERN_TABLE, st.internTable);
    }
  }
  if ((st.internCount + 1) * 3 > (st.internTable ? st.internMask + 1 : 0) * 2 && !internGrow()) return 0;
  internInsert(st.internTable, st.internMask, s);
  st.internCount++;
  immortalize(s);
  return s;
}

// ───────────────────────────── weak references ─────────────────────────────

/** Makes wr, a new weakref object, refer to o (whose type has a weak list): first on o's weak list. */
export function initWeakref(wr: usize, o: usize, t: TypeRecord, callback: bool): void {
  if (CHECKED) assert(t.weaklistOffset); // callers check that o can be weakly referenced
  const ref = changetype<WeakrefObject>(wr);
  const head = o + t.weaklistOffset;
  const first = load<usize>(head);
  ref.object = o;
  ref.nextRef = first;
  ref.callback = callback ? 1 : 0;
  if (first) changetype<WeakrefObject>(first).prevRef = wr;
  store<usize>(head, wr);
}

/** True iff the tuple o, untracked for holding atomic items only, must be tracked again to hold v. */
// @ts-ignore: decorator
@inline export function tupleNeedsTracking(o: usize, t: TypeRecord): bool {
  return t.kind == Kind.TUPLE && !gcHead(o).next;
}
