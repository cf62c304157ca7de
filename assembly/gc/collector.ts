// The generational cycle collector (CPython's Python/gc.c, 3.11 semantics), and its checker.
//
// Generations are lists of GC headers (objects/object.ts draws the header and the object space):
// generation 0 takes newly tracked objects, survivors of a collection of generation g move
// to g + 1, and the permanent generation (gc.freeze) is never collected.
//
// Counting rules and the invariants they keep:
//   count[0] = GC-header objects allocated - deallocated since generation 0 was last
//              collected (never below 0);
//   count[g] = collections of generation g - 1 since generation g was last collected (g >= 1).
//   Collecting generation g zeroes count[0..g] and adds 1 to count[g + 1].
//   An allocation that makes count[0] > threshold[0] (and threshold[0] != 0, enabled, not
//   collecting) collects the oldest generation g with count[g] > threshold[g]; except that
//   generation 2 waits while longLivedPending < longLivedTotal / 4 (bpo-4074: otherwise
//   building a large structure costs quadratic time).
//
// One collection of generation g (the younger ones merged in: the "young" set):
//   1. update_refs      gc_refs = refcount, kept in prev (prev = gc_refs << 2 | COLLECTING).
//   2. subtract_refs    for each reference from young to young, gc_refs--. What is left
//                       counts the references from outside young.
//   3. move_unreachable objects with gc_refs > 0 are roots; everything they reach is
//                       reachable; the rest moves to the unreachable list (next | UNREACHABLE).
//   4. survivors move to generation g + 1 (step 3 has untracked the tuples of atomic values);
//   5. weakrefs to the unreachable are cleared; callbacks run for weakrefs still reachable;
//   6. finalizers run (once per object), then steps 1-3 again over the unreachable set
//      alone: what a finalizer resurrected survives, with everything it reaches (with no
//      finalizer due, nothing can have been resurrected and this step is skipped);
//   7. delete_garbage: references are cleared (tp_clear), refcounting frees the objects;
//      with DEBUG_SAVEALL they go to gc.garbage instead.
// Steps 1-4 run without calling the host. During them a GC header is in one of these states:
//   COLLECTING set      iff the object is in young and not yet scanned, or unreachable;
//   UNREACHABLE in next iff the object is on the unreachable list (step 3 only).
// After step 3 every prev is a link again; COLLECTING marks exactly the unreachable set.
// Every walk here is bounded by the live GC objects (objects/object.ts, "Walks"): a list
// whose links have been overwritten stops the collection with corrupt() instead of looping.

import { IO, IO_WORDS, CHECKED, FREE_THREADED, broken } from "../memory/header";
import {
  GcHead, Generation, Kind, WeakrefObject, TypeRecord, state, generation, scratchList, generationStats,
  typeOf, gcHead, objectOfHead, refcnt, referenceArray, referenceCount, liveObjectType,
  listIsEmpty, listAppend, listMove, listMerge, listSize, prevOf, setPrev,
  incref, decref, finalizeOnce, mayBeTracked, hostWeakrefCallback, weakrefUnlink, clearReferences,
  releaseHeld, walked, quarantineIsValid, ObjectLayerBroken,
  track, GC_HEADER, TRACKED, FINALIZER, FINALIZED, COLLECTING, PREV_SHIFT, PREV_FLAGS, UNREACHABLE,
  NUM_GENERATIONS, PERMANENT,
} from "../objects/object";
import { heldRealloc } from "../debug/hooks";
import { dictIsValid } from "../objects/dict";

// @ts-ignore: decorator
@external("env", "gcEvent")
declare function hostGcEvent(phase: u32, generation: u32, collected: u32, uncollectable: u32): void;
// @ts-ignore: decorator
@external("env", "gcDebugObject")
declare function hostDebugObject(o: usize): void;
/** Free-threaded build: an automatic collection is due; the host runs it, stopping the world, once its call ends. */
// @ts-ignore: decorator
@external("env", "gcScheduled")
declare function hostGcScheduled(): void;

