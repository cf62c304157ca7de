// Objects: the object header, type records, reference counts, weak references, deallocation
// and the trashcan. The built-in kinds (builtins.ts) build on it; the collector
// (gc/collector.ts) sits above both.
//
// Glossary (adds to memory/header.ts):
//   object      what the host holds: a refcount and a type, then the object's own fields.
//               It is allocated as PyObject_Malloc would place it, through the debug
//               hooks (debug/hooks.ts) when they are on.
//   GC header   two words in front of an object whose type can take part in a cycle (any type
//               with references, a finalizer, or weak references: the GC_HEADER flag). The
//               block then starts at the GC header, and the object 8 bytes into it.
//   tracked     the object is on a generation list (gc/collector.ts); iff its GC header's
//               next != 0.
//   reference   a word of an object that holds another object's address, or 0 (empty).
//               Slots of a fixed type, items of a tuple or of a list's item array.
//   owned       a reference that has been counted in the target's refcount. The host owns
//               what newObject/newInt/... return; getRef hands out borrowed references.
//   immortal    refcount >= IMMORTAL (PEP 683): incref and decref leave it alone, and it is
//               never freed. Small ints and interned strings.
//   finalizer   a host function a type may have (tp_finalize, PEP 442): called with the object
//               intact, at most once per object (the FINALIZED flag), and it may resurrect it.
//   weak list   the weakref objects that refer to an object, doubly linked from a word of it.
//
// ╒═══════════════════ An object of a tracked type (block = object - 8) ═══════════════════╕
//  -8   next       usize   next GC header on the object's generation list; 0 iff untracked
//  -4   prev       usize   previous GC header | FINALIZED (1) | COLLECTING (2); during a
//                          collection it holds gc_refs << PREV_SHIFT instead of the address
//  >ob  refcnt     u32     references counted; IMMORTAL and above: immortal
//  +4   type       usize   the object's type record (below); 0 once the object is freed
//  +8   ...                fields of the kind: slots, items, data (builtins.ts draws them)
// ╘═════════════════════════════════════════════════════════════════════════════════════════╛
// An object without a GC header starts its block with refcnt. Every tracked object's GC
// header is 8-aligned, so the low three bits of a link are free for the flags.
// The free-threaded build puts OBJECT_PREFIX bytes (brc.ts draws them) between the GC header and
// the object, or at the start of the block: refcnt is then ob_ref_local, and every offset from
// the object is the same as here. Every refcount goes through incref/decref/refcnt below.
//
// ╒═══════════ Fixed object: type.kind == FIXED (host-defined, fixed slots + data) ═══════════╕
//  +0   refcnt, +4 type
//  +8   slots      usize x refSlots      owned references (0 = empty)
//  +..  weaklist   usize                 first weakref to the object (weakrefable types)
//  +..  data       dataBytes raw bytes,  8-aligned (dataOffset)
// ╘════════════════════════════════════════════════════════════════════════════════════════════╛
//
// ╒═════════════════ Type record (TYPE_BYTES each, in the type table) ═════════════════╕
//  +0   kind            u32   FIXED, TUPLE, LIST, INT, STR, WEAKREF, DICT, FLOAT, BOOL, NONE; 0 = unused
//  +4   flags           u32   GC_HEADER | TRACKED | FINALIZER
//  +8   refSlots        u32   slots of a fixed type
//  +12  basicSize       u32   bytes of the object without GC header and items
//  +16  dataOffset      u32   where a fixed type's raw data starts
//  +20  dataBytes       u32
//  +24  weaklistOffset  u32   where the weak list head is; 0: no weak references
//  +28  name            usize a str holding the type's name, owned by the type, in a heap that
//                             workers share (so that every instance can name it); else 0
// ╘═══════════════════════════════════════════════════════════════════════════════════╛
// The type table is one INTERNAL raw block of MAX_TYPES records, made by objectsInit; an
// object's type word is the address of its record, so checking that a word names a type is
// a subtraction and two compares.
//
// ╒════════════════ Object space (HEAP + OBJECT_SPACE_OFFSET, memory/header.ts) ══════════════╕
//  +0    generations    4 x Generation (16): generations 0, 1, 2 and the permanent one
//  +64   scratch lists  4 x GcHead (8): a collection's working lists (gc/collector.ts)
//  +96   stats          3 x GenerationStats (12)
//  +132  ObjectState    flags, the type table, the trashcan, interned strings, ...
//  -16   FtState        (from the end; free-threaded build) the thread table (objects/brc.ts)
// ╘═══════════════════════════════════════════════════════════════════════════════════════════╛
//
// Deallocation and the trashcan: when a refcount reaches zero the finalizer runs (if any and
// not yet run; a resurrected object stays), weak references are cleared (their callbacks
// run), the object is untracked, and then, Tricky: rather than releasing its references
// at once, which would recurse once per link of a chain, an object with a GC header is
// pushed on the delete-later list (linked through its GC header's next word, free now that
// it is untracked). Only the outermost deallocation drains the list, so the Wasm stack never
// holds more than one deallocation whatever the shape of the graph (CPython's trashcan
// does this past a depth of 50). Objects without a GC header hold no references and are
// freed at once.
//
// Held blocks: every object's block, and every block an object owns (a list's item array,
// gc.garbage), is marked HELD in pymalloc (pymalloc/obmalloc.ts), so the host's free() and
// realloc() refuse it and only this layer releases it. That also makes liveObjectType exact:
// an address is a live object iff it sits at its type's place in a held block whose type
// word names a type record and whose refcount is not zero (an owned array never holds a
// type record's address).
//
// Walks: every list this layer and the collector walk (generation lists, a collection's
// working lists, the trashcan, weak lists) holds live objects with a GC header, and
// ObjectState.gcObjects counts those. A walk that takes more steps than that has met a
// cycle in corrupted links: it stops with corrupt() naming the list, instead of hanging.
//
// Quarantine (debug build): a freed object is not given back at once. Its block is filled
// with DEAD bytes and parked, still held, on a ring of the last QUARANTINE_SLOTS freed
// objects (at most QUARANTINE_BYTES); the oldest is released when the ring is full. So a
// stale handle, one whose object died, is refused even when the program has allocated
// objects of the same size since (in the release build the block is reused at once, as
// CPython does, and a stale handle then names the new object), and a write through one is
// found when the block leaves the ring (or by check()).

