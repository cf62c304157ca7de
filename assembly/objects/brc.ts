// Biased reference counting: the free-threaded build's object header prefix, its counting rules
// and the table of threads (docs/free-threaded.md; CPython's Include/refcount.h, Objects/object.c
// and Python/brc.c, summed up in REFERENCE.md section 11). Nothing here is compiled into the
// other builds: object.ts calls it only behind `if (FREE_THREADED)`.
//
// Glossary (adds to object.ts):
//   thread      an attachment of the shared heap: one instance of the core in one worker.
//   tid         a thread's id: serial << ID_BITS | attachment id, never reused in a heap's life.
//   owner       the thread whose tid is in ob_tid; it alone touches ob_ref_local.
//   merged      local count folded into the shared one (ob_tid 0, flags MERGED): every thread
//               then counts through ob_ref_shared.
//   abandoned   owned by a thread that has detached (table[tid & ID_MASK].tid != tid).
//   queued      handed to the owner to merge (flags QUEUED, on its queue): a non-owner dropped a
//               reference when the shared count was 0; the queue holds that reference.
//
// ╒════════════ The free-threaded object prefix (the object's address is o) ════════════╕
//  -16  ob_tid         u32   the owner's tid; 0: unowned (immortal, or merged)
//  -12  ob_flags u16, ob_mutex u8, ob_gc_bits u8: CPython's, kept and 0 for now
//  -8   ob_ref_shared  i32   count << 2 | flags (INIT 0, MAYBE_WEAKREF 1, QUEUED 2, MERGED 3);
//                            the count may be negative
//  -4   ob_brc_next    usize next object on the owner's merge queue (while queued)
//  +0   ob_ref_local   u32   the owner's count; IMMORTAL_LOCAL: immortal
//  +4   ob_type        usize (object.ts)
// ╘══════════════════════════════════════════════════════════════════════════════════════╛
// refcount = ob_ref_local + (ob_ref_shared >> 2), as sys.getrefcount reports it in 3.13t (a
// queued reference still counts until the owner merges it).
//
// ThreadState (THREAD_BYTES, table[id] for attachment ids 1..MAX_THREADS) is drawn in
// memory/header.ts, since the allocator keeps its part of a thread there too; here:
//  +0   tid      the attached thread's tid; 0 while the slot is free
//  +4   queue    the first object queued to this thread, linked through ob_brc_next; 0: none
//  +8   queued   how many objects are on the queue
//  +16  state    DETACHED 0 / ATTACHED 1: written and read by the host only, with Atomics (the
//                stop-the-world protocol, src/heap/shared.ts); the core never touches it
// The table is one INTERNAL raw block, 64-aligned, made by the first threadAttach; FtState, in
// the last FT_STATE_BYTES of the object space (object.ts checks that ObjectState ends before),
// holds its address and the attachment serial, and the objects a merge with the world stopped kept.
//
// Who does what: the counting rules below that change only ob_ref_local, or ob_ref_shared by one
// compare-and-swap, run lock-free in any thread (objectIncref/objectDecref, abi/objects.ts);
// every rule that queues or merges runs under the heap mutex (src/heap/shared.ts), so the queues
// are plain lists. A merge writes ob_ref_local, which is only safe from its owner, or from anyone
// once the owner has gone: merges run in the owner (its queue, its last local reference) or on
// abandoned objects.

import {
  CHECKED, FT_STATE, THREAD_BYTES, THREAD_POOLS, THREAD_STATE, THREAD_ID_MASK, MAX_THREADS, setCurrentThread,
} from "../memory/header";
import { rawAllocAligned } from "../raw/tlsf";
import { abandonPools, attachPools, detachPools } from "../pymalloc/obmalloc";

// @ts-ignore: decorator
@inline export const PREFIX_BYTES: usize = 16;
// @ts-ignore: decorator
@inline const OB_TID: usize = 16;
// @ts-ignore: decorator
@inline const OB_REF_SHARED: usize = 8;
// @ts-ignore: decorator
@inline const OB_BRC_NEXT: usize = 4;

