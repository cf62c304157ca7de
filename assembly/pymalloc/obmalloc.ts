// malloc, free, realloc: PyObject_Malloc and friends.
//
// Requests of 1..smallThreshold bytes take the pymalloc fast path: the head of
// usedpools[class], pop its free list. Everything else (0 bytes, large requests) goes to the
// raw allocator. free() tells the two apart with address_in_range, which reads only the arena
// map, then validates the address against the pool's header and the block's state bits
// (pymalloc/pool.ts) before touching any list, so a bad address is reported and the heap is
// left as it was. The bits make every double free visible in O(1), in every build.
//
// Held blocks: the object layer marks the blocks it manages (objects, their item arrays)
// HELD. free and realloc refuse them (Status.OBJECT: objects die by decref); the object
// layer releases them with heldFree and resizes them with heldRealloc.

import {
  Status, CHECKED, MAX_SIZE_CLASSES, MAX_SMALL_THRESHOLD, MIN_POOL_SHIFT, MAX_ARENA_SHIFT,
  WASM_PAGE_SHIFT, MAX_WASM_PAGES, header, fail, broken, alignUp, callocBytes, STATIC_END, smallThreshold,
  poolShift, geometryIsBuilt,
} from "../memory/header";
import { sizeClassOf, classSize, isBlockMultiple, initSizeClasses } from "./sizeclass";
import {
  PoolHeader, PymallocBroken, POOL_OVERHEAD, ALLOCATED, HELD, STATE_MASK, usedpoolsHead, poolOf,
  extendFirstPool, relinkIfWasFull, unlinkPool, frontLinkPool, initUsedpools, poolIsValid,
  blockState,
  setBlockState, markAllocated, granuleOf, stateWord, stateShift, isGranuleStart,
} from "./pool";
import {
  ArenaObject, ARENA_OBJECT_SHIFT, addressInRange, arenaObject, arenaGainedFreePool, takePool,
  arenaIsValid, usableArenasAreValid,
} from "./arena";
import {
  rawInit, rawAlloc, rawFree, rawFreeHeld, rawRealloc, rawBlockStatus, rawUsableSize, RAW_HEADER,
  HELD as RAW_HELD,
} from "../raw/tlsf";

/**
 * Allocates a small block of class sizeClassOf(n), n in 1..smallThreshold, in `state`
 * (ALLOCATED, or ALLOCATED | HELD for the object layer). 0 if out of memory.
 */
// @ts-ignore: decorator
@inline function pymallocAlloc(n: usize, state: u32): usize {
  const index = sizeClassOf(n);
  const head = usedpoolsHead(index);
  const pool = changetype<PoolHeader>(head.nextpool);
  if (pool != head) {
    pool.count++;
    const block = pool.freeblock;
    const next = load<usize>(block);
    pool.freeblock = next;
    extendFirstPool(pool, head, next == 0, classSize(index));
    markAllocated(pool, block, state);
    return block;
  }
  const block = allocateFromNewPool(index, state);
  if (!block) fail(Status.OUT_OF_MEMORY, 0);
  return block;
}

/**
 * Why p, which lies in an arena, is not an allocated block; OK, or OBJECT for a held one.
 *
 * Tricky: the block bits decide alone. A granule's bits are non-zero iff a block starts there
 * and is handed out (pymalloc/pool.ts), so a granule-aligned address whose bits say ALLOCATED
 * is the start of a carved block of a used pool: what the checks of the pool header (count,
 * nextoffset, divisibility) would establish is implied, and they run only to say why an
 * address is refused. Only the pool itself must first be known to be carved, since a pool
 * never carved has a header of leftover bytes (its `bits` among them).
 */
// @ts-ignore: decorator
@inline function smallBlockStatus(p: usize, pool: PoolHeader): u32 {
  if (!poolIsKnown(pool)) return Status.NEVER_ALLOCATED;
  const state = blockState(pool, p);
  if (state == ALLOCATED) return Status.OK;
  if (state == (ALLOCATED | HELD)) return Status.OBJECT;
  return refusal(p, pool, state, ALLOCATED);
}

/**
 * True iff pool, which lies in an arena, is one its arena has carved: its `bits` is set, which
 * only takePool does (newArena clears it in every pool of a new arena, pymalloc/arena.ts). The
 * free path loads `bits` anyway, so the test costs one compare.
 */
// @ts-ignore: decorator
@inline function poolIsKnown(pool: PoolHeader): bool {
  return pool.bits != 0;
}

/**
 * Why the block at p, in a carved pool, with state bits `state`, is not what a caller that
 * needs `expected` (ALLOCATED, or ALLOCATED | HELD) can take; OK if it is. The slow path.
 */
