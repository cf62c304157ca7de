// The ABI of the object layer and the gc module (src/heap/objects.ts and src/heap/gc.ts use it).
// Every object address is validated here, in O(1), before anything is read through it;
// a bad one yields a status, never a trap. Calls that return a status return an
// ObjectError; calls that return a value return FAILED (or 0 for constructors) and leave
// the ObjectError in objectError().

import {
  ObjectError, Kind, TypeRecord, ListObject, WeakrefObject, FAILED, state, generation,
  generationStats, gcHead, typeOf, liveObjectType, referenceArray, referenceCount, incref,
  decref, xdecref, track, typeRecord, mayBeTracked, allocateObject, objectsInit as initObjects, defineType,
  typeIsValid, FINALIZED, FINALIZER, PERMANENT, NUM_GENERATIONS, GC_HEADER, TRACKED, TYPE_SHIFT, blockOf, refcnt,
} from "../objects/object";
import { brcDecrefLockFree } from "../objects/brc";
import { IO, FREE_THREADED } from "../memory/header";
import { usableSize } from "../debug/hooks";
import {
  Builtin, newTuple, newInt, newStr, intern, initWeakref, listAppend, listPop, tupleNeedsTracking, STR_DATA,
} from "../objects/builtins";
import {
  countAllocation, collect, freeze, unfreeze, generationSize, clearGarbage, listObjects,
  listReferents,
} from "../gc/collector";

/** Largest slot count and data size of a host-defined type. */
// @ts-ignore: decorator
@inline const MAX_SLOTS: u32 = 1 << 16;
// @ts-ignore: decorator
@inline const MAX_DATA_BYTES: u32 = 1 << 24;
/** Largest tuple: its items must fit a raw block. */
// @ts-ignore: decorator
@inline const MAX_TUPLE: u32 = 1 << 28;

function failed(error: ObjectError): usize {
  state().error = error;
  return FAILED;
}

/** A constructor's result: the object, or 0 with OUT_OF_MEMORY recorded. */
function made(o: usize): usize {
  if (!o) state().error = ObjectError.OUT_OF_MEMORY;
  return o;
}

/**
 * A constructor's new object, handed to the collector: an object with a GC header is counted
 * first, which may start an automatic collection, and tracked (if its type is) only afterwards,
 * so that the collection does not see it (CPython's _PyObject_GC_Link, then PyObject_GC_Track).
 * The object layer cannot do this itself: the collector is the layer above it.
 */
function gcMade(o: usize): usize {
  if (!o) return made(0);
  const flags = typeOf(o).flags;
  if (flags & GC_HEADER) {
    countAllocation();
    if (flags & TRACKED) track(o);
  }
  return o;
}

/** Sets the object space up (first use): OK or OUT_OF_MEMORY. */
export function objectsInit(): u32 {
  return initObjects() ? ObjectError.OK : ObjectError.OUT_OF_MEMORY;
}

export function objectError(): u32 {
  return state().error;
}

/**
 * A host-defined type: FIXED, TUPLE or LIST. `name` is 0, or a str naming it (a heap shared by
 * workers names its types in memory), whose reference the type takes over: it lives as long as
 * the heap. Its address, or 0.
 */
export function typeDefine(kind: u32, refSlots: u32, dataBytes: u32, finalizer: bool, weakrefable: bool, name: usize): usize {
  if (
    (kind != Kind.FIXED && kind != Kind.TUPLE && kind != Kind.LIST) ||
    refSlots > MAX_SLOTS || dataBytes > MAX_DATA_BYTES
  ) {
    state().error = ObjectError.WRONG_KIND;
    return 0;
  }
  const nameType = name ? liveObjectType(name) : 0;
  if (name && (!nameType || changetype<TypeRecord>(nameType).kind != Kind.STR)) {
    state().error = ObjectError.BAD_VALUE;
    return 0;
  }
  return defineType(kind, refSlots, dataBytes, finalizer, weakrefable, name);
}

/** Types defined so far, the built-ins first: typeAt(i) for i below it is a type's address. */
export function typeCount(): u32 {
  return state().typeCount;
}