import {
  HEAP, OBJECT_SPACE_OFFSET, OBJECT_SPACE_BYTES, CHECKED, FREE_THREADED, Status, corrupt, broken,
} from "../memory/header";
import { heldMalloc, heldFree, blockStatus, usableSize } from "../debug/hooks";
import { rawAlloc, INTERNAL } from "../raw/tlsf";
import {
  PREFIX_BYTES, FT_STATE, brcNew, brcImmortalize, brcRefcount, brcIncref, brcDecref, brcLend, brcMerge,
  queuedAfter, takeQueue, queuedCount, brcKeep,
} from "./brc";

// @ts-ignore: decorator
@external("env", "objectFinalize")
declare function hostFinalize(o: usize): void;
// @ts-ignore: decorator
@external("env", "weakrefCallback")
export declare function hostWeakrefCallback(wr: usize): void;
// @ts-ignore: decorator
@external("env", "weakrefDropped")
declare function hostWeakrefDropped(wr: usize): void;

/** Why an object operation failed; exports return it, or leave it in ObjectState.error. */
export const enum ObjectError {
  OK = 0,
  /** The address is not a live object. */
  NOT_AN_OBJECT = 1,
  /** The value to store is not a live object (nor 0). */
  BAD_VALUE = 2,
  /** The slot or item index is out of range. */
  INDEX = 3,
  /** The object's kind does not support the operation. */
  WRONG_KIND = 4,
  OUT_OF_MEMORY = 5,
  /** The type table is full. */
  TOO_MANY_TYPES = 6,
  /** A dict key that is neither a str nor an int (CPython would raise TypeError: unhashable). */
  UNHASHABLE = 7,
  /** A dict has no such key (KeyError). */
  KEY = 8,
  /** A graph written as JSON leads back to a container on its own path. */
  CYCLE = 9,
  /** JSON text that does not parse (heap/json.ts leaves where and why in the IO buffer). */
  SYNTAX = 10,
  /** Free-threaded build: the decref must run under the heap mutex (abi/objects.ts). */
  NEEDS_LOCK = 11,
}

/**
 * The invariants of this layer's lists that an operation (not only check()) can find broken;
 * src/heap/errors.ts names them. gc/collector.ts has the checker's codes.
 */
export const enum ObjectLayerBroken {
  NONE = 0,
  GC_LIST_WALK = 26,
  TRASHCAN_WALK = 27,
  WEAK_LIST_WALK = 28,
  INTERN_TABLE = 29,
  QUARANTINE = 30,
  OBJECT_BLOCK = 31,
  DICT_TABLE = 33,
  BRC_QUEUE = 34,
}

/** What a value-returning export returns on failure (no object lives at the top of memory). */
// @ts-ignore: decorator
@inline export const FAILED: usize = <usize>-1;

export const enum Kind {
  FIXED = 1,
  TUPLE = 2,
  LIST = 3,
  INT = 4,
  STR = 5,
  WEAKREF = 6,
  DICT = 7,
  FLOAT = 8,
  BOOL = 9,
  NONE = 10,
}

// Type flags.
/** Objects carry a GC header. */
// @ts-ignore: decorator
@inline export const GC_HEADER: u32 = 1;
/** Objects are tracked from birth: they can hold references. */
// @ts-ignore: decorator
@inline export const TRACKED: u32 = 2;
/** The host has a finalizer for the type. */
// @ts-ignore: decorator
@inline export const FINALIZER: u32 = 4;

// GC header flags, in the low bits of prev (and UNREACHABLE in next, during a collection).
// @ts-ignore: decorator
@inline export const FINALIZED: usize = 1;
// @ts-ignore: decorator
@inline export const COLLECTING: usize = 2;
// @ts-ignore: decorator
@inline export const PREV_SHIFT: usize = 2;
// @ts-ignore: decorator
@inline export const PREV_FLAGS: usize = (1 << PREV_SHIFT) - 1;
// @ts-ignore: decorator
@inline export const UNREACHABLE: usize = 1;

