// Dicts: CPython's compact dict (Objects/dictobject.c, 3.12), for str and int keys.
//
// A dict is a small object pointing at one keys block that holds both halves of the table,
// as CPython 3.6+ lays out a PyDictKeysObject: an index table, a power of two in size, whose
// slots are probed open-addressed by hash and hold positions in the entries array (or EMPTY,
// or DUMMY where a key was deleted), then the entries array itself, dense and in insertion
// order, of USABLE_FRACTION(size) (key, value) pairs. One block rather than two: a lookup
// touches both halves, a resize replaces both at once, and a small dict (up to 5 entries)
// costs one 64-byte block instead of two.
//
// ╒═══ dict (DICT) ═══╕   ╒════════════════ keys block (held by the dict) ════════════════╕
//  -8  GC header            +0   log2Size        u32   the index table has 1 << log2Size slots
//  +0  refcnt               +4   log2IndexBytes  u32   log2 of the index table's bytes
//  +4  type                 +8   usable          u32   entries that can still be appended
//  +8  used    u32          +12  nentries        u32   entries appended (deleted ones included)
//  +12 keys    usize ->     +16  indices  i8/i16/i32 x size: EMPTY (-1), DUMMY (-2) or an entry
//                           +..  entries  (key, value) x USABLE_FRACTION(size), usize each
// ╘═══════════════════╛   ╘═══════════════════════════════════════════════════════════════╛
// An index is 1 byte while the table has fewer than 2^8 slots, 2 below 2^16, else 4 (signed,
// so EMPTY and DUMMY fit each width). A deleted entry has key = value = 0; the collector
// and deallocation walk the entries as 2 x nentries references, skipping the empty ones.
//
// The hash is kept by the key, not the entry (CPython's str-keys layout, used here for int
// keys too): a str caches its own (objects/builtins.ts), an int's is computed from its value,
// as CPython's 32-bit build does (Py_hash_t and size_t are 32 bits on wasm32): |v| mod
// 2^31 - 1 with v's sign, -1 becoming -2.
//
// Rules, as dictobject.c has them:
//   USABLE_FRACTION(n) = 2n / 3: a table is never more than 2/3 full, so a probe always
//   meets an EMPTY slot.
//   probing: i = hash & mask, then perturb >>= 5 and i = (5i + perturb + 1) & mask until
//   the key or EMPTY is found; once perturb is 0 the recurrence visits every slot.
//   insertion appends an entry; a new key takes the first EMPTY or DUMMY slot of its probe.
//   When no entry is usable the table is rebuilt at calculate_log2_keysize(GROWTH_RATE),
//   GROWTH_RATE = used * 3 (so a dict shrinks after many deletions): entries compacted, in
//   order, every DUMMY gone. An empty dict has no keys block (CPython shares one empty
//   keys object); its first insertion makes a table of 8.
//   deletion writes DUMMY into the slot and empties the entry; usable and nentries stay.
//   Invariants (dictIsValid): usable + nentries == USABLE_FRACTION(size); live entries ==
//   used == slots holding an entry; every slot is EMPTY, DUMMY or an entry below nentries.
//
// A dict is tracked from birth (CPython untracks dicts of atomic values until a container
// is stored in them: an optimisation left out here).

import { Status, broken } from "../memory/header";
import { heldMalloc, blockStatus } from "../debug/hooks";
import {
  Kind, DictObject, DictKeys, dictEntries, typeOf, incref, decref, releaseHeld, walked,
  liveObjectType, ObjectLayerBroken,
} from "./object";
import { IntObject, strHash, strEquals } from "./builtins";

// @ts-ignore: decorator
@inline const EMPTY: i32 = -1;
// @ts-ignore: decorator
@inline const DUMMY: i32 = -2;
/** PyDict_LOG_MINSIZE: the smallest table has 8 slots. */
// @ts-ignore: decorator
@inline export const LOG_MINSIZE: u32 = 3;
// @ts-ignore: decorator
@inline const PERTURB_SHIFT: u32 = 5;
/** The largest table a dict can have (its keys block stays well below 2^32 bytes). */
// @ts-ignore: decorator
@inline const LOG_MAXSIZE: u32 = 26;
/** _PyDict_NewPresized never presizes beyond this (CPython's max_presize, 128 Ki slots). */
// @ts-ignore: decorator
@inline const LOG_MAX_PRESIZE: u32 = 17;
/** CPython's 32-bit _PyHASH_MODULUS. */
// @ts-ignore: decorator
@inline const HASH_MODULUS: u64 = 0x7fff_ffff;
// @ts-ignore: decorator
@inline const ENTRY_BYTES: usize = 8;