function refusal(p: usize, pool: PoolHeader, state: u32, expected: u32): u32 {
  if (state == expected) return Status.OK;
  if (state == (ALLOCATED | HELD)) return Status.OBJECT;
  if (state == ALLOCATED) return Status.NOT_ALLOCATED; // not held, to a caller that needs it held
  if (!pool.count) return Status.EMPTY_POOL;
  const offset = <u32>(p - changetype<usize>(pool)) - POOL_OVERHEAD;
  if (offset >= pool.nextoffset - POOL_OVERHEAD) return Status.NEVER_ALLOCATED;
  if (!isBlockMultiple(offset, pool.szidx)) {
    const size = classSize(pool.szidx);
    const block = changetype<usize>(pool) + POOL_OVERHEAD + offset - offset % size;
    return blockState(pool, block) & HELD ? Status.INSIDE_OBJECT : Status.MISALIGNED;
  }
  return Status.DOUBLE_FREE;
}

/** Why p is not a block this heap handed out (and still has out), or OK; OBJECT if it is held. */
export function blockStatus(p: usize): u32 {
  if (addressInRange(p)) return smallBlockStatus(p, poolOf(p));
  return rawBlockStatus(p);
}

/** PyObject_Malloc: a block of at least n bytes, or 0 (lastError says why). */
export function objectMalloc(n: usize): usize {
  if (n - 1 < <usize>smallThreshold()) return pymallocAlloc(n, ALLOCATED);
  return rawAlloc(n, 0);
}

/** objectMalloc for the object layer: the block comes held (see the top of the file). */
export function heldMalloc(n: usize): usize {
  if (n - 1 < <usize>smallThreshold()) return pymallocAlloc(n, ALLOCATED | HELD);
  return rawAlloc(n, RAW_HELD);
}

/** PyObject_Calloc: count * size zeroed bytes, or 0. */
export function objectCalloc(count: usize, size: usize): usize {
  const bytes = callocBytes(count, size);
  if (bytes < 0) return 0;
  const p = objectMalloc(<usize>bytes);
  if (p) memory.fill(p, 0, <usize>bytes);
  return p;
}

/**
 * PyObject_Free: OK, or why p is not an allocated block (the heap is then unchanged). A held
 * block is refused with OBJECT.
 */
export function objectFree(p: usize): u32 {
  if (!p) return Status.OK;
  if (!addressInRange(p)) return rawFree(p);
  return freeSmallBlock(p, ALLOCATED);
}

/** Frees a held block (an object's, through the object layer): OK, or why p is not one. */
export function heldFree(p: usize): u32 {
  if (!addressInRange(p)) return rawFreeHeld(p);
  return freeSmallBlock(p, ALLOCATED | HELD);
}

/**
 * Frees the small block p if it is a block whose state is `expected`: OK, or why not. The
 * bits decide (see smallBlockStatus); the state word is loaded and stored once.
 */
// @ts-ignore: decorator
@inline function freeSmallBlock(p: usize, expected: u32): u32 {
  const pool = poolOf(p);
  if (!poolIsKnown(pool)) return fail(Status.NEVER_ALLOCATED, p);
  if (!isGranuleStart(p)) return fail(refusal(p, pool, 0, expected), p);
  const g = granuleOf(pool, p);
  const word = stateWord(pool, g);
  const shift = stateShift(g);
  const bits = load<u32>(word);
  const state = (bits >> shift) & STATE_MASK;
  if (state != expected) return fail(refusal(p, pool, state, expected), p);
  store<u32>(word, bits ^ (state << shift));
  pushFreeBlock(p, pool);
  return Status.OK;
}

/** What the debug hooks fill freed blocks with (debug/hooks.ts, where the layout is drawn). */
// @ts-ignore: decorator
@inline const DEAD: u8 = 0xdd;

/** Puts the block p, its state cleared, back on its pool's free list, moving the pool as the policy says. */
// @ts-ignore: decorator
@inline function pushFreeBlock(p: usize, pool: PoolHeader): void {
  const lastfree = pool.freeblock;
  store<usize>(p, lastfree);
  pool.freeblock = p;
  const count = pool.count - 1;
  pool.count = count;
  relinkIfWasFull(pool, !lastfree);
  // A pool that was full holds at least two blocks, so it is not empty now.
  if (!count) emptyPool(pool);
}

/** Bytes the block at p (held or not) can hold, or 0 (lastError says why p is not a block). */
export function usableSize(p: usize): usize {
  const small = addressInRange(p);
  const status = small ? smallBlockStatus(p, poolOf(p)) : rawBlockStatus(p);
  if (status != Status.OK && status != Status.OBJECT) {
    fail(status, p);
    return 0;
  }
  return small ? <usize>classSize(poolOf(p).szidx) : rawUsableSize(p);
}

