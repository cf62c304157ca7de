// Pools: POOL_SIZE bytes of blocks of one size class behind a pool header.
//
// ╒═══════════════════ Pool header (32 bytes = POOL_OVERHEAD) ═══════════════════╕
//  +0   count          u32     blocks handed out and not yet freed (ref.count)
//  +4   freeblock      usize   first block of the pool's free list (linked through
//                              each free block's first word), 0 when the list is empty
//  +8   nextpool       usize   usedpools links while used; freepools link while empty
//  +12  prevpool       usize
//  +16  arenaindex     u16     index of the owning arena object (at most 65536 arenas)
//  +18  szidx          u16     size class; NO_CLASS until the pool is first used
//  +20  bits           usize   this pool's block states in its arena's block bitmap
//  +24  nextoffset     u32     offset of the first never-used block
//  +28  maxnextoffset  u32     the largest offset at which a block still fits
// ╘══════════════════════════════════════════════════════════════════════════════╛
// POOL_OVERHEAD is the header rounded up to ALIGNMENT: 32 for both 8 and 16. CPython keeps
// arenaindex and szidx in a word each; both fit 16 bits, which frees the word for `bits`.
//
// ╒══════ Block states (2 bits per ALIGNMENT granule of the pool, at pool.bits) ══════╕
//  u32 word w holds granules 16w .. 16w + 15; granule g at bits 2 (g & 15) and up
//  bit 0  ALLOCATED  a block starts at this granule and is handed out
//  bit 1  HELD       ... and the object layer holds it: only heldFree releases it
// ╘═══════════════════════════════════════════════════════════════════════════════════╛
// The bits are what make free() exact in O(1): a block is free iff its ALLOCATED bit is
// clear, whatever its bytes say (a free list link can be forged by the program; a bit
// beside the pool cannot). Invariant: a granule's bits are non-zero iff a block starts
// there and is handed out, so an empty pool's bits are all zero and a pool reused for
// another class needs no clearing. The bitmap of a whole arena sits right after the
// arena, in the same raw block (pymalloc/arena.ts): POOL_SIZE / ALIGNMENT / 4 bytes a pool.
//
// A pool is in exactly one of three states:
//   used   iff 0 < count and a block is still available: it is on usedpools[szidx].
//   full   iff every block is handed out; then freeblock == 0 and it is on no list.
//   empty  iff count == 0: it is on its arena's freepools, and keeps its szidx and free list,
//          so that reuse for the same class skips re-initialisation.
// Hence, for a pool that is not empty, freeblock == 0 iff the pool is full.
//
// Blocks are carved lazily: a fresh pool hands out its first block, makes the second its free
// list, and carves the rest one at a time (nextoffset) only when the free list runs dry.
//
// Tricky: usedpools keeps, per size class, only the two link fields of a pool header. The
// "head" of class i is a fake pool header placed so that its nextpool and prevpool fields
// are exactly those two words (it starts 8 bytes before them; its other fields overlap the
// previous class's links and are never touched). The circular list is empty iff
// head.nextpool == head, so the allocation fast path is one load and one compare.

import {
  HEAP, USEDPOOLS_OFFSET, FREE_THREADED, header, broken, corrupt, alignmentShift, poolShift, tunedPolicy,
} from "../memory/header";
import { classSize, isBlockMultiple } from "./sizeclass";

@unmanaged export class PoolHeader {
  count: u32;
  freeblock: usize;
  nextpool: usize;
  prevpool: usize;
  arenaindex: u16;
  szidx: u16;
  bits: usize;
  nextoffset: u32;
  maxnextoffset: u32;
}

/** The invariants of pools and arenas that check() verifies; src/heap/errors.ts names them. */
export const enum PymallocBroken {
  NONE = 0,
  ARENA_MAP = 1,
  ARENA_BLOCK = 2,
  ARENA_POOL_ADDRESS = 3,
  ARENA_NFREEPOOLS = 4,
  ARENA_FREEPOOLS = 5,
  POOL_ARENAINDEX = 6,
  POOL_CLASS = 7,
  POOL_COUNT = 8,
  POOL_FREE_LIST = 9,
  POOL_NEXTOFFSET = 10,
  USEDPOOLS = 11,
  USABLE_ARENAS = 12,
  NFP2LASTA = 13,
  UNUSED_ARENAS = 14,
  ARENA_COUNTERS = 15,
  BLOCK_BITS = 25,
  /** Free-threaded: a pool's owner is neither 0 nor a live thread, or a list holds another's pool. */
  POOL_OWNER = 35,
  /** Free-threaded: a remote list holds a block not pending, or twice, or misses a pending one. */
  REMOTE_LIST = 36,
}

