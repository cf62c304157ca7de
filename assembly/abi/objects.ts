// The ABI of the object layer and the gc module (src/heap/objects.ts and src/heap/gc.ts use it).
// Every object address is validated here, in O(1), before anything is read through it;
// a bad one yields a status, never a trap. Calls that return a status return an
// ObjectError; calls that return a value return FAILED (or 0 for constructors) and leave
// the ObjectError in objectError().

import {
  ObjectError, Kind, TypeRecord, ListObject, WeakrefObject, FAILED, state, generation,
  generationStats, gcHead, typeOf, liveObjectType, referenceArray, referenceCount, incref,
  decref, xdecref, track, typeRecord, mayBeTracked, allocateObject, objectsInit as initObjects, defineType,
  typeIsValid, FINALIZED, FINALIZER, PERMANENT, NUM_GENERATIONS, GC_HEADER, TRACKED, TYPE_SHIFT, GC_HEADER_BYTES,
  blockOf, refcnt, DictObject, DictKeys, dictEntries, freeObject,
} from "../objects/object";
import { brcDecrefLockFree } from "../objects/brc";
import { IO, FREE_THREADED } from "../memory/header";
import { usableSize } from "../debug/hooks";
import {
  Builtin, newTuple, newInt, newStr, intern, initWeakref, listAppend, listPop, tupleNeedsTracking, STR_DATA,
  newFloat, boolObject, noneObject,
} from "../objects/builtins";
import {
  adopt, collect, freeze, unfreeze, generationSize, clearGarbage, listObjects, listReferents,
} from "../gc/collector";
import {
  isKey, presize, dictGet, dictSet, dictDelete, dictIndexAt,
} from "../objects/dict";
import { IO, IO_WORDS } from "../memory/header";
import { rawAlloc, rawFreeInternal, INTERNAL } from "../raw/tlsf";
import { buildGraph, dumpGraph, dumpText } from "../heap/json";
import { parseText } from "../heap/json-parse";

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
 * A constructor's new object, handed to the collector (gc/collector.ts, adopt). The object
 * layer cannot do this itself: the collector is the layer above it.
 */