export function typeAt(index: u32): usize {
  return index < state().typeCount ? changetype<usize>(typeRecord(index)) : 0;
}

/**
 * Writes a type's description for the host into IO: kind, whether it has a finalizer, refSlots,
 * dataBytes, whether it is weakly referenceable, its name (a str, 0 for built-ins). 0 if t is
 * not a type.
 */
export function typeDescribe(t: usize): u32 {
  if (!typeIsValid(t)) return 0;
  const record = changetype<TypeRecord>(t);
  store<u32>(IO, record.kind);
  store<u32>(IO, record.flags & FINALIZER ? 1 : 0, 4);
  store<u32>(IO, record.refSlots, 8);
  store<u32>(IO, record.dataBytes, 12);
  store<u32>(IO, record.weaklistOffset ? 1 : 0, 16);
  store<u32>(IO, record.name, 20);
  return 1;
}

/** The address of a built-in type record (Builtin index), for the host's type handles. */
export function builtinType(index: u32): usize {
  return state().typeTable + (<usize>index << TYPE_SHIFT);
}

export function objectNew(type: usize): usize {
  if (!typeIsValid(type) || changetype<TypeRecord>(type).kind != Kind.FIXED) {
    state().error = ObjectError.WRONG_KIND;
    return 0;
  }
  return gcMade(allocateObject(changetype<TypeRecord>(type), 0));
}

export function tupleNew(type: usize, size: u32): usize {
  if (!typeIsValid(type) || changetype<TypeRecord>(type).kind != Kind.TUPLE) {
    state().error = ObjectError.WRONG_KIND;
    return 0;
  }
  if (size > MAX_TUPLE) return made(0);
  return gcMade(newTuple(changetype<TypeRecord>(type), size));
}

export function listNew(type: usize): usize {
  if (!typeIsValid(type) || changetype<TypeRecord>(type).kind != Kind.LIST) {
    state().error = ObjectError.WRONG_KIND;
    return 0;
  }
  return gcMade(allocateObject(changetype<TypeRecord>(type), 0));
}

export function intNew(value: i64): usize {
  return made(newInt(value));
}

export function strNew(length: u32): usize {
  if (length > MAX_TUPLE) return made(0);
  return made(newStr(length));
}

/** sys.intern(s): the interned equal string (a new reference, immortal), or FAILED. */
export function strIntern(s: usize): usize {
  const t = liveObjectType(s);
  if (!t) return failed(ObjectError.NOT_AN_OBJECT);
  if (changetype<TypeRecord>(t).kind != Kind.STR) return failed(ObjectError.WRONG_KIND);
  const interned = intern(s);
  return interned ? interned : failed(ObjectError.OUT_OF_MEMORY);
}

/** The object's kind (Kind), or 0 if the address is not a live object. */
export function objectKind(o: usize): u32 {
  const t = liveObjectType(o);
  return t ? changetype<TypeRecord>(t).kind : 0;
}

/** The object's type record, or 0 if the address is not a live object. */
export function objectType(o: usize): usize {
  return liveObjectType(o);
}

/** Where the object's raw bytes start: a fixed type's data, an int's value, a str's UTF-8. */
export function objectData(o: usize): usize {
  const t = liveObjectType(o);
  if (!t) return failed(ObjectError.NOT_AN_OBJECT);
  const kind = changetype<TypeRecord>(t).kind;
  if (kind == Kind.STR) return o + STR_DATA;
  if (kind == Kind.FIXED || kind == Kind.INT) return o + changetype<TypeRecord>(t).dataOffset;
  return failed(ObjectError.WRONG_KIND);
}

/** How many bytes objectData has: dataBytes, 8 for an int, the length of a str. */
export function objectDataBytes(o: usize): usize {
  const t = liveObjectType(o);
  if (!t) return failed(ObjectError.NOT_AN_OBJECT);
  const kind = changetype<TypeRecord>(t).kind;
  if (kind == Kind.STR) return load<u32>(o, 8);
  if (kind == Kind.FIXED || kind == Kind.INT) return changetype<TypeRecord>(t).dataBytes;
  return failed(ObjectError.WRONG_KIND);
}