// @ts-ignore: decorator
@inline export const POOL_OVERHEAD: u32 = <u32>offsetof<PoolHeader>();
/** szidx of a pool that has never held blocks. */
// @ts-ignore: decorator
@inline export const NO_CLASS: u32 = 0xffff;

// @ts-ignore: decorator
@inline export function usedpoolsHead(index: u32): PoolHeader {
  if (FREE_THREADED) return usedpoolsHeadIn(ownPools, index);
  return changetype<PoolHeader>(
    HEAP + USEDPOOLS_OFFSET + (<usize>index << 3) - offsetof<PoolHeader>("nextpool"),
  );
}

// ───── the free-threaded build: pools owned by threads (docs/free-threaded.md, part 4) ─────
//
// Each thread has usedpools of its own (a raw block, ThreadState.pools); the header's usedpools
// are the shared lists: pools of no thread (owner 0), which only the heap lock lets anyone touch:
// those made before the first thread attached, and those of threads that left (abandoned), until
// a thread adopts them. A pool's owner and the pending bits of its blocks lie beside its block
// bits, in the arena's trailer (pymalloc/arena.ts), so that POOL_OVERHEAD and every block address
// are those of the other builds:
//
// ╒══════ A pool's trailer, free-threaded (poolTrailerBytes(); B = poolBitsBytes()) ══════╕
//  +0      owner          u32 the owner's tid; 0: no thread's (shared)
//  +4      ownerRecord    usize the owner's ThreadState, where its remote list is
//  +64     block states   B bytes, as in every build: pool.bits points here
//  +64+B   pending        B bytes, same layout, bit 0 only: the block's free by a thread that
//                         does not own the pool is under way (it is on a remote list, or about
//                         to be); set only by such a freer (atomic or), cleared only by the
//                         owner's drain or, for a pool of no thread, under the heap lock
// ╘═════════════════════════════════════════════════════════════════════════════════════════╛
// B is a multiple of 64 (B >= 2^(12-4-2)), so each part has cache lines of its own: the owner's
// frees, which read the owner word, never share a line with the state bits of a neighbouring
// pool that another thread writes on every malloc (measured: 2 workers at 0.7x of one, before).

/** This instance's usedpools: the header's until the instance attaches as a thread. */
let ownPools: usize = HEAP + USEDPOOLS_OFFSET;

/** The shared usedpools (the header's): pools of no thread, under the heap lock. */
// @ts-ignore: decorator
@inline export const SHARED_POOLS: usize = HEAP + USEDPOOLS_OFFSET;

export function setOwnPools(base: usize): void {
  ownPools = base;
}

/** The head of class `index` in the usedpools at `base` (see "Tricky" at the top). */
// @ts-ignore: decorator
@inline export function usedpoolsHeadIn(base: usize, index: u32): PoolHeader {
  return changetype<PoolHeader>(base + (<usize>index << 3) - offsetof<PoolHeader>("nextpool"));
}

// @ts-ignore: decorator
@inline const OWNER_BYTES: usize = 64;

/** Bytes of the trailer of each pool in its arena: its block bits, and more when free-threaded. */
// @ts-ignore: decorator
@inline export function poolTrailerBytes(): usize {
  if (FREE_THREADED) return (poolBitsBytes() << 1) + OWNER_BYTES;
  return poolBitsBytes();
}

/** Bytes of a pool's trailer before its block bits (the owner, when free-threaded). */
// @ts-ignore: decorator
@inline export function trailerLead(): usize {
  return FREE_THREADED ? OWNER_BYTES : 0;
}

/** The word of pending bits that goes with the state word `word`. */
// @ts-ignore: decorator
@inline export function pendingWord(word: usize): usize {
  return word + poolBitsBytes();
}

// @ts-ignore: decorator
@inline function ownerWord(pool: PoolHeader): usize {
  return pool.bits - OWNER_BYTES;
}

/** The pool's owner tid, 0 when it is no thread's. */
// @ts-ignore: decorator
@inline export function poolOwner(pool: PoolHeader): u32 {
  return atomic.load<u32>(ownerWord(pool));
}

/** The owner's ThreadState (meaningful while poolOwner is not 0). */
// @ts-ignore: decorator
@inline export function poolOwnerRecord(pool: PoolHeader): usize {
  return atomic.load<usize>(ownerWord(pool), 4);
}