/** Refcounts from here up are immortal (PEP 683); small enough that gc_refs << 2 fits a word. */
// @ts-ignore: decorator
@inline export const IMMORTAL: u32 = 0x3fff_ffff;
// @ts-ignore: decorator
@inline export const MAX_TYPES: u32 = 256;
// @ts-ignore: decorator
@inline export const TYPE_SHIFT: u32 = 5;
// @ts-ignore: decorator
@inline export const TYPE_BYTES: usize = 1 << TYPE_SHIFT;
// @ts-ignore: decorator
@inline const QUARANTINE_SLOTS: u32 = 1024;
// @ts-ignore: decorator
@inline const QUARANTINE_BYTES: u32 = 1 << 20;
/** What a parked block is filled with (CPython's debug hooks use the same byte for dead memory). */
// @ts-ignore: decorator
@inline const DEAD: u8 = 0xdd;

@unmanaged export class GcHead {
  next: usize;
  prev: usize;
}

/** A generation: its list head (the shape of a GC header), threshold and count. */
@unmanaged export class Generation {
  next: usize;
  prev: usize;
  threshold: u32;
  count: u32;
}

@unmanaged export class GenerationStats {
  collections: u32;
  collected: u32;
  uncollectable: u32;
}

@unmanaged export class ObjectState {
  /** 1 once objectsInit has run. */
  ready: u32;
  /** Automatic collection is on (gc.enable). */
  enabled: u32;
  /** gc.set_debug flags. */
  debug: u32;
  /** A collection is running: no other may start (CPython's gcstate->collecting). */
  collecting: u32;
  /** Objects that survived a full collection, and those promoted to generation 2 since. */
  longLivedTotal: u32;
  longLivedPending: u32;
  typeTable: usize;
  typeCount: u32;
  /** The -5..256 cache: SMALL_INTS addresses, 0 until the int is first asked for. */
  smallInts: usize;
  /** Open-addressed table of interned strings: internMask + 1 addresses. */
  internTable: usize;
  internMask: u32;
  internCount: u32;
  /** The trashcan: GC headers of objects whose references are still to be released. */
  deleteLater: usize;
  deallocating: u32;
  /** gc.garbage: an array of garbageCount owned references (DEBUG_SAVEALL), 0 until needed. */
  garbage: usize;
  garbageCount: u32;
  garbageCapacity: u32;
  /** Objects the last deduction of a collection found unreachable (gc/collector.ts). */
  unreachableCount: u32;
  /** Why the last failing value-returning export failed (ObjectError). */
  error: u32;
  /** Live objects with a GC header (freed ones leave the count): the bound of every GC list. */
  gcObjects: u32;
  /** The quarantine ring (debug build): QUARANTINE_SLOTS blocks, 0 until the first is parked. */
  quarantine: usize;
  /** Ring index of the oldest parked block, how many are parked, and their bytes. */
  quarantineFirst: u32;
  quarantineCount: u32;
  quarantineBytes: u32;
  /** The singletons None, False and True (immortal), 0 until first asked for. */
  none: usize;
  falseObject: usize;
  trueObject: usize;
}

@unmanaged export class TypeRecord {
  kind: u32;
  flags: u32;
  refSlots: u32;
  basicSize: u32;
  dataOffset: u32;
  dataBytes: u32;
  weaklistOffset: u32;
  name: usize;
}

/** The head every object starts with. */
@unmanaged export class ObjectHead {
  refcnt: u32;
  type: usize;
}

@unmanaged export class WeakrefObject {
  refcnt: u32;
  type: usize;
  /** The referent (borrowed), 0 once cleared. */
  object: usize;
  /** Links of the referent's weak list. */
  prevRef: usize;
  nextRef: usize;
  /** Non-zero iff the host holds a callback for this weakref. */
  callback: u32;
}

/** Tuples and lists keep their length at the same offset. */
@unmanaged export class VarObject {
  refcnt: u32;
  type: usize;
  size: u32;
}

@unmanaged export class ListObject {
  refcnt: u32;
  type: usize;
  size: u32;
  allocated: u32;
  items: usize;
}

/** A dict (objects/dict.ts draws it and its keys block). */
@unmanaged export class DictObject {
  refcnt: u32;
  type: usize;
  /** Live entries: len(d) (CPython's ma_used). */
  used: u32;
  /** The keys block, held by the dict; 0 while the dict has never held an entry. */
  keys: usize;
}

/** The head of a dict's keys block: the index table and the entries follow it. */
@unmanaged export class DictKeys {
  log2Size: u32;
  log2IndexBytes: u32;
  /** Entries that can still be appended before the table must grow (dk_usable). */
  usable: u32;
  /** Entries appended so far, deleted ones included (dk_nentries). */
  nentries: u32;
}

/** The entries array of a keys block: (key, value) pairs, after the index table. */
// @ts-ignore: decorator
@inline export function dictEntries(keys: usize): usize {
  return keys + offsetof<DictKeys>() + (<usize>1 << changetype<DictKeys>(keys).log2IndexBytes);
}

// @ts-ignore: decorator
@inline export const GC_HEADER_BYTES: usize = offsetof<GcHead>();
/** The free-threaded header's fields in front of the object (brc.ts); none in the other builds. */
// @ts-ignore: decorator
@inline export const OBJECT_PREFIX: usize = FREE_THREADED ? PREFIX_BYTES : 0;
// @ts-ignore: decorator
@inline export const FIXED_SLOTS: usize = offsetof<ObjectHead>();
// @ts-ignore: decorator
@inline export const TUPLE_ITEMS: usize = offsetof<VarObject>();