/**
 * PyObject_Realloc. A small block stays put when n fits its class and would not fit a class
 * at least 25% smaller; otherwise it moves (to the raw allocator when n is 0 or large). A raw
 * block stays with the raw allocator whatever n is, as in CPython. Returns the new address,
 * or 0 with p untouched (lastError says why). A held block is refused with OBJECT.
 */
export function objectRealloc(p: usize, n: usize): usize {
  if (!p) return objectMalloc(n);
  return reallocBlock(p, n, Status.OK);
}

/** realloc for the object layer's held blocks: the block stays held; p == 0 allocates one. */
export function heldRealloc(p: usize, n: usize): usize {
  if (!p) return heldMalloc(n);
  return reallocBlock(p, n, Status.OBJECT);
}

/** Resizes p, whose blockStatus must be `expected` (OK, or OBJECT for a held block). */
function reallocBlock(p: usize, n: usize, expected: u32): usize {
  const small = addressInRange(p);
  const status = small ? smallBlockStatus(p, poolOf(p)) : rawBlockStatus(p);
  if (status != expected) {
    fail(status == Status.OK ? Status.NOT_ALLOCATED : status, p);
    return 0;
  }
  if (!small) return rawRealloc(p, n);
  const pool = poolOf(p);
  let keep: usize = classSize(pool.szidx);
  if (n <= keep) {
    if ((n << 2) > keep * 3) return p;
    keep = n;
  }
  const q = expected == Status.OBJECT ? heldMalloc(n) : objectMalloc(n);
  if (!q) return 0;
  memory.copy(q, p, keep);
  setBlockState(pool, p, 0);
  pushFreeBlock(p, pool);
  return q;
}

/**
 * Places the heap's first arena `pools` pools (less than poolsPerArena) further into memory
 * than it would go, so that heaps set up alike do not put their blocks at the same addresses
 * (src/heap/heap.ts gives each heap its own). Only before the first arena is made.
 */
export function placeFirstArena(pools: u32): void {
  const hdr = header();
  if (!hdr.ntimesArenaAllocated) hdr.firstArenaSkew = pools % hdr.poolsPerArena;
}

/**
 * Sets the heap up in this instance's memory. Returns OK, BAD_GEOMETRY if the geometry
 * breaks an invariant (memory/header.ts), or OUT_OF_MEMORY if maxPages cannot hold the arena map.
 */
export function heapInit(
  alignmentShift: u32, smallThreshold: u32, poolShift: u32, arenaShift: u32, maxPages: u32,
): u32 {
  const alignment: u32 = 1 << (alignmentShift & 31);
  if (
    alignmentShift < 3 || alignmentShift > 4 ||
    smallThreshold < alignment || smallThreshold > MAX_SMALL_THRESHOLD ||
    (smallThreshold & (alignment - 1)) != 0 ||
    poolShift < MIN_POOL_SHIFT || poolShift > arenaShift ||
    arenaShift < WASM_PAGE_SHIFT || arenaShift > MAX_ARENA_SHIFT ||
    POOL_OVERHEAD + smallThreshold > (<u32>1 << poolShift) ||
    !geometryIsBuilt(alignmentShift, smallThreshold, poolShift, arenaShift)
  ) {
    return fail(Status.BAD_GEOMETRY, 0);
  }
  const hdr = header();
  hdr.alignmentShift = alignmentShift;
  hdr.smallThreshold = smallThreshold;
  hdr.numClasses = smallThreshold >> alignmentShift;
  hdr.poolShift = poolShift;
  hdr.arenaShift = arenaShift;
  hdr.poolsPerArena = 1 << (arenaShift - poolShift);
  // One page short of 4 GiB, so that the end of memory is still a u32.
  hdr.maxPages = min(maxPages, MAX_WASM_PAGES - 1);
  if (CHECKED) assert(hdr.numClasses <= MAX_SIZE_CLASSES); // implied by the threshold's bound
  initSizeClasses();
  initUsedpools();

  // Past the static data: the arena map, then nfp2lasta; the raw allocator manages all that
  // follows.
  if (STATIC_END > <usize>ASC_MEMORY_BASE) ERROR("asconfig.json: memoryBase must be at least memory/header.ts's STATIC_END");
  const mapBytes = <usize>8 << (32 - arenaShift);
  hdr.arenaMap = alignUp(__heap_base, 16);
  hdr.nfp2lasta = hdr.arenaMap + mapBytes;
  const staticEnd = hdr.nfp2lasta + ((<usize>hdr.poolsPerArena + 1) << 2);
  if (!rawInit(alignUp(staticEnd, 16) + RAW_HEADER)) return fail(Status.OUT_OF_MEMORY, 0);
  return Status.OK;
}