/** gc.set_debug flags, with CPython's values. */
export const enum Debug {
  STATS = 1,
  COLLECTABLE = 2,
  UNCOLLECTABLE = 4,
  SAVEALL = 32,
}

export const enum GcEvent {
  START = 0,
  STOP = 1,
}

/** The invariants of objects and generations that check() verifies (heap/check.ts lists all). */
export const enum ObjectsBroken {
  NONE = 0,
  GC_LISTS = 21,
  OBJECT_REFERENCE = 22,
  REFCOUNT = 23,
}

// The scratch lists of a collection.
// @ts-ignore: decorator
@inline const UNREACHABLE_LIST: u32 = 0;
// @ts-ignore: decorator
@inline const STILL_UNREACHABLE: u32 = 1;
// @ts-ignore: decorator
@inline const FINALIZER_SEEN: u32 = 2;
// @ts-ignore: decorator
@inline const WEAKREF_CALLBACKS: u32 = 3;

/** The most steps a walk of one GC list can take: one per live GC object. */
// @ts-ignore: decorator
@inline function walkLimit(): u32 {
  return state().gcObjects;
}

// @ts-ignore: decorator
@inline function step(steps: u32, limit: u32, at: usize): u32 {
  return walked(steps, limit, ObjectLayerBroken.GC_LIST_WALK, at);
}

// @ts-ignore: decorator
@inline function head(g: Generation): GcHead {
  return changetype<GcHead>(g);
}

// @ts-ignore: decorator
@inline function gcRefs(gc: GcHead): usize {
  return gc.prev >> PREV_SHIFT;
}

// @ts-ignore: decorator
@inline function setRefs(gc: GcHead, refs: usize): void {
  gc.prev = (gc.prev & PREV_FLAGS) | (refs << PREV_SHIFT);
}

/** The GC header of referent r, or null when r has none (it cannot be in a cycle). */
// @ts-ignore: decorator
@inline function headOfReferent(r: usize): GcHead | null {
  if (!r || !(typeOf(r).flags & GC_HEADER)) return null;
  return gcHead(r);
}

// ───────────────────────────── steps 1 to 4 ─────────────────────────────

/** Sets gc_refs = refcount for every object of the list; returns how many there are. */
function updateRefs(containers: GcHead): u32 {
  const end = changetype<usize>(containers);
  const limit = walkLimit();
  let n: u32 = 0;
  for (let gc = containers.next; gc != end; gc = changetype<GcHead>(gc).next) {
    n = step(n, limit, gc);
    const node = changetype<GcHead>(gc);
    node.prev = (node.prev & FINALIZED) | COLLECTING | (<usize>refcnt(objectOfHead(gc)) << PREV_SHIFT);
  }
  return n;
}

function subtractRefs(containers: GcHead): void {
  const end = changetype<usize>(containers);
  const limit = walkLimit();
  let steps: u32 = 0;
  for (let gc = containers.next; gc != end; gc = changetype<GcHead>(gc).next) {
    steps = step(steps, limit, gc);
    const o = objectOfHead(gc);
    const t = typeOf(o);
    const refs = referenceArray(o, t);
    const n = referenceCount(o, t);
    for (let i: u32 = 0; i < n; i++) {
      const target = headOfReferent(load<usize>(refs + (<usize>i << 2)));
      if (target && target.prev & COLLECTING) target.prev -= 1 << PREV_SHIFT;
    }
  }
}

/**
 * visit_reachable over o's references: each referent in young is reachable after all.
 * Returns true iff o is a tuple none of whose items may be tracked (it can never be in a
 * cycle: CPython's untrack_tuples, done here to spare a pass over the survivors).
 */