/**
 * The bytes of the live object's block (its GC header included), or 0 when o is no live
 * object: tracemalloc's size for an object, and how it sees that the core freed one.
 */
export function objectBlockBytes(o: usize): usize {
  const t = liveObjectType(o);
  if (!t) return 0;
  return usableSize(blockOf(o, changetype<TypeRecord>(t)));
}

export function objectIncref(o: usize): u32 {
  if (!liveObjectType(o)) return ObjectError.NOT_AN_OBJECT;
  incref(o);
  return ObjectError.OK;
}

/**
 * In the free-threaded build, lock-free: NEEDS_LOCK when the decref must queue or deallocate
 * (the host then calls objectDecrefLocked under the heap mutex; nothing was changed).
 */
export function objectDecref(o: usize): u32 {
  if (!liveObjectType(o)) return ObjectError.NOT_AN_OBJECT;
  if (FREE_THREADED) return brcDecrefLockFree(o) ? ObjectError.OK : ObjectError.NEEDS_LOCK;
  decref(o);
  return ObjectError.OK;
}

export function objectRefcount(o: usize): usize {
  if (!liveObjectType(o)) return failed(ObjectError.NOT_AN_OBJECT);
  return refcnt(o);
}

/** References the object has room for (slots, items), or FAILED. */
export function objectLength(o: usize): usize {
  const t = liveObjectType(o);
  if (!t) return failed(ObjectError.NOT_AN_OBJECT);
  return referenceCount(o, changetype<TypeRecord>(t));
}

/** The borrowed reference in slot (or item) i: an address, 0 if empty, or FAILED. */
export function objectGetRef(o: usize, i: u32): usize {
  const t = liveObjectType(o);
  if (!t) return failed(ObjectError.NOT_AN_OBJECT);
  const tr = changetype<TypeRecord>(t);
  if (i >= referenceCount(o, tr)) return failed(ObjectError.INDEX);
  return load<usize>(referenceArray(o, tr) + (<usize>i << 2));
}

/** Stores an owned reference to v (0: empty) in slot (or item) i, releasing what it held. */
export function objectSetRef(o: usize, i: u32, v: usize): u32 {
  const t = liveObjectType(o);
  if (!t) return ObjectError.NOT_AN_OBJECT;
  if (v && !liveObjectType(v)) return ObjectError.BAD_VALUE;
  const tr = changetype<TypeRecord>(t);
  if (i >= referenceCount(o, tr)) return ObjectError.INDEX;
  const slot = referenceArray(o, tr) + (<usize>i << 2);
  const old = load<usize>(slot);
  if (v) {
    incref(v);
    if (tupleNeedsTracking(o, tr) && mayBeTracked(v)) track(o);
  }
  store<usize>(slot, v);
  xdecref(old);
  return ObjectError.OK;
}

export function listAppendItem(list: usize, item: usize): u32 {
  const t = liveObjectType(list);
  if (!t) return ObjectError.NOT_AN_OBJECT;
  if (changetype<TypeRecord>(t).kind != Kind.LIST) return ObjectError.WRONG_KIND;
  if (!liveObjectType(item)) return ObjectError.BAD_VALUE;
  return listAppend(changetype<ListObject>(list), item) ? ObjectError.OK : ObjectError.OUT_OF_MEMORY;
}

/** list.pop(i): removes item i (negative: from the end) and returns its reference, or FAILED. */
export function listPopItem(list: usize, index: i32): usize {
  const t = liveObjectType(list);
  if (!t) return failed(ObjectError.NOT_AN_OBJECT);
  if (changetype<TypeRecord>(t).kind != Kind.LIST) return failed(ObjectError.WRONG_KIND);
  const l = changetype<ListObject>(list);
  const i: i64 = index < 0 ? <i64>l.size + index : <i64>index;
  if (i < 0 || i >= <i64>l.size) return failed(ObjectError.INDEX);
  return listPop(l, <u32>i);
}