function gcMade(o: usize): usize {
  if (!o) return made(0);
  adopt(o);
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

/** Kinds whose raw bytes sit at their type's dataOffset: fixed objects, and the numbers. */
// @ts-ignore: decorator
@inline function hasData(kind: u32): bool {
  return kind == Kind.FIXED || kind == Kind.INT || kind == Kind.FLOAT || kind == Kind.BOOL;
}

/** Where the object's raw bytes start: a fixed type's data, a number's value, a str's UTF-8. */
export function objectData(o: usize): usize {
  const t = liveObjectType(o);
  if (!t) return failed(ObjectError.NOT_AN_OBJECT);
  const kind = changetype<TypeRecord>(t).kind;
  if (kind == Kind.STR) return o + STR_DATA;
  if (hasData(kind)) return o + changetype<TypeRecord>(t).dataOffset;
  return failed(ObjectError.WRONG_KIND);
}

/** How many bytes objectData has: dataBytes, 8 for an int, the length of a str. */
export function objectDataBytes(o: usize): usize {
  const t = liveObjectType(o);
  if (!t) return failed(ObjectError.NOT_AN_OBJECT);
  const kind = changetype<TypeRecord>(t).kind;
  if (kind == Kind.STR) return load<u32>(o, 8);
  if (hasData(kind)) return changetype<TypeRecord>(t).dataBytes;
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

/** References the object has room for (slots, items), a dict's entries (len), or FAILED. */
export function objectLength(o: usize): usize {
  const t = liveObjectType(o);
  if (!t) return failed(ObjectError.NOT_AN_OBJECT);
  if (changetype<TypeRecord>(t).kind == Kind.DICT) return changetype<DictObject>(o).used;
  return referenceCount(o, changetype<TypeRecord>(t));
}

/** The borrowed reference in slot (or item) i: an address, 0 if empty, or FAILED. */
export function objectGetRef(o: usize, i: u32): usize {
  const t = liveObjectType(o);
  if (!t) return failed(ObjectError.NOT_AN_OBJECT);
  const tr = changetype<TypeRecord>(t);
  // A dict's references are reached by key (dictGetItem), not by index.
  if (tr.kind == Kind.DICT) return failed(ObjectError.WRONG_KIND);
  if (i >= referenceCount(o, tr)) return failed(ObjectError.INDEX);
  return load<usize>(referenceArray(o, tr) + (<usize>i << 2));
}

/** Stores an owned reference to v (0: empty) in slot (or item) i, releasing what it held. */
export function objectSetRef(o: usize, i: u32, v: usize): u32 {
  const t = liveObjectType(o);
  if (!t) return ObjectError.NOT_AN_OBJECT;
  if (v && !liveObjectType(v)) return ObjectError.BAD_VALUE;
  const tr = changetype<TypeRecord>(t);
  if (tr.kind == Kind.DICT) return ObjectError.WRONG_KIND;
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

// ───────────────────────────── dicts ─────────────────────────────

export function dictNew(): usize {
  return gcMade(allocateObject(typeRecord(Builtin.DICT), 0));
}

/** A dict with room for n entries before its first resize (_PyDict_NewPresized), or 0. */
export function dictNewPresized(n: u32): usize {
  const d = allocateObject(typeRecord(Builtin.DICT), 0);
  if (!d) return made(0);
  if (!presize(changetype<DictObject>(d), n)) {
    freeObject(d, typeRecord(Builtin.DICT)); // never counted nor tracked: no decref's bookkeeping
    return made(0);
  }
  return gcMade(d);
}

/** The status of a dict operation's arguments: OK, or why d or key cannot be used. */
function dictArguments(d: usize, key: usize): u32 {
  const t = liveObjectType(d);
  if (!t) return ObjectError.NOT_AN_OBJECT;
  if (changetype<TypeRecord>(t).kind != Kind.DICT) return ObjectError.WRONG_KIND;
  if (!liveObjectType(key)) return ObjectError.BAD_VALUE;
  return isKey(key) ? ObjectError.OK : ObjectError.UNHASHABLE;
}

/** d[key] = value (new references to both). */
export function dictSetItem(d: usize, key: usize, value: usize): u32 {
  const status = dictArguments(d, key);
  if (status != ObjectError.OK) return status;
  if (!liveObjectType(value)) return ObjectError.BAD_VALUE;
  return dictSet(changetype<DictObject>(d), key, value) ? ObjectError.OK : ObjectError.OUT_OF_MEMORY;
}

/** d[key]: the value (borrowed), 0 if the key is absent, or FAILED. */
export function dictGetItem(d: usize, key: usize): usize {
  const status = dictArguments(d, key);
  if (status != ObjectError.OK) return failed(status);
  return dictGet(changetype<DictObject>(d), key);
}

/** del d[key]: OK, or KEY if it is absent. */
export function dictDelItem(d: usize, key: usize): u32 {
  const status = dictArguments(d, key);
  if (status != ObjectError.OK) return status;
  return dictDelete(changetype<DictObject>(d), key) ? ObjectError.OK : ObjectError.KEY;
}

/**
 * Where d's entries are, for the host to read in order: IO[0] = entries appended (nentries),
 * and the address of the (key, value) pairs is returned (0 for a dict without a table), or
 * FAILED. A deleted entry reads (0, 0).
 */
export function dictEntriesOf(d: usize): usize {
  const t = liveObjectType(d);
  if (!t) return failed(ObjectError.NOT_AN_OBJECT);
  if (changetype<TypeRecord>(t).kind != Kind.DICT) return failed(ObjectError.WRONG_KIND);
  const keys = changetype<DictObject>(d).keys;
  store<u32>(IO, keys ? changetype<DictKeys>(keys).nentries : 0);
  return keys ? dictEntries(keys) : 0;
}

/**
 * d's table, for tests and introspection: IO[0] slots (0 without a table), IO[1] bytes per
 * index, IO[2] usable, IO[3] nentries, then IO[4 + i] = index slot i (EMPTY -1, DUMMY -2)
 * for the first IO_WORDS - 4 slots. OK, NOT_AN_OBJECT or WRONG_KIND.
 */
export function dictLayout(d: usize): u32 {
  const t = liveObjectType(d);
  if (!t) return ObjectError.NOT_AN_OBJECT;
  if (changetype<TypeRecord>(t).kind != Kind.DICT) return ObjectError.WRONG_KIND;
  const dict = changetype<DictObject>(d);
  memory.fill(IO, 0, 16);
  if (!dict.keys) return ObjectError.OK;
  const keys = changetype<DictKeys>(dict.keys);
  const size: u32 = 1 << keys.log2Size;
  store<u32>(IO, size);
  store<u32>(IO, 1 << (keys.log2IndexBytes - keys.log2Size), 4);
  store<u32>(IO, keys.usable, 8);
  store<u32>(IO, keys.nentries, 12);
  const shown = min(size, IO_WORDS - 4);
  for (let i: u32 = 0; i < shown; i++) store<i32>(IO + ((<usize>i + 4) << 2), dictIndexAt(dict, i));
  return ObjectError.OK;
}

// ───────────────────────────── floats, bools and None ─────────────────────────────

export function floatNew(value: f64): usize {
  return made(newFloat(value));
}

/** False or True (immortal), or 0 if out of memory. */
export function boolGet(value: bool): usize {
  return made(boolObject(value));
}

/** None (immortal), or 0 if out of memory. */
export function noneGet(): usize {
  return made(noneObject());
}

// ───────────────────────────── JSON graphs (heap/json.ts) ─────────────────────────────

/** A block of `bytes` for a tape, or 0; the host frees it with scratchFree. */
export function scratchAlloc(bytes: usize): usize {
  return rawAlloc(bytes, INTERNAL);
}

/** Frees a block scratchAlloc or jsonDump handed out. */
export function scratchFree(block: usize): void {
  rawFreeInternal(block);
}

/** The graph a build tape and its text describe (a new reference), or 0 (objectError says why). */
export function jsonBuild(tape: usize, words: u32, text: usize, textBytes: u32): usize {
  return buildGraph(tape, words, text, textBytes);
}

/** The graph of `bytes` bytes of JSON text (a new reference), or 0 (heap/json.ts, parseText). */
export function jsonParse(text: usize, bytes: usize): usize {
  return parseText(text, bytes);
}

/** o's graph as a dump tape and its text (heap/json.ts), or 0 with the object at fault in IO[0]. */
export function jsonDump(o: usize): usize {
  if (!liveObjectType(o)) {
    state().error = ObjectError.NOT_AN_OBJECT;
    return 0;
  }
  return dumpGraph(o);
}

/** o's graph as JSON text and its pending floats (heap/json.ts, dumpText), or 0 as jsonDump. */
export function jsonDumpText(o: usize): usize {
  if (!liveObjectType(o)) {
    state().error = ObjectError.NOT_AN_OBJECT;
    return 0;
  }
  return dumpText(o);
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