function markReferentsReachable(o: usize, young: GcHead): bool {
  const t = typeOf(o);
  const refs = referenceArray(o, t);
  const n = referenceCount(o, t);
  let atomic = t.kind == Kind.TUPLE;
  for (let i: u32 = 0; i < n; i++) {
    const target = headOfReferent(load<usize>(refs + (<usize>i << 2)));
    if (!target) continue;
    if (atomic) atomic = !mayBeTracked(objectOfHead(changetype<usize>(target)));
    // Not COLLECTING: outside young, or already scanned (to the left of the scan).
    if (!(target.prev & COLLECTING)) continue;
    if (target.next & UNREACHABLE) {
      // Tentatively unreachable until now: take it back to the end of young, where the scan
      // will reach it again. The unreachable list's next words carry the flag, so unlink by hand.
      const prev = prevOf(target);
      const next = changetype<GcHead>(target.next & ~UNREACHABLE);
      prev.next = target.next;
      setPrev(next, changetype<usize>(prev));
      listAppend(target, young);
      setRefs(target, 1);
    } else if (!gcRefs(target)) {
      // Ahead of the scan: tell it the object is reachable.
      setRefs(target, 1);
    }
  }
  return atomic;
}

/**
 * Splits young, of n objects: objects with gc_refs > 0, and everything they reach, stay
 * (their prev links restored, COLLECTING cleared); the rest moves to `unreachable`,
 * COLLECTING still set and UNREACHABLE still in their next words (clearUnreachableMarks).
 * With untrackAtomic, tuples of atomic items leave young untracked. Returns how many objects
 * stay in young, and leaves how many became unreachable in state().unreachableCount.
 */
function moveUnreachable(young: GcHead, n: u32, unreachable: GcHead, untrackAtomic: bool): u32 {
  let prev = changetype<usize>(young);
  let gc = young.next;
  let survivors: u32 = 0;
  let untracked: u32 = 0;
  // An object is scanned at most twice: once more after being taken back from unreachable.
  const limit = walkLimit() << 1;
  let steps: u32 = 0;
  while (gc != changetype<usize>(young)) {
    steps = step(steps, limit, gc);
    const node = changetype<GcHead>(gc);
    if (gcRefs(node)) {
      if (markReferentsReachable(objectOfHead(gc), young) && untrackAtomic) {
        changetype<GcHead>(prev).next = node.next;
        node.next = 0;
        node.prev &= FINALIZED;
        untracked++;
      } else {
        node.prev = prev | (node.prev & FINALIZED);
        prev = gc;
        survivors++;
      }
    } else {
      // young is singly linked during the scan, so only the predecessor's next is mended.
      changetype<GcHead>(prev).next = node.next;
      const last = changetype<GcHead>(unreachable.prev);
      // Tricky: when last is the list head this flags the head's next too; mended below.
      last.next = gc | UNREACHABLE;
      setPrev(node, changetype<usize>(last));
      node.next = changetype<usize>(unreachable) | UNREACHABLE;
      unreachable.prev = gc;
    }
    gc = changetype<GcHead>(prev).next;
  }
  young.prev = prev;
  unreachable.next &= ~UNREACHABLE;
  state().unreachableCount = n - survivors - untracked;
  return survivors;
}

function clearUnreachableMarks(unreachable: GcHead): void {
  const limit = walkLimit();
  let steps: u32 = 0;
  for (let u = unreachable.next; u != changetype<usize>(unreachable); ) {
    steps = step(steps, limit, u);
    const next = changetype<GcHead>(u).next & ~UNREACHABLE;
    changetype<GcHead>(u).next = next;
    u = next;
  }
}

/** Steps 1-3 over young (see moveUnreachable for what it returns). */
function deduceUnreachable(young: GcHead, unreachable: GcHead, untrackAtomic: bool): u32 {
  if (CHECKED) assert(listIsEmpty(unreachable)); // a scratch list is empty between uses
  const n = updateRefs(young);
  subtractRefs(young);
  return moveUnreachable(young, n, unreachable, untrackAtomic);
}

// ───────────────────────────── steps 5 to 7 ─────────────────────────────