// @ts-ignore: decorator
@inline const GENERATIONS: usize = HEAP + OBJECT_SPACE_OFFSET;
// @ts-ignore: decorator
@inline export const NUM_GENERATIONS: u32 = 3;
// @ts-ignore: decorator
@inline export const PERMANENT: u32 = 3;
// @ts-ignore: decorator
@inline const SCRATCH: usize = GENERATIONS + (NUM_GENERATIONS + 1) * offsetof<Generation>();
// @ts-ignore: decorator
@inline const SCRATCH_LISTS: u32 = 4;
// @ts-ignore: decorator
@inline const STATS: usize = SCRATCH + <usize>SCRATCH_LISTS * offsetof<GcHead>();
// @ts-ignore: decorator
@inline const STATE: usize = STATS + NUM_GENERATIONS * offsetof<GenerationStats>();

// @ts-ignore: decorator
@inline export function state(): ObjectState {
  return changetype<ObjectState>(STATE);
}

/** Generation g (0..2), or the permanent generation (PERMANENT). */
// @ts-ignore: decorator
@inline export function generation(g: u32): Generation {
  return changetype<Generation>(GENERATIONS + <usize>g * offsetof<Generation>());
}

/** Scratch list i (0..3), for a collection's working sets. */
// @ts-ignore: decorator
@inline export function scratchList(i: u32): GcHead {
  return changetype<GcHead>(SCRATCH + <usize>i * offsetof<GcHead>());
}

// @ts-ignore: decorator
@inline export function generationStats(g: u32): GenerationStats {
  return changetype<GenerationStats>(STATS + <usize>g * offsetof<GenerationStats>());
}

// @ts-ignore: decorator
@inline export function typeOf(o: usize): TypeRecord {
  return changetype<TypeRecord>(load<usize>(o, offsetof<ObjectHead>("type")));
}

// @ts-ignore: decorator
@inline export function gcHead(o: usize): GcHead {
  return changetype<GcHead>(FREE_THREADED ? o - OBJECT_PREFIX - GC_HEADER_BYTES : o - GC_HEADER_BYTES);
}

// @ts-ignore: decorator
@inline export function objectOfHead(gc: usize): usize {
  return FREE_THREADED ? gc + GC_HEADER_BYTES + OBJECT_PREFIX : gc + GC_HEADER_BYTES;
}

/** The start of the block under an object of type t. */
// @ts-ignore: decorator
@inline export function blockOf(o: usize, t: TypeRecord): usize {
  if (FREE_THREADED) return t.flags & GC_HEADER ? o - OBJECT_PREFIX - GC_HEADER_BYTES : o - OBJECT_PREFIX;
  return t.flags & GC_HEADER ? o - GC_HEADER_BYTES : o;
}

// @ts-ignore: decorator
@inline export function refcnt(o: usize): u32 {
  if (FREE_THREADED) return brcRefcount(o, IMMORTAL);
  return load<u32>(o);
}

/** Makes o immortal (small ints, interned strings). */
// @ts-ignore: decorator
@inline export function immortalize(o: usize): void {
  if (FREE_THREADED) brcImmortalize(o);
  else store<u32>(o, IMMORTAL);
}

/** True iff o may be (or become) part of a cycle: a GC object, and a tracked one if a tuple. */
// @ts-ignore: decorator
@inline export function mayBeTracked(o: usize): bool {
  const t = typeOf(o);
  if (!(t.flags & GC_HEADER)) return false;
  return t.kind != Kind.TUPLE || gcHead(o).next != 0;
}

/** The address of the object's first reference (its slots or items). */
// @ts-ignore: decorator
@inline export function referenceArray(o: usize, t: TypeRecord): usize {
  if (t.kind == Kind.LIST) return changetype<ListObject>(o).items;
  if (t.kind == Kind.DICT) {
    const keys = changetype<DictObject>(o).keys;
    return keys ? dictEntries(keys) : 0;
  }
  return o + (t.kind == Kind.TUPLE ? TUPLE_ITEMS : FIXED_SLOTS);
}

/**
 * How many references the object has room for: slots, the items of a tuple or list, or a
 * dict's keys and values (two per entry, deleted entries holding two empty references).
 */
// @ts-ignore: decorator
@inline export function referenceCount(o: usize, t: TypeRecord): u32 {
  if (t.kind == Kind.TUPLE || t.kind == Kind.LIST) return changetype<VarObject>(o).size;
  if (t.kind == Kind.DICT) {
    const keys = changetype<DictObject>(o).keys;
    return keys ? changetype<DictKeys>(keys).nentries << 1 : 0;
  }
  return t.refSlots;
}

/** The block a list (its items) or a dict (its keys block) holds beside itself, or 0. */
// @ts-ignore: decorator
@inline export function ownedBlock(o: usize, t: TypeRecord): usize {
  if (t.kind == Kind.LIST) return changetype<ListObject>(o).items;
  if (t.kind == Kind.DICT) return changetype<DictObject>(o).keys;
  return 0;
}

// ───────────────────────────── type records ─────────────────────────────

// @ts-ignore: decorator
@inline export function typeRecord(index: u32): TypeRecord {
  return changetype<TypeRecord>(state().typeTable + (<usize>index << TYPE_SHIFT));
}