// @ts-ignore: decorator
@inline function usableFraction(size: u32): u32 {
  return (size << 1) / 3;
}

/** The smallest log2 of a table of at least minsize slots (and at least 8). */
function calculateLog2Keysize(minsize: u32): u32 {
  let log2 = LOG_MINSIZE;
  while (log2 < 31 && (<u32>1 << log2) < minsize) log2++;
  return log2;
}

// @ts-ignore: decorator
@inline function indexAt(keys: DictKeys, i: u32): i32 {
  const table = changetype<usize>(keys) + offsetof<DictKeys>();
  const width = keys.log2IndexBytes - keys.log2Size;
  if (width == 0) return <i32>load<i8>(table + i);
  if (width == 1) return <i32>load<i16>(table + (<usize>i << 1));
  return load<i32>(table + (<usize>i << 2));
}

// @ts-ignore: decorator
@inline function setIndex(keys: DictKeys, i: u32, ix: i32): void {
  const table = changetype<usize>(keys) + offsetof<DictKeys>();
  const width = keys.log2IndexBytes - keys.log2Size;
  if (width == 0) store<i8>(table + i, <i8>ix);
  else if (width == 1) store<i16>(table + (<usize>i << 1), <i16>ix);
  else store<i32>(table + (<usize>i << 2), ix);
}

// @ts-ignore: decorator
@inline function entryKey(keys: DictKeys, ix: u32): usize {
  return dictEntries(changetype<usize>(keys)) + <usize>ix * ENTRY_BYTES;
}

/** True iff o can be a key: a str or an int. */
// @ts-ignore: decorator
@inline export function isKey(o: usize): bool {
  const kind = typeOf(o).kind;
  return kind == Kind.STR || kind == Kind.INT;
}

/** hash(v) of an int, as a 32-bit CPython computes it. */
export function intHash(v: i64): u32 {
  const magnitude: u64 = v < 0 ? <u64>(-(v + 1)) + 1 : <u64>v;
  let h = <i32>(magnitude % HASH_MODULUS);
  if (v < 0) h = -h;
  return <u32>(h == -1 ? -2 : h);
}

/** The hash of a key (a str or an int). */
export function keyHash(key: usize): u32 {
  return typeOf(key).kind == Kind.STR ? strHash(key) : intHash(changetype<IntObject>(key).value);
}

/** Whether the stored key `stored` equals `key` of the given kind and hash. */
// @ts-ignore: decorator
@inline function keyEquals(stored: usize, key: usize, kind: u32, hash: u32): bool {
  if (stored == key) return true;
  if (typeOf(stored).kind != kind) return false;
  if (kind == Kind.INT) return changetype<IntObject>(stored).value == changetype<IntObject>(key).value;
  return strHash(stored) == hash && strEquals(stored, key);
}

/** The index-table slot holding `key`, or -1. */
function findSlot(keys: DictKeys, key: usize, hash: u32): i32 {
  const mask = (<u32>1 << keys.log2Size) - 1;
  const kind = typeOf(key).kind;
  const limit = mask + 8; // perturb is 0 after 7 shifts; from then on every slot is visited
  let i = hash & mask;
  let perturb = hash;
  let probes: u32 = 0;
  let ix: i32;
  while ((ix = indexAt(keys, i)) != EMPTY) {
    if (ix >= 0 && keyEquals(load<usize>(entryKey(keys, <u32>ix)), key, kind, hash)) return <i32>i;
    probes = walked(probes, limit, ObjectLayerBroken.DICT_TABLE, changetype<usize>(keys));
    perturb >>= PERTURB_SHIFT;
    i = (i * 5 + perturb + 1) & mask;
  }
  return -1;
}