/**
 * One pass over the unreachable set: clears the UNREACHABLE marks, prints it for
 * DEBUG_COLLECTABLE, clears the weakrefs to it, and queues the callbacks of those weakrefs
 * that are not garbage themselves. Returns true iff some object has a finalizer to run.
 */
function prepareGarbage(unreachable: GcHead): bool {
  const callbacks = scratchList(WEAKREF_CALLBACKS);
  const debug = (state().debug & Debug.COLLECTABLE) != 0;
  let finalizersDue = false;
  const end = changetype<usize>(unreachable);
  const limit = walkLimit();
  let steps: u32 = 0;
  for (let gc = unreachable.next; gc != end; ) {
    steps = step(steps, limit, gc);
    const node = changetype<GcHead>(gc);
    const next = node.next & ~UNREACHABLE;
    node.next = next;
    const o = objectOfHead(gc);
    const t = typeOf(o);
    if (debug) hostDebugObject(o);
    if (t.flags & FINALIZER && !(node.prev & FINALIZED)) finalizersDue = true;
    const list = t.weaklistOffset;
    let refs: u32 = 0;
    let wr: usize;
    while (list && (wr = load<usize>(o + list)) != 0) {
      refs = walked(refs, limit, ObjectLayerBroken.WEAK_LIST_WALK, o);
      const ref = changetype<WeakrefObject>(wr);
      weakrefUnlink(ref);
      const wrHead = gcHead(wr);
      if (!ref.callback || wrHead.prev & COLLECTING) continue;
      incref(wr);
      if (wrHead.next) listMove(wrHead, callbacks);
      else listAppend(wrHead, callbacks);
    }
    gc = next;
  }
  return finalizersDue;
}

/** Runs the queued weakref callbacks; returns how many of those weakrefs their callback freed. */
function runWeakrefCallbacks(old: GcHead): u32 {
  const callbacks = scratchList(WEAKREF_CALLBACKS);
  const limit = walkLimit();
  let steps: u32 = 0;
  let freed: u32 = 0;
  while (!listIsEmpty(callbacks)) {
    const gc = callbacks.next;
    steps = step(steps, limit, gc);
    const wr = objectOfHead(gc);
    hostWeakrefCallback(wr);
    decref(wr);
    if (callbacks.next == gc) listMove(changetype<GcHead>(gc), old);
    else freed++;
  }
  return freed;
}

/** Runs each unreachable object's finalizer, if it has one that has not run yet. */
function finalizeGarbage(unreachable: GcHead): void {
  // A finalizer may free unreachable objects (breaking their cycle), which unlinks them:
  // so each object leaves the list before its finalizer runs.
  const seen = scratchList(FINALIZER_SEEN);
  const limit = walkLimit();
  let steps: u32 = 0;
  while (!listIsEmpty(unreachable)) {
    const gc = changetype<GcHead>(unreachable.next);
    steps = step(steps, limit, changetype<usize>(gc));
    const o = objectOfHead(changetype<usize>(gc));
    listMove(gc, seen);
    if (typeOf(o).flags & FINALIZER && !(gc.prev & FINALIZED)) {
      incref(o);
      finalizeOnce(o);
      decref(o);
    }
  }
  listMerge(seen, unreachable);
}

/**
 * Recomputes reachability within the unreachable set: what a finalizer resurrected (and all
 * it reaches) joins `old`; the rest moves to `still`.
 */
function handleResurrected(unreachable: GcHead, still: GcHead, old: GcHead): void {
  const end = changetype<usize>(unreachable);
  const limit = walkLimit();
  let steps: u32 = 0;
  for (let gc = unreachable.next; gc != end; gc = changetype<GcHead>(gc).next) {
    steps = step(steps, limit, gc);
    changetype<GcHead>(gc).prev &= ~COLLECTING;
  }
  deduceUnreachable(unreachable, still, false);
  clearUnreachableMarks(still);
  listMerge(unreachable, old);
}