/** True iff t is the address of a defined type record. */
// @ts-ignore: decorator
@inline export function typeIsValid(t: usize): bool {
  const st = state();
  const offset = t - st.typeTable;
  return offset < (<usize>st.typeCount << TYPE_SHIFT) && (offset & (TYPE_BYTES - 1)) == 0;
}

/** Bytes of the fields after the head, for the kinds whose fields are not host-defined. */
function kindFieldBytes(kind: u32): u32 {
  switch (kind) {
    case Kind.TUPLE: return <u32>offsetof<VarObject>() - <u32>FIXED_SLOTS;
    case Kind.LIST: return <u32>offsetof<ListObject>() - <u32>FIXED_SLOTS;
    case Kind.INT: return 8;
    case Kind.STR: return 8;
    case Kind.DICT: return <u32>offsetof<DictObject>() - <u32>FIXED_SLOTS;
    case Kind.FLOAT: return 8;
    case Kind.BOOL: return 8;
    case Kind.NONE: return 0;
    default: return <u32>offsetof<WeakrefObject>() - <u32>FIXED_SLOTS;
  }
}

/**
 * Adds a type record; returns its address, or 0 (state.error says why). Fixed types get a
 * GC header when they can hold references, have a finalizer or can be weakly referenced;
 * tuples, lists, dicts and weakrefs always have one; ints, strings, floats, bools and None never.
 */
export function defineType(kind: u32, refSlots: u32, dataBytes: u32, finalizer: bool, weakrefable: bool, name: usize): usize {
  const st = state();
  if (st.typeCount >= MAX_TYPES) {
    st.error = ObjectError.TOO_MANY_TYPES;
    return 0;
  }
  const t = typeRecord(st.typeCount++);
  t.kind = kind;
  t.name = name;
  t.weaklistOffset = 0;
  let flags: u32 = finalizer ? FINALIZER : 0;
  let size = <u32>FIXED_SLOTS;
  if (kind == Kind.FIXED) {
    t.refSlots = refSlots;
    size += refSlots << 2;
    if (refSlots) flags |= GC_HEADER | TRACKED;
    if (weakrefable) {
      t.weaklistOffset = size;
      size += 4;
    }
    t.dataBytes = dataBytes;
  } else {
    t.refSlots = 0;
    t.dataBytes = kindFieldBytes(kind);
    if (kind == Kind.TUPLE || kind == Kind.LIST || kind == Kind.WEAKREF || kind == Kind.DICT) flags |= GC_HEADER | TRACKED;
  }
  if (flags & FINALIZER || t.weaklistOffset) flags |= GC_HEADER;
  t.flags = flags;
  t.dataOffset = kind == Kind.FIXED ? (size + 7) & ~7 : size;
  t.basicSize = t.dataOffset + t.dataBytes;
  return changetype<usize>(t);
}

// ───────────────────────────── validation ─────────────────────────────

/**
 * The type of the live object at p, or 0 when p is not one. O(1) and exact: the type word
 * must name a type record, the block under the object must be held (blockStatus), and the
 * refcount must be non-zero (zero: the object is being deallocated).
 */
export function liveObjectType(p: usize): usize {
  if ((p & 3) != 0 || p < GC_HEADER_BYTES + OBJECT_PREFIX || p > (<usize>memory.size() << 16) - offsetof<ObjectHead>()) {
    return 0;
  }
  const t = load<usize>(p, offsetof<ObjectHead>("type"));
  if (!typeIsValid(t)) return 0;
  if (blockStatus(blockOf(p, changetype<TypeRecord>(t))) != Status.OBJECT || !refcnt(p)) return 0;
  return t;
}

/** Frees a block this layer holds (an object's, or an owned array); 0 is nothing. */
export function releaseHeld(block: usize): void {
  if (block && heldFree(block) != Status.OK) corrupt(ObjectLayerBroken.OBJECT_BLOCK, block);
}

/** A walk's step counter: corrupt(code) once it passes `limit` (see "Walks" above). */
// @ts-ignore: decorator
@inline export function walked(steps: u32, limit: u32, code: u32, at: usize): u32 {
  if (steps >= limit) corrupt(code, at);
  return steps + 1;
}

// ───────────────────────────── GC lists ─────────────────────────────
// A list is circular through a head of GcHead shape; empty iff head.next == head. prev words
// keep their flag bits across every operation here.

// @ts-ignore: decorator
@inline export function listInit(head: GcHead): void {
  head.next = changetype<usize>(head);
  head.prev = changetype<usize>(head);
}

// @ts-ignore: decorator
@inline export function listIsEmpty(head: GcHead): bool {
  return head.next == changetype<usize>(head);
}

// @ts-ignore: decorator
@inline export function setPrev(node: GcHead, prev: usize): void {
  node.prev = (node.prev & PREV_FLAGS) | prev;
}

// @ts-ignore: decorator
@inline export function prevOf(node: GcHead): GcHead {
  return changetype<GcHead>(node.prev & ~PREV_FLAGS);
}

export function listAppend(node: GcHead, head: GcHead): void {
  const last = head.prev;
  changetype<GcHead>(last).next = changetype<usize>(node);
  setPrev(node, last);
  node.next = changetype<usize>(head);
  head.prev = changetype<usize>(node);
}

