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

import { HEAP, USEDPOOLS_OFFSET, CHECKED, header } from "./common";
import { classSize } from "./sizeclass";
import { ArenaObject, arenaObject, arenaGainedFreePool, takePool } from "./arena";
import { poolIsValid, arenaIsValid } from "./check";

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
@inline function unlinkPool(pool: PoolHeader): void {
  changetype<PoolHeader>(pool.nextpool).prevpool = pool.prevpool;
  changetype<PoolHeader>(pool.prevpool).nextpool = pool.nextpool;
}

/** Links pool first on its class's usedpools list. */
// @ts-ignore: decorator
@inline function frontLinkPool(pool: PoolHeader, head: PoolHeader): void {
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

/** The pool's last block was freed: move it from usedpools to its arena's freepools. */
export function emptyPool(pool: PoolHeader): void {
  if (CHECKED) assert(poolIsValid(pool, pool.arenaindex) == 0); // its free list holds every block
  unlinkPool(pool);
  const ao = arenaObject(pool.arenaindex);
  pool.nextpool = ao.freepools;
  ao.freepools = changetype<usize>(pool);
  arenaGainedFreePool(ao);
  if (CHECKED) assert(!ao.address || arenaIsValid(ao, pool.arenaindex) == 0); // unless released
}

/** The slow path of malloc: class `index` has no used pool. Returns a block, or 0. */
export function allocateFromNewPool(index: u32): usize {
  const taken = takePool();
  if (!taken) return 0;
  const pool = changetype<PoolHeader>(taken);
  frontLinkPool(pool, usedpoolsHead(index));
  pool.count = 1;
  if (pool.szidx == index) {
    // Reused for the class it last served: its free list is intact.
    const block = pool.freeblock;
    pool.freeblock = load<usize>(block);
    if (CHECKED) assert(pool.freeblock != 0); // a pool carves two blocks at once, all free now
    return block;
  }
  const size = classSize(index);
  pool.szidx = index;
  const block = changetype<usize>(pool) + POOL_OVERHEAD;
  pool.nextoffset = POOL_OVERHEAD + (size << 1);
  pool.maxnextoffset = (1 << header().poolShift) - size;
  pool.freeblock = block + size;
  store<usize>(pool.freeblock, 0);
  if (CHECKED) assert(poolIsValid(pool, pool.arenaindex) == 0); // freshly initialised
  return block;
}

/** True iff the arena object's bookkeeping says pool was carved from it and is in use. */
// @ts-ignore: decorator
@inline export function poolIsCarved(pool: PoolHeader, ao: ArenaObject): bool {
  const address = changetype<usize>(pool);
  return address >= ao.address && address < ao.poolAddress;
}