/** Gives the pool to thread `tid` (0: to none), under the heap lock; the record first, so that a reader that sees the tid sees its record. */
export function setPoolOwner(pool: PoolHeader, tid: u32, record: usize): void {
  atomic.store<usize>(ownerWord(pool), record, 4);
  atomic.store<u32>(ownerWord(pool), tid);
}

/**
 * True iff the pool is empty but kept by its owner (free-threaded: the last pool of its class on
 * the owner's usedpools stays when it empties, pymalloc/obmalloc.ts, emptyPool).
 */
// @ts-ignore: decorator
@inline export function isKeptEmpty(pool: PoolHeader): bool {
  return FREE_THREADED && !pool.count && poolOwner(pool) != 0;
}

/** The head of the list a used pool belongs on: its owner's (this thread's) or the shared one. */
// @ts-ignore: decorator
@inline function listHeadOf(pool: PoolHeader): PoolHeader {
  return usedpoolsHeadIn(poolOwner(pool) ? ownPools : SHARED_POOLS, pool.szidx);
}

/** Sets up empty usedpools for every class at `base`. */
export function initUsedpoolsAt(base: usize): void {
  const numClasses = header().numClasses;
  for (let index: u32 = 0; index < numClasses; index++) {
    const head = usedpoolsHeadIn(base, index);
    head.nextpool = changetype<usize>(head);
    head.prevpool = changetype<usize>(head);
  }
}

// @ts-ignore: decorator
@inline export function poolOf(p: usize): PoolHeader {
  return changetype<PoolHeader>(p & ~((<usize>1 << poolShift()) - 1));
}

// @ts-ignore: decorator
@inline export const ALLOCATED: u32 = 1;
// @ts-ignore: decorator
@inline export const HELD: u32 = 2;
// @ts-ignore: decorator
@inline export const STATE_MASK: u32 = 3;

/** Bytes of block states per pool. */
// @ts-ignore: decorator
@inline export function poolBitsBytes(): usize {
  return <usize>1 << (poolShift() - alignmentShift() - 2);
}

/** The granule of p in its pool (p inside the pool). */
// @ts-ignore: decorator
@inline export function granuleOf(pool: PoolHeader, p: usize): u32 {
  return <u32>(p - changetype<usize>(pool)) >> alignmentShift();
}

/** The word of pool.bits holding a granule's state, and the state's bit position in it. */
// @ts-ignore: decorator
@inline export function stateWord(pool: PoolHeader, granule: u32): usize {
  return pool.bits + (<usize>(granule >> 4) << 2);
}

// @ts-ignore: decorator
@inline export function stateShift(granule: u32): u32 {
  return (granule & 15) << 1;
}

/** True iff p is at the start of an ALIGNMENT granule: where a block can start. */
// @ts-ignore: decorator
@inline export function isGranuleStart(p: usize): bool {
  return (p & ((<usize>1 << alignmentShift()) - 1)) == 0;
}

/**
 * The state bits (ALLOCATED | HELD) of the block starting at p, which lies inside pool; 0 if
 * no block starts at p (an address inside a granule shares the granule's bits, so it is
 * turned away first) or, free-threaded, if another thread's free of it is under way.
 */
// @ts-ignore: decorator
@inline export function blockState(pool: PoolHeader, p: usize): u32 {
  if (!isGranuleStart(p)) return 0;
  const g = granuleOf(pool, p);
  const state = (load<u32>(stateWord(pool, g)) >> stateShift(g)) & STATE_MASK;
  // Free-threaded, a block another thread has freed is free, though its state bits wait for the
  // owner's drain.
  if (FREE_THREADED && state && (atomic.load<u32>(pendingWord(stateWord(pool, g))) >> stateShift(g)) & ALLOCATED) return 0;
  return state;
}

/** Sets the state bits of the block at p, which lies inside pool. */
// @ts-ignore: decorator
@inline export function setBlockState(pool: PoolHeader, p: usize, state: u32): void {
  const g = granuleOf(pool, p);
  const word = stateWord(pool, g);
  const shift = stateShift(g);
  store<u32>(word, (load<u32>(word) & ~(STATE_MASK << shift)) | (state << shift));
}

/**
 * Marks the block at p, just taken off pool's free list, as handed out (`state`: ALLOCATED,
 * or ALLOCATED | HELD). A free list that hands out a block outside its pool or one already
 * handed out has been overwritten (a write to a freed block): that is reported rather than
 * handing the block out twice.
 */