/** Unlinks node, leaving it untracked (next = 0). */
export function listRemove(node: GcHead): void {
  const prev = prevOf(node);
  const next = changetype<GcHead>(node.next);
  prev.next = changetype<usize>(next);
  setPrev(next, changetype<usize>(prev));
  node.next = 0;
}

export function listMove(node: GcHead, head: GcHead): void {
  listRemove(node);
  listAppend(node, head);
}

/** Appends every node of `from` to `to`; `from` is left empty. */
export function listMerge(from: GcHead, to: GcHead): void {
  if (listIsEmpty(from)) return;
  const toLast = changetype<GcHead>(to.prev);
  const first = changetype<GcHead>(from.next);
  const last = changetype<GcHead>(from.prev);
  toLast.next = changetype<usize>(first);
  setPrev(first, changetype<usize>(toLast));
  last.next = changetype<usize>(to);
  to.prev = changetype<usize>(last);
  listInit(from);
}

export function listSize(head: GcHead): u32 {
  const limit = state().gcObjects;
  let n: u32 = 0;
  for (let gc = head.next; gc != changetype<usize>(head); gc = changetype<GcHead>(gc).next) {
    n = walked(n, limit, ObjectLayerBroken.GC_LIST_WALK, gc);
  }
  return n;
}

/** Tracks the object: it joins generation 0. */
// @ts-ignore: decorator
@inline export function track(o: usize): void {
  listAppend(gcHead(o), changetype<GcHead>(generation(0)));
}

export function untrack(o: usize): void {
  const gc = gcHead(o);
  listRemove(gc);
  gc.prev &= FINALIZED;
}

// ───────────────────────────── reference counting ─────────────────────────────

// @ts-ignore: decorator
@inline export function incref(o: usize): void {
  if (FREE_THREADED) {
    brcIncref(o);
    return;
  }
  const rc = load<u32>(o);
  if (rc < IMMORTAL) store<u32>(o, rc + 1);
}

/**
 * Not @inline: deallocation decrefs in turn, and Binaryen inlines it where that pays. In the
 * free-threaded build, the whole rule of brc.ts: the caller holds the heap mutex.
 */
export function decref(o: usize): void {
  if (FREE_THREADED) {
    if (brcDecref(o)) deallocate(o);
    return;
  }
  const rc = load<u32>(o);
  if (rc >= IMMORTAL) return;
  store<u32>(o, rc - 1);
  if (rc == 1) deallocate(o);
}

export function xdecref(o: usize): void {
  if (o) decref(o);
}

/** Runs the finalizer of a type that has one, once per object (PEP 442). */
export function finalizeOnce(o: usize): void {
  const gc = gcHead(o);
  if (gc.prev & FINALIZED) return;
  gc.prev |= FINALIZED;
  hostFinalize(o);
}

/** Clears every weak reference to o; with callbacks, runs those the host registered. */
export function clearWeakrefs(o: usize, t: TypeRecord, callbacks: bool): void {
  const head = o + t.weaklistOffset;
  const limit = state().gcObjects;
  let steps: u32 = 0;
  let wr: usize;
  while ((wr = load<usize>(head)) != 0) {
    steps = walked(steps, limit, ObjectLayerBroken.WEAK_LIST_WALK, o);
    const ref = changetype<WeakrefObject>(wr);
    store<usize>(head, ref.nextRef);
    if (ref.nextRef) changetype<WeakrefObject>(ref.nextRef).prevRef = 0;
    ref.object = 0;
    ref.nextRef = 0;
    if (callbacks && ref.callback) {
      incref(wr);
      hostWeakrefCallback(wr);
      decref(wr);
    }
  }
}

/** Unlinks a weakref from its referent's weak list, if it is still on one. */
export function weakrefUnlink(ref: WeakrefObject): void {
  const o = ref.object;
  if (!o) return;
  if (ref.prevRef) changetype<WeakrefObject>(ref.prevRef).nextRef = ref.nextRef;
  else store<usize>(o + typeOf(o).weaklistOffset, ref.nextRef);
  if (ref.nextRef) changetype<WeakrefObject>(ref.nextRef).prevRef = ref.prevRef;
  ref.object = 0;
  ref.prevRef = 0;
  ref.nextRef = 0;
}

/** Forgets a weakref's callback, telling the host it can let the function go. */
export function weakrefDropCallback(ref: WeakrefObject): void {
  if (!ref.callback) return;
  ref.callback = 0;
  hostWeakrefDropped(changetype<usize>(ref));
}

/**
 * The refcount of o just reached zero (o was not immortal): finalize, clear weak references,
 * untrack and free, releasing o's references through the trashcan (see the top of the file).
 */
