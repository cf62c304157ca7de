// Pools: POOL_SIZE bytes of blocks of one size class behind a pool header.
//
// ╒═══════════════════ Pool header (32 bytes = POOL_OVERHEAD) ═══════════════════╕
//  +0   count          u32     blocks handed out and not yet freed (ref.count)
//  +4   freeblock      usize   first block of the pool's free list (linked through
//                              each free block's first word), 0 when the list is empty
//  +8   nextpool       usize   usedpools links while used; freepools link while empty
//  +12  prevpool       usize
//  +16  arenaindex     u32     index of the owning arena object
//  +20  szidx          u32     size class; NO_CLASS until the pool is first used
//  +24  nextoffset     u32     offset of the first never-used block
//  +28  maxnextoffset  u32     the largest offset at which a block still fits
// ╘══════════════════════════════════════════════════════════════════════════════╛
// POOL_OVERHEAD is the header rounded up to ALIGNMENT: 32 for both 8 and 16.
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

import { HEAP, USEDPOOLS_OFFSET, header, broken } from "../memory/header";
import { classSize } from "./sizeclass";

@unmanaged export class PoolHeader {
  count: u32;
  freeblock: usize;
  nextpool: usize;
  prevpool: usize;
  arenaindex: u32;
  szidx: u32;
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
}

// @ts-ignore: decorator
@inline export const POOL_OVERHEAD: u32 = <u32>offsetof<PoolHeader>();
/** szidx of a pool that has never held blocks. */
// @ts-ignore: decorator
@inline export const NO_CLASS: u32 = 0xffff;

// @ts-ignore: decorator
@inline export function usedpoolsHead(index: u32): PoolHeader {
  return changetype<PoolHeader>(
    HEAP + USEDPOOLS_OFFSET + (<usize>index << 3) - offsetof<PoolHeader>("nextpool"),
  );
}

// @ts-ignore: decorator
@inline export function poolOf(p: usize): PoolHeader {
  return changetype<PoolHeader>(p & ~((<usize>1 << header().poolShift) - 1));
}

/** Blocks of `size` bytes that fit in a pool. */
// @ts-ignore: decorator
@inline export function poolCapacity(size: u32): u32 {
  return ((1 << header().poolShift) - POOL_OVERHEAD) / size;
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

/** Links pool first on its class's usedpools list. */
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

/** A block of a pool that was full was freed: the pool is used again, first on its list. */
// @ts-ignore: decorator
@inline export function relinkFullPool(pool: PoolHeader): void {
  frontLinkPool(pool, usedpoolsHead(pool.szidx));
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
  let free: u32 = 0;
  for (let block = pool.freeblock; block; block = load<usize>(block)) {
    const offset = <u32>(block - address) - POOL_OVERHEAD;
    if (
      ++free > carved || block < address ||
      offset >= pool.nextoffset - POOL_OVERHEAD || offset % size != 0
    ) {
      return broken(PymallocBroken.POOL_FREE_LIST, block);
    }
  }
  if (pool.count + free != carved) return broken(PymallocBroken.POOL_FREE_LIST, address);
  // A pool whose free list is empty but has never-used blocks left would be stuck.
  if (pool.count && !free && pool.nextoffset <= pool.maxnextoffset) {
    return broken(PymallocBroken.POOL_FREE_LIST, address);
  }
  return PymallocBroken.NONE;
}