/** weakref.ref(o): a new weakref object, or 0 (WRONG_KIND: o's type has no weak list). */
export function weakrefNew(o: usize, callback: bool): usize {
  const t = liveObjectType(o);
  if (!t) {
    state().error = ObjectError.NOT_AN_OBJECT;
    return 0;
  }
  if (!changetype<TypeRecord>(t).weaklistOffset) {
    state().error = ObjectError.WRONG_KIND;
    return 0;
  }
  const wr = gcMade(allocateObject(typeRecord(Builtin.WEAKREF), 0));
  if (wr) initWeakref(wr, o, changetype<TypeRecord>(t), callback);
  return wr;
}

/** The weakref's referent (borrowed), 0 once it is gone, or FAILED. */
export function weakrefGet(wr: usize): usize {
  const t = liveObjectType(wr);
  if (!t) return failed(ObjectError.NOT_AN_OBJECT);
  if (changetype<TypeRecord>(t).kind != Kind.WEAKREF) return failed(ObjectError.WRONG_KIND);
  return changetype<WeakrefObject>(wr).object;
}

// ───────────────────────────── the gc module ─────────────────────────────

export function gcCollect(g: u32): u32 {
  return collect(min(g, NUM_GENERATIONS - 1));
}

export function gcSetEnabled(enabled: bool): void {
  state().enabled = enabled ? 1 : 0;
}

export function gcIsEnabled(): bool {
  return state().enabled != 0;
}

export function gcGetCount(g: u32): u32 {
  return generation(min(g, PERMANENT)).count;
}

export function gcGetThreshold(g: u32): u32 {
  return generation(min(g, NUM_GENERATIONS - 1)).threshold;
}

export function gcSetThreshold(g: u32, threshold: u32): void {
  if (g < NUM_GENERATIONS) generation(g).threshold = threshold;
}

export function gcGetDebug(): u32 {
  return state().debug;
}

export function gcSetDebug(flags: u32): void {
  state().debug = flags;
}

/** get_stats()[g]: field 0 collections, 1 collected, 2 uncollectable. */
export function gcStat(g: u32, field: u32): u32 {
  const stats = generationStats(min(g, NUM_GENERATIONS - 1));
  return field == 0 ? stats.collections : field == 1 ? stats.collected : stats.uncollectable;
}

/** Objects of generation g (NUM_GENERATIONS: all three) after `after`, into IO (gc/collector.ts). */
export function gcListObjects(g: u32, after: usize, referent: usize): u32 {
  return listObjects(min(g, NUM_GENERATIONS), after, referent);
}

/** o's non-empty references from index start, into IO; FAILED if o is not an object. */
export function gcListReferents(o: usize, start: u32): usize {
  const t = liveObjectType(o);
  if (!t) return failed(ObjectError.NOT_AN_OBJECT);
  if (!(changetype<TypeRecord>(t).flags & GC_HEADER)) return 0;
  return listReferents(o, start);
}

/** 1 if tracked, 0 if not, FAILED if o is not an object. */
export function gcIsTracked(o: usize): usize {
  const t = liveObjectType(o);
  if (!t) return failed(ObjectError.NOT_AN_OBJECT);
  return changetype<TypeRecord>(t).flags & GC_HEADER && gcHead(o).next ? 1 : 0;
}

export function gcIsFinalized(o: usize): usize {
  const t = liveObjectType(o);
  if (!t) return failed(ObjectError.NOT_AN_OBJECT);
  return changetype<TypeRecord>(t).flags & GC_HEADER && gcHead(o).prev & FINALIZED ? 1 : 0;
}

export function gcFreeze(): void {
  freeze();
}

export function gcUnfreeze(): void {
  unfreeze();
}

export function gcGenerationSize(g: u32): u32 {
  return generationSize(min(g, PERMANENT));
}

export function gcGarbageCount(): u32 {
  return state().garbageCount;
}

/** The gc.garbage array (gcGarbageCount addresses); valid until the next collection. */
export function gcGarbageItems(): usize {
  return state().garbage;
}

export function gcClearGarbage(): void {
  clearGarbage();
}