export function deallocate(o: usize): void {
  const t = typeOf(o);
  if (t.flags & FINALIZER && !(gcHead(o).prev & FINALIZED)) {
    // Finalized with a reference lent for the call, as CPython does; the finalizer may
    // keep that reference (resurrection), and then o stays.
    if (FREE_THREADED) brcLend(o);
    else store<u32>(o, 1);
    finalizeOnce(o);
    if (load<usize>(o, offsetof<ObjectHead>("type")) != changetype<usize>(t)) return; // it freed o itself
    if (FREE_THREADED) {
      if (!brcDecref(o)) return;
    } else {
      const left = load<u32>(o) - 1;
      store<u32>(o, left);
      if (left) return;
    }
  }
  if (!(t.flags & GC_HEADER)) {
    freeObject(o, t); // no GC header: no references, no finalizer, no weak list
    return;
  }
  // Untracked before any callback runs: a collection started by one must not find o.
  const gc = gcHead(o);
  if (gc.next) untrack(o);
  const gen0 = generation(0);
  if (gen0.count) gen0.count--;
  if (t.weaklistOffset && load<usize>(o + t.weaklistOffset)) clearWeakrefs(o, t, true);
  const st = state();
  gc.next = st.deleteLater;
  st.deleteLater = changetype<usize>(gc);
  if (!st.deallocating) drainDeleteLater();
}

/** Releases the references of every object on the delete-later list, and frees them. */
function drainDeleteLater(): void {
  const st = state();
  st.deallocating = 1;
  let gc: usize;
  while ((gc = st.deleteLater) != 0) {
    // Each node is a GC object not yet freed, so it is counted and names a type: a link
    // that leads back to a freed one (type word 0) or past the count is corrupt.
    if (!st.gcObjects || !typeIsValid(load<usize>(objectOfHead(gc), offsetof<ObjectHead>("type")))) {
      corrupt(ObjectLayerBroken.TRASHCAN_WALK, gc);
    }
    st.deleteLater = changetype<GcHead>(gc).next;
    const o = objectOfHead(gc);
    const t = typeOf(o);
    if (t.kind == Kind.WEAKREF) {
      const ref = changetype<WeakrefObject>(o);
      weakrefUnlink(ref);
      weakrefDropCallback(ref);
    } else {
      const refs = referenceArray(o, t);
      const n = referenceCount(o, t);
      for (let i: u32 = 0; i < n; i++) xdecref(load<usize>(refs + (<usize>i << 2)));
      releaseHeld(ownedBlock(o, t));
    }
    freeObject(o, t);
  }
  st.deallocating = 0;
}

/**
 * The free-threaded build's merge (brc.ts): the owner of thread `id`'s queue, or the thread that
 * took over the slot of a dead one, folds each queued object's counts and the reference the
 * queue held, deallocating those that reach 0 (with `keep`, the world stopped: keeping them for
 * after the pause, brcKeep). Under the heap mutex. Returns how many were merged.
 */
export function mergeQueue(id: u32, keep: bool = false): u32 {
  const count = queuedCount(id);
  let o = takeQueue(id);
  let steps: u32 = 0;
  while (o) {
    steps = walked(steps, count, ObjectLayerBroken.BRC_QUEUE, o);
    const next = queuedAfter(o);
    if (brcMerge(o, -1) == 0) {
      if (keep) brcKeep(o);
      else deallocate(o);
    }
    o = next;
  }
  return steps;
}

/**
 * Gives the object's memory back (the debug build parks it in the quarantine first); its type
 * word is zeroed first so the address stops validating.
 */
export function freeObject(o: usize, t: TypeRecord): void {
  store<usize>(o, 0, offsetof<ObjectHead>("type"));
  let block = o;
  if (FREE_THREADED) block = blockOf(o, t);
  if (t.flags & GC_HEADER) {
    if (!FREE_THREADED) block = o - GC_HEADER_BYTES;
    state().gcObjects--;
  }
  if (CHECKED) quarantine(block);
  else releaseHeld(block);
}

// @ts-ignore: decorator
@inline function quarantineSlot(i: u32): usize {
  return state().quarantine + (<usize>(i % QUARANTINE_SLOTS) << 2);
}

/** Parks a dead object's block (debug build), releasing the oldest parked ones past the bounds. */
function quarantine(block: usize): void {
  const st = state();
  if (!st.quarantine) {
    const ring = rawAlloc(<usize>QUARANTINE_SLOTS << 2, INTERNAL);
    if (!ring) {
      releaseHeld(block);
      return;
    }
    st.quarantine = ring;
  }
  const bytes = <u32>usableSize(block);
  memory.fill(block, DEAD, bytes);
  while (st.quarantineCount && (st.quarantineCount == QUARANTINE_SLOTS || st.quarantineBytes + bytes > QUARANTINE_BYTES)) {
    releaseOldestParked();
  }
  store<usize>(quarantineSlot(st.quarantineFirst + st.quarantineCount), block);
  st.quarantineCount++;
  st.quarantineBytes += bytes;
}

/** Releases the oldest parked block; one written to while parked is a use after free. */
function releaseOldestParked(): void {
  const st = state();
  const block = load<usize>(quarantineSlot(st.quarantineFirst));
  if (!parkedIsIntact(block)) corrupt(ObjectLayerBroken.QUARANTINE, block);
  st.quarantineFirst = (st.quarantineFirst + 1) % QUARANTINE_SLOTS;
  st.quarantineCount--;
  st.quarantineBytes -= <u32>usableSize(block);
  releaseHeld(block);
}

/** True iff block is held and still DEAD all through. */
function parkedIsIntact(block: usize): bool {
  if (blockStatus(block) != Status.OBJECT) return false;
  const end = block + usableSize(block);
  const dead: u32 = <u32>DEAD * 0x01010101;
  let p = block;
  for (; p + 4 <= end; p += 4) {
    if (load<u32>(p) != dead) return false;
  }
  // Under the debug hooks a block holds exactly what was asked for: any multiple of 1.
  for (; p < end; p++) {
    if (load<u8>(p) != DEAD) return false;
  }
  return true;
}