/** find_empty_slot: the first EMPTY or DUMMY slot of the probe for hash (the key is known absent). */
function findFreeSlot(keys: DictKeys, hash: u32): u32 {
  const mask = (<u32>1 << keys.log2Size) - 1;
  const limit = mask + 8;
  let i = hash & mask;
  let perturb = hash;
  for (let probes: u32 = 0; indexAt(keys, i) >= 0; probes = walked(probes, limit, ObjectLayerBroken.DICT_TABLE, changetype<usize>(keys))) {
    perturb >>= PERTURB_SHIFT;
    i = (i * 5 + perturb + 1) & mask;
  }
  return i;
}

/** new_keys_object: an empty table of 1 << log2Size slots; 0 if out of memory. */
function newKeys(log2Size: u32): DictKeys | null {
  if (log2Size > LOG_MAXSIZE) return null;
  const log2IndexBytes = log2Size < 8 ? log2Size : log2Size < 16 ? log2Size + 1 : log2Size + 2;
  const usable = usableFraction(<u32>1 << log2Size);
  const block = heldMalloc(offsetof<DictKeys>() + (<usize>1 << log2IndexBytes) + <usize>usable * ENTRY_BYTES);
  if (!block) return null;
  const keys = changetype<DictKeys>(block);
  keys.log2Size = log2Size;
  keys.log2IndexBytes = log2IndexBytes;
  keys.usable = usable;
  keys.nentries = 0;
  memory.fill(block + offsetof<DictKeys>(), 0xff, <usize>1 << log2IndexBytes); // EMPTY in every width
  return keys;
}

/** dictresize: moves the live entries, in order, into a new table of 1 << log2Size slots. */
function resize(d: DictObject, log2Size: u32): bool {
  const fresh = newKeys(log2Size);
  if (!fresh) return false;
  const old = d.keys;
  if (old) {
    const oldKeys = changetype<DictKeys>(old);
    const from = dictEntries(old);
    const to = dictEntries(changetype<usize>(fresh));
    let n: u32 = 0;
    for (let ix: u32 = 0; ix < oldKeys.nentries; ix++) {
      const entry = from + <usize>ix * ENTRY_BYTES;
      const key = load<usize>(entry);
      if (!key) continue;
      store<usize>(to + <usize>n * ENTRY_BYTES, key);
      store<usize>(to + <usize>n * ENTRY_BYTES, load<usize>(entry, 4), 4);
      setIndex(fresh, findFreeSlot(fresh, keyHash(key)), <i32>n);
      n++;
    }
    fresh.usable -= n;
    fresh.nentries = n;
    releaseHeld(old);
  }
  d.keys = changetype<usize>(fresh);
  return true;
}

/** Appends an entry for key (known absent), taking over the references given; false if out of memory. */
function appendEntry(d: DictObject, key: usize, hash: u32, value: usize): bool {
  if (!d.keys || changetype<DictKeys>(d.keys).usable == 0) {
    if (!resize(d, calculateLog2Keysize(d.used * 3))) return false;
  }
  const keys = changetype<DictKeys>(d.keys);
  const ix = keys.nentries;
  setIndex(keys, findFreeSlot(keys, hash), <i32>ix);
  const entry = entryKey(keys, ix);
  store<usize>(entry, key);
  store<usize>(entry, value, 4);
  keys.nentries = ix + 1;
  keys.usable--;
  d.used++;
  return true;
}

// ───────────────────────────── operations ─────────────────────────────

/**
 * Gives a new dict (refcount 1, untracked) room for n entries without a resize, as
 * _PyDict_NewPresized does: no keys block up to USABLE_FRACTION(8) entries. 0 if out of memory.
 */
export function presize(d: DictObject, n: u32): bool {
  if (n <= usableFraction(<u32>1 << LOG_MINSIZE)) return true;
  const log2 = min(calculateLog2Keysize(<u32>((<u64>n * 3 + 1) >> 1)), LOG_MAX_PRESIZE);
  return resize(d, log2);
}

/** d[key]: the value (borrowed), or 0. The key is a str or an int. */
export function dictGet(d: DictObject, key: usize): usize {
  if (!d.keys) return 0;
  const keys = changetype<DictKeys>(d.keys);
  const slot = findSlot(keys, key, keyHash(key));
  return slot < 0 ? 0 : load<usize>(entryKey(keys, <u32>indexAt(keys, <u32>slot)), 4);
}