/** The pool's last block was freed: move it from usedpools to its arena's freepools. */
function emptyPool(pool: PoolHeader): void {
  if (CHECKED) assert(poolIsValid(pool, pool.arenaindex) == 0); // its free list holds every block
  unlinkPool(pool);
  const ao = arenaObject(pool.arenaindex);
  pool.nextpool = ao.freepools;
  ao.freepools = changetype<usize>(pool);
  arenaGainedFreePool(ao);
  if (CHECKED) assert(!ao.address || arenaIsValid(ao, pool.arenaindex) == 0); // unless released
}

/** The slow path of malloc: class `index` has no used pool. Returns a block, or 0. */
function allocateFromNewPool(index: u32, state: u32): usize {
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
    markAllocated(pool, block, state);
    return block;
  }
  const size = classSize(index);
  pool.szidx = <u16>index;
  const block = changetype<usize>(pool) + POOL_OVERHEAD;
  pool.nextoffset = POOL_OVERHEAD + (size << 1);
  pool.maxnextoffset = (1 << poolShift()) - size;
  // Under the debug hooks every free block of a pool is DEAD (debug/hooks.ts): the two blocks
  // carved here start so, whatever the memory held before.
  if (header().debugFlags) memory.fill(block, DEAD, size << 1);
  pool.freeblock = block + size;
  store<usize>(pool.freeblock, 0);
  markAllocated(pool, block, state);
  if (CHECKED) assert(poolIsValid(pool, pool.arenaindex) == 0); // freshly initialised
  return block;
}

/** The usedpools list of each class: well linked, and holding exactly the `usedPools` used pools. */
function usedpoolsAreValid(usedPools: u32): u32 {
  const hdr = header();
  let listed: u32 = 0;
  for (let index: u32 = 0; index < hdr.numClasses; index++) {
    const head = usedpoolsHead(index);
    let prev = changetype<usize>(head);
    for (let pool = head.nextpool; pool != changetype<usize>(head); pool = changetype<PoolHeader>(pool).nextpool) {
      const p = changetype<PoolHeader>(pool);
      if (
        ++listed > usedPools || !addressInRange(pool) || p.prevpool != prev ||
        p.szidx != index || !p.count || !p.freeblock
      ) {
        return broken(PymallocBroken.USEDPOOLS, pool);
      }
      prev = pool;
    }
    if (head.prevpool != prev) return broken(PymallocBroken.USEDPOOLS, changetype<usize>(head));
  }
  if (listed != usedPools) return broken(PymallocBroken.USEDPOOLS, 0);
  return PymallocBroken.NONE;
}

/**
 * pymalloc as a whole: every arena object (attached ones valid, the rest on the unused list),
 * the arena counters, usedpools and usable_arenas.
 */
export function pymallocIsValid(): u32 {
  const hdr = header();
  const poolSize: usize = <usize>1 << hdr.poolShift;
  let attached: u32 = 0, usable: u32 = 0, usedPools: u32 = 0;
  for (let i: u32 = 0; i < hdr.maxArenas; i++) {
    const ao = arenaObject(i);
    if (!ao.address) continue;
    attached++;
    if (ao.nfreepools) usable++;
    const status = arenaIsValid(ao, i);
    if (status != PymallocBroken.NONE) return status;
    for (let pool = ao.address; pool < ao.poolAddress; pool += poolSize) {
      const p = changetype<PoolHeader>(pool);
      if (p.count && p.freeblock) usedPools++;
    }
  }
  if (
    attached != hdr.narenasCurrentlyAllocated || hdr.narenasHighwater < attached ||
    hdr.ntimesArenaAllocated < attached
  ) {
    return broken(PymallocBroken.ARENA_COUNTERS, 0);
  }
  let unused: u32 = 0;
  for (let a = hdr.unusedArenaObjects; a; a = changetype<ArenaObject>(a).nextarena) {
    const offset = a - hdr.arenas;
    if (
      ++unused > hdr.maxArenas - attached || offset >= (<usize>hdr.maxArenas << ARENA_OBJECT_SHIFT) ||
      (offset & ((1 << ARENA_OBJECT_SHIFT) - 1)) != 0 || changetype<ArenaObject>(a).address
    ) {
      return broken(PymallocBroken.UNUSED_ARENAS, a);
    }
  }
  if (unused != hdr.maxArenas - attached) return broken(PymallocBroken.UNUSED_ARENAS, 0);
  const status = usedpoolsAreValid(usedPools);
  if (status != PymallocBroken.NONE) return status;
  return usableArenasAreValid(usable);
}