/** The quarantine (debug build): every parked block held, DEAD, and the counters right. */
export function quarantineIsValid(): u32 {
  const st = state();
  if (st.quarantineCount > QUARANTINE_SLOTS) return broken(ObjectLayerBroken.QUARANTINE, st.quarantine);
  let bytes: u32 = 0;
  for (let i: u32 = 0; i < st.quarantineCount; i++) {
    const block = load<usize>(quarantineSlot(st.quarantineFirst + i));
    if (!parkedIsIntact(block)) return broken(ObjectLayerBroken.QUARANTINE, block);
    bytes += <u32>usableSize(block);
  }
  if (bytes != st.quarantineBytes) return broken(ObjectLayerBroken.QUARANTINE, st.quarantine);
  return ObjectLayerBroken.NONE;
}

/**
 * tp_clear: empties every reference of o (a weakref forgets its referent and callback), so
 * that a cycle through o is broken. The references are released after o is emptied.
 */
export function clearReferences(o: usize): void {
  const t = typeOf(o);
  if (t.kind == Kind.WEAKREF) {
    const ref = changetype<WeakrefObject>(o);
    weakrefUnlink(ref);
    weakrefDropCallback(ref);
    return;
  }
  if (t.kind == Kind.LIST || t.kind == Kind.DICT) {
    // Emptied before the references go: a finalizer they run may look at o.
    const block = ownedBlock(o, t);
    const items = referenceArray(o, t);
    const n = referenceCount(o, t);
    if (t.kind == Kind.LIST) {
      const list = changetype<ListObject>(o);
      list.items = 0;
      list.size = 0;
      list.allocated = 0;
    } else {
      changetype<DictObject>(o).keys = 0;
      changetype<DictObject>(o).used = 0;
    }
    for (let i: u32 = 0; i < n; i++) xdecref(load<usize>(items + (<usize>i << 2)));
    releaseHeld(block);
    return;
  }
  const refs = referenceArray(o, t);
  const n = referenceCount(o, t);
  for (let i: u32 = 0; i < n; i++) {
    const slot = refs + (<usize>i << 2);
    const value = load<usize>(slot);
    if (!value) continue;
    store<usize>(slot, 0);
    decref(value);
  }
}

// ───────────────────────────── allocation ─────────────────────────────

/**
 * A new object of type t with `extra` bytes after its basic size, zeroed, refcount 1 and
 * untracked; 0 if memory cannot be had. Allocation accounting is the collector's (gc/collector.ts).
 */
export function allocateObject(t: TypeRecord, extra: usize): usize {
  const bytes = <usize>t.basicSize + extra;
  const gcBytes = t.flags & GC_HEADER ? GC_HEADER_BYTES : 0;
  const header = FREE_THREADED ? gcBytes + OBJECT_PREFIX : gcBytes;
  const block = heldMalloc(bytes + header);
  if (!block) return 0;
  if (gcBytes) state().gcObjects++;
  memory.fill(block, 0, bytes + header);
  const o = block + header;
  if (FREE_THREADED) brcNew(o);
  else store<u32>(o, 1);
  store<usize>(o, changetype<usize>(t), offsetof<ObjectHead>("type"));
  return o;
}

/** Sets the object space up: generations, thresholds and the type table. False if out of memory. */
export function objectsInit(): bool {
  const st = state();
  if (st.ready) return true;
  if (CHECKED) assert(STATE + offsetof<ObjectState>() <= HEAP + OBJECT_SPACE_OFFSET + OBJECT_SPACE_BYTES); // fits its reservation
  if (CHECKED && FREE_THREADED) assert(STATE + offsetof<ObjectState>() <= FT_STATE); // ends before the free-threaded state
  const table = rawAlloc(<usize>MAX_TYPES << TYPE_SHIFT, INTERNAL);
  if (!table) return false;
  memory.fill(table, 0, <usize>MAX_TYPES << TYPE_SHIFT);
  st.typeTable = table;
  for (let g: u32 = 0; g <= PERMANENT; g++) listInit(changetype<GcHead>(generation(g)));
  for (let i: u32 = 0; i < SCRATCH_LISTS; i++) listInit(scratchList(i));
  generation(0).threshold = 700;
  generation(1).threshold = 10;
  generation(2).threshold = 10;
  st.enabled = 1;
  // The built-in types, at the indices builtins.ts names them by.
  defineType(Kind.INT, 0, 0, false, false, 0);
  defineType(Kind.STR, 0, 0, false, false, 0);
  defineType(Kind.TUPLE, 0, 0, false, false, 0);
  defineType(Kind.LIST, 0, 0, false, false, 0);
  defineType(Kind.WEAKREF, 0, 0, false, false, 0);
  defineType(Kind.DICT, 0, 0, false, false, 0);
  defineType(Kind.FLOAT, 0, 0, false, false, 0);
  defineType(Kind.BOOL, 0, 0, false, false, 0);
  defineType(Kind.NONE, 0, 0, false, false, 0);
  st.ready = 1;
  return true;
}