/** Appends o to gc.garbage (an owned reference); false when the array cannot grow. */
function saveGarbage(o: usize): bool {
  const st = state();
  if (st.garbageCount == st.garbageCapacity) {
    const capacity = st.garbageCapacity ? st.garbageCapacity << 1 : 16;
    const items = heldRealloc(st.garbage, <usize>capacity << 2);
    if (!items) return false;
    st.garbage = items;
    st.garbageCapacity = capacity;
  }
  incref(o);
  store<usize>(st.garbage + (<usize>st.garbageCount << 2), o);
  st.garbageCount++;
  return true;
}

/** Breaks the cycles of `collectable`; what is still alive afterwards joins `old`. */
function deleteGarbage(collectable: GcHead, old: GcHead): void {
  const saveAll = (state().debug & Debug.SAVEALL) != 0;
  const limit = walkLimit();
  let steps: u32 = 0;
  while (!listIsEmpty(collectable)) {
    const gc = collectable.next;
    steps = step(steps, limit, gc);
    const o = objectOfHead(gc);
    if (!saveAll || !saveGarbage(o)) {
      incref(o);
      clearReferences(o);
      decref(o);
    }
    if (collectable.next == gc) {
      changetype<GcHead>(gc).prev &= ~COLLECTING;
      listMove(changetype<GcHead>(gc), old);
    }
  }
}

// ───────────────────────────── collections ─────────────────────────────

/** gc_collect_main: collects generation g; returns the number of unreachable objects found. */
function collectMain(g: u32): u32 {
  const st = state();
  if (g + 1 < NUM_GENERATIONS) generation(g + 1).count++;
  for (let i: u32 = 0; i <= g; i++) generation(i).count = 0;
  const young = head(generation(g));
  for (let i: u32 = 0; i < g; i++) listMerge(head(generation(i)), young);
  const old = g + 1 < NUM_GENERATIONS ? head(generation(g + 1)) : young;

  const unreachable = scratchList(UNREACHABLE_LIST);
  const survivors = deduceUnreachable(young, unreachable, true);
  if (young != old) {
    if (g == NUM_GENERATIONS - 2) st.longLivedPending += survivors;
    listMerge(young, old);
  } else {
    st.longLivedPending = 0;
    st.longLivedTotal = survivors;
  }

  const finalizersDue = prepareGarbage(unreachable);
  let found = runWeakrefCallbacks(old);
  // Only a finalizer can resurrect (a weakref callback never sees the garbage): without
  // one to run, the unreachable set is final as it stands.
  let garbage = unreachable;
  if (finalizersDue) {
    finalizeGarbage(unreachable);
    garbage = scratchList(STILL_UNREACHABLE);
    handleResurrected(unreachable, garbage, old);
  }
  found += st.unreachableCount;
  deleteGarbage(garbage, old);

  const stats = generationStats(g);
  stats.collections++;
  stats.collected += found;
  return found;
}

/** A collection with the host told before and after (gc.callbacks, DEBUG_STATS). */
function collectWithCallback(g: u32): u32 {
  hostGcEvent(GcEvent.START, g, 0, 0);
  const found = collectMain(g);
  hostGcEvent(GcEvent.STOP, g, found, 0);
  return found;
}

/** Collects the oldest generation over its threshold, if any (see the counting rules). */
function collectGenerations(): void {
  const st = state();
  for (let g: i32 = NUM_GENERATIONS - 1; g >= 0; g--) {
    const gen = generation(g);
    if (gen.count <= gen.threshold) continue;
    if (g == NUM_GENERATIONS - 1 && st.longLivedPending < st.longLivedTotal / 4) continue;
    collectWithCallback(g);
    return;
  }
}

/**
 * Hands a new object to the collector: an object with a GC header is counted first, which
 * may start an automatic collection, and tracked (if its type is) only afterwards, so that
 * the collection does not see it (CPython's _PyObject_GC_Link, then PyObject_GC_Track).
 */