// @ts-ignore: decorator
@inline const SHARED_SHIFT: i32 = 2;
// @ts-ignore: decorator
@inline const SHARED_ONE: i32 = 1 << SHARED_SHIFT;
// @ts-ignore: decorator
@inline const FLAG_MASK: i32 = SHARED_ONE - 1;
// @ts-ignore: decorator
@inline const MAYBE_WEAKREF: i32 = 1;
// @ts-ignore: decorator
@inline const QUEUED: i32 = 2;
// @ts-ignore: decorator
@inline const MERGED: i32 = 3;
/** ob_ref_local of an immortal object (CPython 3.13t's _Py_IMMORTAL_REFCNT_LOCAL). */
// @ts-ignore: decorator
@inline const IMMORTAL_LOCAL: u32 = u32.MAX_VALUE;

export { MAX_THREADS };
// @ts-ignore: decorator
@inline const ID_BITS: u32 = 9;
// @ts-ignore: decorator
@inline const ID_MASK: u32 = THREAD_ID_MASK;
/** Attachments a heap can have over its life before tids would repeat. */
// @ts-ignore: decorator
@inline const MAX_SERIAL: u32 = u32.MAX_VALUE >> ID_BITS;

@unmanaged class ThreadState {
  tid: u32;
  queue: usize;
  queued: u32;
}

@unmanaged class FtState {
  /** Attachments so far: the serial of the last tid given. */
  serial: u32;
  /** The thread table: MAX_THREADS + 1 ThreadState, 0 until the first attachment. */
  threads: usize;
  /** Objects a merge with the world stopped kept alive (brcKeep), linked through ob_brc_next, and how many. */
  kept: usize;
  keptCount: u32;
}

export { FT_STATE };

/**
 * This instance's thread: per instance by nature, so Wasm globals (each worker has its own
 * instance); the one state of the core outside linear memory. 0 while not attached.
 */
let myTid: u32 = 0;
let myId: u32 = 0;

// @ts-ignore: decorator
@inline function ftState(): FtState {
  return changetype<FtState>(FT_STATE);
}

// @ts-ignore: decorator
@inline function thread(table: usize, id: u32): ThreadState {
  return changetype<ThreadState>(table + <usize>id * THREAD_BYTES);
}

// @ts-ignore: decorator
@inline function tidOf(o: usize): u32 {
  return atomic.load<u32>(o - OB_TID);
}

// @ts-ignore: decorator
@inline function sharedWord(o: usize): usize {
  return o - OB_REF_SHARED;
}

// ───────────────────────────── the object's counts ─────────────────────────────

/** A new object: owned by this thread, one local reference (the prefix is zeroed already). */
// @ts-ignore: decorator
@inline export function brcNew(o: usize): void {
  if (CHECKED) assert(myTid != 0); // objects are made only by an attached instance
  store<u32>(o - OB_TID, myTid);
  store<u32>(o, 1);
}

/** Makes o immortal: unowned, and a local count no incref or decref touches. */
export function brcImmortalize(o: usize): void {
  atomic.store<u32>(o - OB_TID, 0);
  atomic.store<i32>(sharedWord(o), 0);
  store<u32>(o, IMMORTAL_LOCAL);
}

/** local + (shared >> 2); `immortal` for an immortal object. */
export function brcRefcount(o: usize, immortal: u32): u32 {
  const local = load<u32>(o);
  if (local == IMMORTAL_LOCAL) return immortal;
  // Tricky: read into an i32 first. In an i64 context AssemblyScript 0.28 turns atomic.load<i32>
  // into a zero-extending 64-bit load (Wasm has no signed atomic loads), and a negative shared
  // count would read as a huge one.
  const shared: i32 = atomic.load<i32>(sharedWord(o));
  const count = <i64>local + <i64>(shared >> SHARED_SHIFT);
  return count <= 0 ? 0 : count >= <i64>immortal ? immortal : <u32>count;
}

// @ts-ignore: decorator
@inline export function brcIncref(o: usize): void {
  const local = load<u32>(o);
  if (local == IMMORTAL_LOCAL) return;
  if (tidOf(o) == myTid) store<u32>(o, local + 1);
  else atomic.add<i32>(sharedWord(o), SHARED_ONE);
}

/**
 * The lock-free decrefs: true if done; false, with nothing changed, when the full rule must run
 * under the heap mutex (the owner's last local reference, or a shared decref that must queue the
 * object or finds it dead).
 */