// @ts-ignore: decorator
@inline export function markAllocated(pool: PoolHeader, p: usize, state: u32): void {
  // p inside the pool and granule-aligned keeps the store below on p's own bits; what else an
  // overwritten link can do (name a block never carved, or the middle of one) check() reports.
  if ((p ^ changetype<usize>(pool)) >> poolShift() || !isGranuleStart(p)) {
    corrupt(PymallocBroken.POOL_FREE_LIST, p);
  }
  const g = granuleOf(pool, p);
  const word = stateWord(pool, g);
  const bits = load<u32>(word);
  const shift = stateShift(g);
  if (bits & (ALLOCATED << shift)) corrupt(PymallocBroken.POOL_FREE_LIST, p);
  store<u32>(word, bits | (state << shift));
}

/** Blocks of `size` bytes that fit in a pool. */
// @ts-ignore: decorator
@inline export function poolCapacity(size: u32): u32 {
  return ((1 << poolShift()) - POOL_OVERHEAD) / size;
}

export function initUsedpools(): void {
  const numClasses = header().numClasses;
  for (let index: u32 = 0; index < numClasses; index++) {
    const head = usedpoolsHead(index);
    head.nextpool = changetype<usize>(head);
    head.prevpool = changetype<usize>(head);
  }
}

// @ts-ignore: decorator
@inline export function unlinkPool(pool: PoolHeader): void {
  changetype<PoolHeader>(pool.nextpool).prevpool = pool.prevpool;
  changetype<PoolHeader>(pool.prevpool).nextpool = pool.nextpool;
}

/** Links pool into its class's usedpools list right after `head` (first when it is the list's head). */
// @ts-ignore: decorator
@inline export function frontLinkPool(pool: PoolHeader, head: PoolHeader): void {
  const next = changetype<PoolHeader>(head.nextpool);
  pool.nextpool = changetype<usize>(next);
  pool.prevpool = changetype<usize>(head);
  next.prevpool = changetype<usize>(pool);
  head.nextpool = changetype<usize>(pool);
}

/** The pool's free list just ran dry: carve one more block, or unlink the pool as full. */
// @ts-ignore: decorator
@inline export function extendPool(pool: PoolHeader, size: u32): void {
  if (pool.nextoffset <= pool.maxnextoffset) {
    const block = changetype<usize>(pool) + pool.nextoffset;
    pool.freeblock = block;
    pool.nextoffset += size;
    store<usize>(block, 0);
    return;
  }
  unlinkPool(pool);
}

// Tricky: under CPython's policy a random workload moves pools between full and used on a good
// share of its mallocs and frees, at random, so a branch on "the pool just filled" (malloc) or
// "the pool was full" (free) is mispredicted about as often as it is taken. Under that policy
// both moves are made without one: their link stores are made every time, and when the pool
// does not move each stores back the value the link already has (select). Measured on the
// churn, cpython-3.12: 13.6 ns/op, 12.2 with free's relink so, 9.7 with malloc's unlink too.
// The tuned policy moves pools rarely, so its branches are predicted, and the extra stores
// cost it time (7.8 → 8.4 ns/op): it keeps them.

/**
 * malloc just took a block from `pool`, the first pool of its class (`head`); if that drained
 * the pool's free list (`drained`), carve one more block, or unlink the pool, now full.
 */
// @ts-ignore: decorator
@inline export function extendFirstPool(pool: PoolHeader, head: PoolHeader, drained: bool, size: u32): void {
  if (tunedPolicy()) {
    if (drained) extendPool(pool, size);
    return;
  }
  if (drained & (pool.nextoffset <= pool.maxnextoffset)) {
    extendPool(pool, size);
    return;
  }
  // pool is first, so its prevpool is head and its successor's prevpool is pool: the unlink
  // needs no load beyond pool.nextpool.
  const second = changetype<PoolHeader>(pool.nextpool);
  second.prevpool = select<usize>(changetype<usize>(head), changetype<usize>(pool), drained);
  head.nextpool = select<usize>(changetype<usize>(second), changetype<usize>(pool), drained);
}

/**
 * A block of `pool` was freed; if the pool was full until then (`wasFull`), it is used again.
 * CPython links it first on its list, so the next malloc of its class takes that block and the
 * pool is full again: under random frees most frees of a class land in a full pool, and each
 * pays a link here and an unlink in the malloc after. The tuned policy links it last, behind
 * every pool with free blocks, so it gathers frees before malloc reaches it and it goes full
 * again rarely.
 */