export function adopt(o: usize): void {
  const flags = typeOf(o).flags;
  if (flags & GC_HEADER) {
    countAllocation();
    if (flags & TRACKED) track(o);
  }
}

/** Counts a new GC-header object; may start an automatic collection (the object is not tracked yet). */
export function countAllocation(): void {
  const gen0 = generation(0);
  gen0.count++;
  const st = state();
  if (FREE_THREADED) {
    scheduleFreeThreaded(gen0, st.longLivedTotal);
    return;
  }
  if (gen0.count > gen0.threshold && gen0.threshold && st.enabled && !st.collecting) {
    st.collecting = 1;
    collectGenerations();
    st.collecting = 0;
  }
}

/** gc.collect(g): the number of unreachable objects found; 0 if a collection is running. */
export function collect(g: u32): u32 {
  const st = state();
  if (st.collecting) return 0;
  st.collecting = 1;
  const found = collectWithCallback(g);
  st.collecting = 0;
  return found;
}

/** gc.freeze: every tracked object joins the permanent generation. */
export function freeze(): void {
  for (let g: u32 = 0; g < NUM_GENERATIONS; g++) {
    listMerge(head(generation(g)), head(generation(PERMANENT)));
    generation(g).count = 0;
  }
}

/** gc.unfreeze: the permanent generation joins the oldest one. */
export function unfreeze(): void {
  listMerge(head(generation(PERMANENT)), head(generation(NUM_GENERATIONS - 1)));
}

export function generationSize(g: u32): u32 {
  return listSize(head(generation(g)));
}

/** Releases gc.garbage's references and empties it. */
export function clearGarbage(): void {
  const st = state();
  // Taken first: a finalizer run by a decref may save garbage again.
  const items = st.garbage;
  const n = st.garbageCount;
  st.garbage = 0;
  st.garbageCount = 0;
  st.garbageCapacity = 0;
  for (let i: u32 = 0; i < n; i++) decref(load<usize>(items + (<usize>i << 2)));
  releaseHeld(items);
}

// ───────────────────────────── listings (through the IO buffer) ─────────────────────────────

/**
 * Writes into IO the tracked objects of generation g (or of 0..2 when g is NUM_GENERATIONS)
 * that come after `after` (an object of that list, or 0 to start); returns how many, at most
 * IO_WORDS. With a `referent`, only objects holding a reference to it are listed.
 */
export function listObjects(g: u32, after: usize, referent: usize): u32 {
  const first: u32 = g == NUM_GENERATIONS ? 0 : g;
  const last: u32 = g == NUM_GENERATIONS ? NUM_GENERATIONS - 1 : g;
  let n: u32 = 0;
  let skipping = after != 0;
  const limit = walkLimit();
  for (let i = first; i <= last; i++) {
    const end = changetype<usize>(generation(i));
    let steps: u32 = 0;
    for (let gc = changetype<GcHead>(end).next; gc != end; gc = changetype<GcHead>(gc).next) {
      steps = step(steps, limit, gc);
      const o = objectOfHead(gc);
      if (skipping) {
        skipping = o != after;
        continue;
      }
      if (referent && !refersTo(o, referent)) continue;
      store<usize>(IO + (<usize>n << 2), o);
      if (++n == IO_WORDS) return n;
    }
  }
  return n;
}

function refersTo(o: usize, referent: usize): bool {
  const t = typeOf(o);
  const refs = referenceArray(o, t);
  const n = referenceCount(o, t);
  for (let i: u32 = 0; i < n; i++) {
    if (load<usize>(refs + (<usize>i << 2)) == referent) return true;
  }
  return false;
}

/** Copies o's references (0 for empty) from index `start` into IO; returns how many (at most IO_WORDS). */
export function listReferents(o: usize, start: u32): u32 {
  const t = typeOf(o);
  const count = referenceCount(o, t);
  if (start >= count) return 0;
  const n = min(count - start, IO_WORDS);
  memory.copy(IO, referenceArray(o, t) + (<usize>start << 2), <usize>n << 2);
  return n;
}

