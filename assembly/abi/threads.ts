// The exports only the free-threaded build has (docs/free-threaded.md): an entry file of its own,
// given to asc for the ft targets only, so that the other modules keep exactly their exports.
// Every call here runs under the heap mutex (src/heap/shared.ts), but the heap lock's takeover
// and release, which Heap#watch calls before it takes the mutex.

import { ObjectError, ObjectLayerBroken, liveObjectType, decref, mergeQueue, walked } from "../objects/object";
import {
  threadAttach as attachThread, threadDetach as detachThread, threadRelease as releaseThread, currentThread,
  threadStateWord as stateWord, queuedAfter, takeKept, keptCount,
  NO_THREAD_ID, MAX_THREADS,
} from "../objects/brc";
import { drainRemote } from "../pymalloc/obmalloc";
import { heapLockTakeOver, heapUnlock } from "../memory/lock";
import { threadRecord } from "../memory/header";
export {
  collectStopped as gcCollectStopped, collectRestarted as gcCollectRestarted,
  collectResurrected as gcCollectResurrected, collectDelete as gcCollectDelete, collecting as gcCollecting,
} from "../gc/collector";

/**
 * This instance becomes the thread of attachment `id`: its tid, or NO_THREAD_TABLE /
 * NO_THREAD_ID (objects/brc.ts). Then merges what a worker that died in the slot left queued:
 * its owner will never come back for it.
 */
export function threadAttach(id: u32): u32 {
  const tid = attachThread(id);
  if (tid > NO_THREAD_ID) mergeQueue(id);
  return tid;
}

/** This instance's thread leaves: its queue merged, its objects abandoned. */
export function threadDetach(): void {
  const id = currentThread();
  if (!id) return;
  mergeQueue(id);
  detachThread();
}

/**
 * The worker of attachment `id` has exited without detaching (Heap#watch): what was queued to it
 * is merged here, and its objects are abandoned. Before its slot is free for another.
 */
export function threadRelease(id: u32): void {
  if (id == 0 || id > MAX_THREADS) return;
  mergeQueue(id);
  releaseThread(id);
}

/**
 * The safe point of every entry under the heap mutex: merges this thread's queue and drains its
 * remote list (blocks other threads freed into its pools); how many objects were queued.
 */
export function threadMerge(): u32 {
  const id = currentThread();
  if (!id) return 0;
  const merged = mergeQueue(id);
  drainRemote();
  return merged;
}

/** The whole decref rule, when objectDecref said NEEDS_LOCK. */
export function objectDecrefLocked(o: usize): u32 {
  if (!liveObjectType(o)) return ObjectError.NOT_AN_OBJECT;
  decref(o);
  return ObjectError.OK;
}

/** The address of thread `id`'s state word (ThreadState +16), which the host reads and writes with Atomics. */
export function threadStateWord(id: u32): usize {
  return stateWord(id);
}

/**
 * With the world stopped (every owner parked or outside the heap, so that their local counts
 * hold still): merges every thread's queue. An object whose count this takes to 0 is not freed
 * in the pause, where its finalizer would run, but kept with one reference for
 * threadReleaseKept, once the world runs again.
 */
export function threadMergeAll(): void {
  for (let id: u32 = 1; id <= MAX_THREADS; id++) mergeQueue(id, true);
}

/** Drops the references threadMergeAll kept: those objects are freed now. */
export function threadReleaseKept(): void {
  const count = keptCount();
  let o = takeKept();
  let steps: u32 = 0;
  while (o) {
    steps = walked(steps, count, ObjectLayerBroken.BRC_QUEUE, o);
    const next = queuedAfter(o);
    decref(o);
    o = next;
  }
}

/**
 * The worker of attachment `id` exited, perhaps holding the heap lock (terminated inside an
 * allocation's locked slow path): if it did, this instance takes the lock over and holds it until
 * heapLockRelease; 1 then, else 0. Before the heap mutex, whose safe point may need the lock.
 */
export function threadTakeHeapLock(id: u32): u32 {
  if (id == 0 || id > MAX_THREADS) return 0;
  const record = threadRecord(id);
  return record && heapLockTakeOver(load<u32>(record)) ? 1 : 0;
}

/** Releases the heap lock threadTakeHeapLock took over. */
export function heapLockRelease(): void {
  heapUnlock();
}