/**
 * d[key] = value, taking over a reference to each (the caller's, or one it has just added).
 * An existing key keeps its key object and drops the given one, and the old value is released.
 * False if out of memory, with both references still the caller's.
 */
export function dictSetOwned(d: DictObject, key: usize, value: usize): bool {
  const hash = keyHash(key);
  if (d.keys) {
    const keys = changetype<DictKeys>(d.keys);
    const slot = findSlot(keys, key, hash);
    if (slot >= 0) {
      const entry = entryKey(keys, <u32>indexAt(keys, <u32>slot));
      const old = load<usize>(entry, 4);
      store<usize>(entry, value, 4);
      // Released last: either may be the last reference, and its deallocation may run host code.
      decref(key);
      decref(old);
      return true;
    }
  }
  return appendEntry(d, key, hash, value);
}

/** d[key] = value, adding a reference to each; false if out of memory. */
export function dictSet(d: DictObject, key: usize, value: usize): bool {
  incref(key);
  incref(value);
  if (dictSetOwned(d, key, value)) return true;
  decref(key);
  decref(value);
  return false;
}

/** del d[key]: false if the key is absent. The slot becomes DUMMY and the entry empty. */
export function dictDelete(d: DictObject, key: usize): bool {
  if (!d.keys) return false;
  const keys = changetype<DictKeys>(d.keys);
  const slot = findSlot(keys, key, keyHash(key));
  if (slot < 0) return false;
  const entry = entryKey(keys, <u32>indexAt(keys, <u32>slot));
  setIndex(keys, <u32>slot, DUMMY);
  const oldKey = load<usize>(entry);
  const oldValue = load<usize>(entry, 4);
  store<usize>(entry, 0);
  store<usize>(entry, 0, 4);
  d.used--;
  decref(oldKey);
  decref(oldValue);
  return true;
}

/** The index-table slot i of d's table (EMPTY, DUMMY or an entry position); d has a keys block. */
export function dictIndexAt(d: DictObject, i: u32): i32 {
  return indexAt(changetype<DictKeys>(d.keys), i);
}

// ───────────────────────────── validation ─────────────────────────────

/** The invariants above, for the dict o: 0, or DICT_TABLE (the heap checker calls it). */
export function dictIsValid(o: usize): u32 {
  const d = changetype<DictObject>(o);
  if (!d.keys) return d.used ? broken(ObjectLayerBroken.DICT_TABLE, o) : ObjectLayerBroken.NONE;
  if (blockStatus(d.keys) != Status.OBJECT) return broken(ObjectLayerBroken.OBJECT_BLOCK, d.keys);
  const keys = changetype<DictKeys>(d.keys);
  const log2 = keys.log2Size;
  const expectedBytes = log2 < 8 ? log2 : log2 < 16 ? log2 + 1 : log2 + 2;
  if (log2 < LOG_MINSIZE || log2 > LOG_MAXSIZE || keys.log2IndexBytes != expectedBytes) {
    return broken(ObjectLayerBroken.DICT_TABLE, o);
  }
  const size = <u32>1 << log2;
  if (<u64>keys.usable + keys.nentries != usableFraction(size)) return broken(ObjectLayerBroken.DICT_TABLE, o);
  let live: u32 = 0;
  for (let ix: u32 = 0; ix < keys.nentries; ix++) {
    const entry = entryKey(keys, ix);
    const key = load<usize>(entry);
    if ((key == 0) != (load<usize>(entry, 4) == 0)) return broken(ObjectLayerBroken.DICT_TABLE, o);
    if (!key) continue;
    if (!liveObjectType(key) || !isKey(key)) return broken(ObjectLayerBroken.DICT_TABLE, o);
    live++;
  }
  let indexed: u32 = 0;
  for (let i: u32 = 0; i < size; i++) {
    const ix = indexAt(keys, i);
    if (ix == EMPTY || ix == DUMMY) continue;
    if (ix < 0 || <u32>ix >= keys.nentries || !load<usize>(entryKey(keys, <u32>ix))) return broken(ObjectLayerBroken.DICT_TABLE, o);
    indexed++;
  }
  if (live != d.used || indexed != d.used) return broken(ObjectLayerBroken.DICT_TABLE, o);
  return ObjectLayerBroken.NONE;
}
