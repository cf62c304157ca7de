// malloc, free, realloc: PyObject_Malloc and friends.
//
// Requests of 1..smallThreshold bytes take the pymalloc fast path: the head of
// usedpools[class], pop its free list. Everything else (0 bytes, large requests) goes to the
// raw allocator. free() tells the two apart with address_in_range, which reads only the arena
// map, then validates the address against the pool's header before touching any list, so a
// bad address is reported and the heap is left as it was.

import {
  Status, CHECKED, MAX_SIZE_CLASSES, MAX_SMALL_THRESHOLD, MIN_POOL_SHIFT, MAX_ARENA_SHIFT,
  WASM_PAGE_SHIFT, MAX_WASM_PAGES, header, fail, alignUp,
} from "./common";
import { sizeClassOf, classSize, isBlockMultiple, initSizeClasses } from "./sizeclass";
import {
  PoolHeader, POOL_OVERHEAD, usedpoolsHead, poolOf, extendPool, relinkFullPool, emptyPool,
  allocateFromNewPool, initUsedpools, poolIsCarved,
} from "./pool";
import { addressInRange, arenaObject } from "./arena";
import {
  rawInit, rawAlloc, rawFree, rawRealloc, rawBlockStatus, rawUsableSize, RAW_HEADER,
} from "./raw";

/** Allocates a small block of class sizeClassOf(n); n in 1..smallThreshold. 0 if out of memory. */
// @ts-ignore: decorator
@inline function pymallocAlloc(n: usize): usize {
  const index = sizeClassOf(n);
  const head = usedpoolsHead(index);
  const pool = changetype<PoolHeader>(head.nextpool);
  if (pool != head) {
    pool.count++;
    const block = pool.freeblock;
    const next = load<usize>(block);
    pool.freeblock = next;
    if (!next) extendPool(pool, classSize(index));
    return block;
  }
  const block = allocateFromNewPool(index);
  if (!block) fail(Status.OUT_OF_MEMORY, 0);
  return block;
}

/** Why p, which lies in an arena, is not an allocated block; or OK. */
// @ts-ignore: decorator
@inline function smallBlockStatus(p: usize, pool: PoolHeader): u32 {
  const arenaindex = pool.arenaindex;
  // A pool that was never carved has a header of leftover bytes: trust nothing in it until
  // the arena object named by arenaindex confirms the pool is one of its own.
  if (arenaindex >= header().maxArenas || !poolIsCarved(pool, arenaObject(arenaindex))) {
    return Status.NEVER_ALLOCATED;
  }
  if (!pool.count) return Status.EMPTY_POOL;
  const offset = <u32>(p - changetype<usize>(pool)) - POOL_OVERHEAD;
  if (offset >= pool.nextoffset - POOL_OVERHEAD) return Status.NEVER_ALLOCATED;
  if (!isBlockMultiple(offset, pool.szidx)) return Status.MISALIGNED;
  if (p == pool.freeblock) return Status.DOUBLE_FREE;
  if (CHECKED) {
    // The debug build finds every double free: the free list is at most a pool long.
    for (let block = pool.freeblock; block; block = load<usize>(block)) {
      if (block == p) return Status.DOUBLE_FREE;
    }
  }
  return Status.OK;
}

/** Why p is not a block this heap handed out (and still holds), or OK. */
export function blockStatus(p: usize): u32 {
  if (addressInRange(p)) return smallBlockStatus(p, poolOf(p));
  return rawBlockStatus(p);
}

/** PyObject_Malloc: a block of at least n bytes, or 0 (lastError says why). */
export function objectMalloc(n: usize): usize {
  if (n - 1 < <usize>header().smallThreshold) return pymallocAlloc(n);
  return rawAlloc(n, 0);
}

/** PyObject_Calloc: count * size zeroed bytes, or 0. */
export function objectCalloc(count: usize, size: usize): usize {
  const bytes = <u64>count * <u64>size;
  if (bytes > <u64>u32.MAX_VALUE) {
    fail(Status.OUT_OF_MEMORY, 0);
    return 0;
  }
  const p = objectMalloc(<usize>bytes);
  if (p) memory.fill(p, 0, <usize>bytes);
  return p;
}

/** PyObject_Free: OK, or why p is not an allocated block (the heap is then unchanged). */
export function objectFree(p: usize): u32 {
  if (!p) return Status.OK;
  if (!addressInRange(p)) return rawFree(p);
  const pool = poolOf(p);
  const status = smallBlockStatus(p, pool);
  if (status != Status.OK) return fail(status, p);
  const lastfree = pool.freeblock;
  store<usize>(p, lastfree);
  pool.freeblock = p;
  const count = pool.count - 1;
  pool.count = count;
  if (!lastfree) {
    // It was full; a full pool holds at least two blocks, so it cannot be empty now.
    relinkFullPool(pool);
    return Status.OK;
  }
  if (!count) emptyPool(pool);
  return Status.OK;
}

/** Bytes the block at p can hold, or 0 (lastError says why p is not a block). */
export function usableSize(p: usize): usize {
  const small = addressInRange(p);
  const status = small ? smallBlockStatus(p, poolOf(p)) : rawBlockStatus(p);
  if (status != Status.OK) {
    fail(status, p);
    return 0;
  }
  return small ? classSize(poolOf(p).szidx) : rawUsableSize(p);
}

/**
 * PyObject_Realloc. A small block stays put when n fits its class and would not fit a class
 * at least 25% smaller; otherwise it moves (to the raw allocator when n is 0 or large). A raw
 * block stays with the raw allocator whatever n is, as in CPython. Returns the new address,
 * or 0 with p untouched (lastError says why).
 */
export function objectRealloc(p: usize, n: usize): usize {
  if (!p) return objectMalloc(n);
  const small = addressInRange(p);
  const status = small ? smallBlockStatus(p, poolOf(p)) : rawBlockStatus(p);
  if (status != Status.OK) {
    fail(status, p);
    return 0;
  }
  if (!small) return rawRealloc(p, n);
  let keep: usize = classSize(poolOf(p).szidx);
  if (n <= keep) {
    if ((n << 2) > keep * 3) return p;
    keep = n;
  }
  const q = objectMalloc(n);
  if (!q) return 0;
  memory.copy(q, p, keep);
  objectFree(p);
  return q;
}

/**
 * Sets the heap up in this instance's memory. Returns OK, BAD_GEOMETRY if the geometry
 * breaks an invariant (common.ts), or OUT_OF_MEMORY if maxPages cannot hold the arena map.
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
    POOL_OVERHEAD + smallThreshold > (<u32>1 << poolShift)
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

  // Static memory: the arena map, then nfp2lasta; the raw allocator manages all that follows.
  const mapBytes = <usize>8 << (32 - arenaShift);
  hdr.arenaMap = alignUp(__heap_base, 16);
  hdr.nfp2lasta = hdr.arenaMap + mapBytes;
  const staticEnd = hdr.nfp2lasta + ((<usize>hdr.poolsPerArena + 1) << 2);
  if (!rawInit(alignUp(staticEnd, 16) + RAW_HEADER)) return fail(Status.OUT_OF_MEMORY, 0);
  return Status.OK;
}