// ───────────────────────────── checker ─────────────────────────────

/**
 * One generation list: well linked, holding only live GC objects, no collection flags, and
 * no more of them than `bound` (the live GC objects the lists before it left over).
 */
function generationIsValid(list: GcHead, bound: u32): u32 {
  const end = changetype<usize>(list);
  let prev = end;
  let n: u32 = 0;
  for (let gc = list.next; gc != end; gc = changetype<GcHead>(gc).next) {
    const node = changetype<GcHead>(gc);
    const t = liveObjectType(objectOfHead(gc));
    if (
      ++n > bound || !t || !(changetype<TypeRecord>(t).flags & GC_HEADER) ||
      (node.prev & ~PREV_FLAGS) != prev || (node.prev & COLLECTING) != 0 || (node.next & UNREACHABLE) != 0
    ) {
      return broken(ObjectsBroken.GC_LISTS, gc);
    }
    prev = gc;
  }
  if (list.prev != prev) return broken(ObjectsBroken.GC_LISTS, end);
  return ObjectsBroken.NONE;
}

/**
 * Every reference of a tracked object is to a live object, and no GC object is referred to
 * from tracked objects more often than its refcount says (gc_refs never goes below zero).
 */
function referencesAreValid(list: GcHead): u32 {
  const end = changetype<usize>(list);
  const limit = walkLimit();
  let steps: u32 = 0;
  for (let gc = list.next; gc != end; gc = changetype<GcHead>(gc).next) {
    steps = step(steps, limit, gc);
    const o = objectOfHead(gc);
    const t = typeOf(o);
    // A dict's table first: its counts say how many references there are to read.
    if (t.kind == Kind.DICT) {
      const status = dictIsValid(o);
      if (status != ObjectsBroken.NONE) return status;
    }
    const refs = referenceArray(o, t);
    const n = referenceCount(o, t);
    for (let i: u32 = 0; i < n; i++) {
      const r = load<usize>(refs + (<usize>i << 2));
      if (!r) continue;
      if (!liveObjectType(r)) return broken(ObjectsBroken.OBJECT_REFERENCE, o);
      const target = headOfReferent(r);
      if (!target || !(target.prev & COLLECTING)) continue;
      if (!gcRefs(target)) return broken(ObjectsBroken.REFCOUNT, r);
      target.prev -= 1 << PREV_SHIFT;
    }
  }
  return ObjectsBroken.NONE;
}

/** Rebuilds the prev links of a list from its next links, clearing COLLECTING. */
function restoreLinks(list: GcHead): void {
  const end = changetype<usize>(list);
  const limit = walkLimit();
  let steps: u32 = 0;
  let prev = end;
  for (let gc = list.next; gc != end; gc = changetype<GcHead>(gc).next) {
    steps = step(steps, limit, gc);
    const node = changetype<GcHead>(gc);
    node.prev = prev | (node.prev & FINALIZED);
    prev = gc;
  }
}

/**
 * Checks the generation lists, the references of tracked objects and the refcounts they
 * imply, and gc.garbage. Skipped while a collection or a deallocation is under way (a
 * finalizer may call it), when the lists are legitimately in flux.
 */
export function objectsAreValid(): u32 {
  const st = state();
  if (!st.ready || st.collecting || st.deallocating) return ObjectsBroken.NONE;
  let left = st.gcObjects;
  for (let g: u32 = 0; g <= PERMANENT; g++) {
    const status = generationIsValid(head(generation(g)), left);
    if (status != ObjectsBroken.NONE) return status;
    left -= listSize(head(generation(g)));
  }
  for (let g: u32 = 0; g <= PERMANENT; g++) updateRefs(head(generation(g)));
  let status: u32 = ObjectsBroken.NONE;
  for (let g: u32 = 0; g <= PERMANENT && status == ObjectsBroken.NONE; g++) {
    status = referencesAreValid(head(generation(g)));
  }
  for (let g: u32 = 0; g <= PERMANENT; g++) restoreLinks(head(generation(g)));
  if (status != ObjectsBroken.NONE) return status;
  for (let i: u32 = 0; i < st.garbageCount; i++) {
    const o = load<usize>(st.garbage + (<usize>i << 2));
    if (!liveObjectType(o)) return broken(ObjectsBroken.OBJECT_REFERENCE, o);
  }
  return quarantineIsValid();
}