// @ts-ignore: decorator
@inline export function relinkIfWasFull(pool: PoolHeader, wasFull: bool): void {
  let head = usedpoolsHead(pool.szidx);
  if (FREE_THREADED) head = listHeadOf(pool);
  if (tunedPolicy()) {
    if (wasFull) frontLinkPool(pool, changetype<PoolHeader>(head.prevpool));
    return;
  }
  // Branch-free (see "Tricky" above): a pool that was not full is on this list, and each store
  // then writes back the value it read.
  const first = changetype<PoolHeader>(head.nextpool);
  const firstPrev = first.prevpool;
  pool.nextpool = select<usize>(changetype<usize>(first), pool.nextpool, wasFull);
  pool.prevpool = select<usize>(changetype<usize>(head), pool.prevpool, wasFull);
  first.prevpool = select<usize>(changetype<usize>(pool), firstPrev, wasFull);
  head.nextpool = select<usize>(changetype<usize>(pool), changetype<usize>(first), wasFull);
}

/** A carved pool of arena `index`: its header, and its free list against its count. */
export function poolIsValid(pool: PoolHeader, index: u32): u32 {
  const address = changetype<usize>(pool);
  if (pool.arenaindex != index) return broken(PymallocBroken.POOL_ARENAINDEX, address);
  // A carved pool always has a class: NO_CLASS (0xffff) fails this too.
  if (pool.szidx >= header().numClasses) return broken(PymallocBroken.POOL_CLASS, address);
  const size = classSize(pool.szidx);
  const capacity = poolCapacity(size);
  if (pool.count > capacity) return broken(PymallocBroken.POOL_COUNT, address);
  const poolSize: u32 = 1 << header().poolShift;
  if (
    pool.maxnextoffset != poolSize - size || pool.nextoffset < POOL_OVERHEAD + size ||
    pool.nextoffset > pool.maxnextoffset + size || (pool.nextoffset - POOL_OVERHEAD) % size != 0
  ) {
    return broken(PymallocBroken.POOL_NEXTOFFSET, address);
  }
  const carved = (pool.nextoffset - POOL_OVERHEAD) / size;
  const status = blockBitsAreValid(pool, size);
  if (status != PymallocBroken.NONE) return status;
  // Each block on the free list must be free by its bits; it is marked HELD (a state no free
  // block has) while the walk is on, so a block listed twice is found, then unmarked.
  let free: u32 = 0;
  let verdict: u32 = PymallocBroken.NONE;
  for (let block = pool.freeblock; block; block = load<usize>(block)) {
    const offset = <u32>(block - address) - POOL_OVERHEAD;
    if (
      ++free > carved || block < address ||
      offset >= pool.nextoffset - POOL_OVERHEAD || offset % size != 0 || blockState(pool, block) != 0
    ) {
      verdict = broken(PymallocBroken.POOL_FREE_LIST, block);
      free--;
      break;
    }
    setBlockState(pool, block, HELD);
  }
  let unmarked: u32 = 0;
  for (let block = pool.freeblock; unmarked < free; block = load<usize>(block), unmarked++) {
    setBlockState(pool, block, 0);
  }
  if (verdict != PymallocBroken.NONE) return verdict;
  if (pool.count + free != carved) return broken(PymallocBroken.POOL_FREE_LIST, address);
  // A pool whose free list is empty but has never-used blocks left would be stuck.
  if (pool.count && !free && pool.nextoffset <= pool.maxnextoffset) {
    return broken(PymallocBroken.POOL_FREE_LIST, address);
  }
  return PymallocBroken.NONE;
}

/**
 * The pool's block states: bits only where a carved block starts, HELD only with ALLOCATED,
 * and exactly `count` blocks ALLOCATED.
 */
function blockBitsAreValid(pool: PoolHeader, size: u32): u32 {
  const address = changetype<usize>(pool);
  const words = <u32>(poolBitsBytes() >> 2);
  const shift = header().alignmentShift;
  let allocated: u32 = 0;
  for (let w: u32 = 0; w < words; w++) {
    const bits = load<u32>(pool.bits + (<usize>w << 2));
    if (!bits) continue;
    for (let i: u32 = 0; i < 16; i++) {
      const state = (bits >> (i << 1)) & STATE_MASK;
      if (!state) continue;
      const offset = (((w << 4) | i) << shift) - POOL_OVERHEAD;
      if (
        state == HELD || offset >= pool.nextoffset - POOL_OVERHEAD ||
        !isBlockMultiple(offset, pool.szidx)
      ) {
        return broken(PymallocBroken.BLOCK_BITS, address + POOL_OVERHEAD + offset);
      }
      allocated++;
    }
  }
  if (allocated != pool.count) return broken(PymallocBroken.BLOCK_BITS, address);
  return PymallocBroken.NONE;
}