export function brcDecrefLockFree(o: usize): bool {
  const local = load<u32>(o);
  if (local == IMMORTAL_LOCAL) return true;
  if (tidOf(o) == myTid) {
    if (local <= 1) return false;
    store<u32>(o, local - 1);
    return true;
  }
  const word = sharedWord(o);
  let shared = atomic.load<i32>(word);
  while (true) {
    if (shared == 0 || shared == MAYBE_WEAKREF) return false;
    const next = shared - SHARED_ONE;
    if (next == MERGED) return false;
    const seen = atomic.cmpxchg<i32>(word, shared, next);
    if (seen == shared) return true;
    shared = seen;
  }
}

/**
 * The whole decref rule (under the heap mutex): true iff o is now dead and must be deallocated.
 * A shared decref that finds the shared count at 0 queues o to its owner, or merges it at once
 * when the owner has gone.
 */
export function brcDecref(o: usize): bool {
  const local = load<u32>(o);
  if (local == IMMORTAL_LOCAL) return false;
  if (tidOf(o) == myTid) {
    store<u32>(o, local - 1);
    return local == 1 && zeroLocalIsDead(o);
  }
  const word = sharedWord(o);
  let shared = atomic.load<i32>(word);
  let next: i32;
  let queue: bool;
  while (true) {
    queue = shared == 0 || shared == MAYBE_WEAKREF;
    // Queued, the object keeps the reference dropped here: the owner's merge takes it off.
    next = queue ? QUEUED : shared - SHARED_ONE;
    const seen = atomic.cmpxchg<i32>(word, shared, next);
    if (seen == shared) break;
    shared = seen;
  }
  if (!queue) return next == MERGED;
  const tid = tidOf(o);
  const table = ftState().threads;
  const owner = thread(table, tid & ID_MASK);
  if (tid != 0 && owner.tid == tid) {
    store<usize>(o - OB_BRC_NEXT, owner.queue);
    owner.queue = o;
    owner.queued++;
    return false;
  }
  return brcMerge(o, -1) == 0;
}

/**
 * The owner's local count just reached 0: dead if the shared word is 0; else the object is
 * merged (unowned, flags MERGED) and dead iff its shared count is 0 too.
 */
function zeroLocalIsDead(o: usize): bool {
  const word = sharedWord(o);
  let shared = atomic.load<i32>(word);
  if (shared == 0) return true;
  // Unowned before the flags say merged, so that a zero ob_tid always means merged counts.
  atomic.store<u32>(o - OB_TID, 0);
  let next: i32;
  while (true) {
    next = (shared & ~FLAG_MASK) | MERGED;
    const seen = atomic.cmpxchg<i32>(word, shared, next);
    if (seen == shared) break;
    shared = seen;
  }
  return next == MERGED;
}

/**
 * CPython's _Py_ExplicitMergeRefcount: folds the local count and `extra` into the shared one and
 * leaves o unowned and merged; returns the count. Only from o's owner, or for an abandoned o.
 */
export function brcMerge(o: usize, extra: i32): i32 {
  const local = <i32>load<u32>(o);
  store<u32>(o, 0);
  atomic.store<u32>(o - OB_TID, 0);
  const word = sharedWord(o);
  let shared = atomic.load<i32>(word);
  while (true) {
    const count = (shared >> SHARED_SHIFT) + local + extra;
    const seen = atomic.cmpxchg<i32>(word, shared, (count << SHARED_SHIFT) | MERGED);
    if (seen == shared) return count;
    shared = seen;
  }
}

/**
 * A finalizer is about to run on o, whose count reached 0: this thread owns it again with one
 * local reference lent for the call (the flags of its last life cleared).
 */
export function brcLend(o: usize): void {
  atomic.store<i32>(sharedWord(o), 0);
  atomic.store<u32>(o - OB_TID, myTid);
  store<u32>(o, 1);
}

// ───────────────────────────── threads ─────────────────────────────

/** The next object after o on a merge queue. */
// @ts-ignore: decorator
@inline export function queuedAfter(o: usize): usize {
  return load<usize>(o - OB_BRC_NEXT);
}