// ───────────────────────────── the free-threaded collection ─────────────────────────────
// gc_free_threading.c's order, one phase per export, the host stopping and restarting the
// world between them (src/heap/gc.ts): every generation is collected at once (the free-threaded
// build has none: survivors all stay in generation 2, stats go to the generation asked for);
// counts are read with the world stopped; weakref callbacks, finalizers and the breaking of
// the cycles run with the world going again, and the resurrection check in a second pause.
// The collection is one from collectStopped to collectDelete (collecting stays set), and the
// host holds the heap mutex throughout, so no other call changes the lists in between.

/**
 * CPython 3.13t's trigger: count0 past threshold0 and past a quarter of the objects that
 * survived the last collection (the same guard against quadratic time as bpo-4074's). Told to
 * the host once, as count0 crosses the line.
 */
function scheduleFreeThreaded(gen0: Generation, longLivedTotal: u32): void {
  const st = state();
  if (!gen0.threshold || !st.enabled || st.collecting) return;
  if (gen0.count == max(gen0.threshold, longLivedTotal / 4) + 1) hostGcScheduled();
}

/** Whether a collection is running (the host's gc.collect from a finalizer then returns 0). */
export function collecting(): bool {
  return state().collecting != 0;
}

/**
 * Phase 1, the world stopped (every queue merged first): finds the unreachable set over the
 * whole heap, clears the weakrefs to it and queues their callbacks. True iff finalizers are due.
 */
export function collectStopped(): bool {
  const st = state();
  st.collecting = 1;
  for (let i: u32 = 0; i < NUM_GENERATIONS; i++) generation(i).count = 0;
  const all = head(generation(NUM_GENERATIONS - 1));
  for (let i: u32 = 0; i < NUM_GENERATIONS - 1; i++) listMerge(head(generation(i)), all);
  const unreachable = scratchList(UNREACHABLE_LIST);
  st.longLivedPending = 0;
  st.longLivedTotal = deduceUnreachable(all, unreachable, true);
  return prepareGarbage(unreachable);
}

/** Phase 2, the world running: weakref callbacks, then finalizers if due; how many weakrefs their callbacks freed. */
export function collectRestarted(finalizersDue: bool): u32 {
  const all = head(generation(NUM_GENERATIONS - 1));
  const freed = runWeakrefCallbacks(all);
  if (finalizersDue) finalizeGarbage(scratchList(UNREACHABLE_LIST));
  return freed;
}

/** Phase 3, the world stopped again (only after finalizers ran): what they resurrected survives. */
export function collectResurrected(): void {
  handleResurrected(scratchList(UNREACHABLE_LIST), scratchList(STILL_UNREACHABLE), head(generation(NUM_GENERATIONS - 1)));
}

/**
 * Phase 4, the world running: breaks the garbage's cycles, counts the collection under
 * generation g (found: what collectRestarted returned) and ends it; the number of
 * unreachable objects found.
 */
export function collectDelete(g: u32, finalizersDue: bool, freed: u32): u32 {
  const st = state();
  const found = freed + st.unreachableCount;
  deleteGarbage(scratchList(finalizersDue ? STILL_UNREACHABLE : UNREACHABLE_LIST), head(generation(NUM_GENERATIONS - 1)));
  const stats = generationStats(min(g, NUM_GENERATIONS - 1));
  stats.collections++;
  stats.collected += found;
  st.collecting = 0;
  return found;
}