/** Empties the queue of thread `id`: its first object, 0 if none (queuedCount tells how many). */
export function takeQueue(id: u32): usize {
  const table = ftState().threads;
  if (!table) return 0;
  const t = thread(table, id);
  const first = t.queue;
  t.queue = 0;
  t.queued = 0;
  return first;
}

/** Objects on the queue of thread `id`. */
export function queuedCount(id: u32): u32 {
  const table = ftState().threads;
  return table ? thread(table, id).queued : 0;
}

/** The address of thread `id`'s state word (the host's, with Atomics); 0 before the first attachment. */
export function threadStateWord(id: u32): usize {
  const table = ftState().threads;
  return table && id <= MAX_THREADS ? changetype<usize>(thread(table, id)) + THREAD_STATE : 0;
}

/**
 * o was merged to a count of 0 with the world stopped: it is kept alive with one shared
 * reference, to be dropped once the world runs again (its finalizer must not run in the pause,
 * CPython's objs_to_decref), on FtState's kept list.
 */
export function brcKeep(o: usize): void {
  const st = ftState();
  atomic.add<i32>(sharedWord(o), SHARED_ONE);
  store<usize>(o - OB_BRC_NEXT, st.kept);
  st.kept = o;
  st.keptCount++;
}

/** Empties the kept list: its first object, 0 if none (keptCount() tells how many, read first). */
export function takeKept(): usize {
  const st = ftState();
  const first = st.kept;
  st.kept = 0;
  st.keptCount = 0;
  return first;
}

export function keptCount(): u32 {
  return ftState().keptCount;
}

/** threadAttach's refusals: no tid has an id of 0. */
// @ts-ignore: decorator
@inline export const NO_THREAD_TABLE: u32 = 0;
// @ts-ignore: decorator
@inline export const NO_THREAD_ID: u32 = 1;

/**
 * This instance becomes thread `id` (an attachment id): its tid; NO_THREAD_TABLE when the table
 * cannot be had, NO_THREAD_ID when the heap has given out every tid (or id is no attachment's,
 * or this instance is attached already). The queue a dead worker left in the slot is the
 * caller's to merge.
 */
export function threadAttach(id: u32): u32 {
  // The allocator's fields of the record follow these (memory/header.ts).
  if (offsetof<ThreadState>() > THREAD_POOLS) ERROR("objects/brc.ts: ThreadState overlaps the allocator's fields");
  if (id == 0 || id > MAX_THREADS || myTid != 0) return NO_THREAD_ID;
  const st = ftState();
  if (!st.threads) {
    const bytes = <usize>(MAX_THREADS + 1) * THREAD_BYTES;
    // Cache-line aligned: two threads' records never share a line.
    const table = rawAllocAligned(bytes, THREAD_BYTES, 0);
    if (!table) return NO_THREAD_TABLE;
    memory.fill(table, 0, bytes);
    st.threads = table;
  }
  if (st.serial == MAX_SERIAL) return NO_THREAD_ID;
  const record = thread(st.threads, id);
  // A worker that died in the slot without a release: its pools go to no thread first.
  if (record.tid) abandonPools(changetype<usize>(record));
  const tid = (st.serial + 1 << ID_BITS) | id;
  setCurrentThread(tid, changetype<usize>(record));
  if (!attachPools(changetype<usize>(record))) {
    setCurrentThread(0, 0);
    return NO_THREAD_TABLE;
  }
  st.serial++;
  record.tid = tid;
  myTid = tid;
  myId = id;
  return tid;
}

/** This instance leaves its slot (its queue merged by the caller first): its objects are abandoned. */
export function threadDetach(): void {
  if (!myTid) return;
  const record = thread(ftState().threads, myId);
  abandonPools(changetype<usize>(record));
  record.tid = 0;
  detachPools();
  setCurrentThread(0, 0);
  myTid = 0;
  myId = 0;
}

/** Thread `id` has gone without detaching (its queue merged by the caller first): its objects are abandoned. */
export function threadRelease(id: u32): void {
  const table = ftState().threads;
  if (!table || id == 0 || id > MAX_THREADS || !thread(table, id).tid) return;
  abandonPools(changetype<usize>(thread(table, id)));
  thread(table, id).tid = 0;
}

/** The attachment id of this instance, 0 while not attached. */
// @ts-ignore: decorator
@inline export function currentThread(): u32 {
  return myId;
}
