// The raw allocator: CPython's "system malloc" for this heap.
//
// It serves requests of 0 or > smallThreshold bytes, and it is where arenas come from, so
// that a released arena's memory is reusable for new arenas and for large blocks alike, and
// only one allocator ever calls memory.grow. It is a two-level segregated fit (TLSF: Masmano
// et al., 2004) over boundary-tagged blocks: O(1) malloc and free, immediate coalescing.
//
// Memory it manages runs from dynamicBase to the end of linear memory, tiled by blocks and
// closed by a sentinel: a zero-sized block in the last 8 bytes that is never free. Growing
// memory turns the old sentinel into a free block and writes a new one at the new end. If
// something else grew memory in between, the new memory is a region of its own: the old
// sentinel stays, its guard word pointing at the new region's first block (0 in the last).
//
// ╒════════════════ Raw block (b ≡ 8 mod 16; sizes are multiples of 16) ════════════════╕
//  b+0   info    u32   block size in bytes, header included | HELD | INTERNAL | PREV_FREE | FREE
//  b+4   guard   u32   b ^ RAW_GUARD while the block is allocated, 0 once freed
//  b+8   payload       16-byte aligned; what rawAlloc returns
//        if free:  b+8 next free block in its list, b+12 previous one,
//                  b+size-4 back pointer to b (read by the next block when it coalesces)
// ╘═════════════════════════════════════════════════════════════════════════════════════╛
// FREE: on a free list. PREV_FREE: the block before this one is free. INTERNAL: allocated
// for the heap itself (an arena, the arena objects), never by a caller. HELD: a caller's
// block that the object layer holds (an object, or an object's items): rawFree refuses it,
// only rawFreeHeld releases it.
//
// Headers sit between payloads, so a write past the end of a block lands on the next block's
// header. Every free checks the headers it is about to merge with (neighbourIsIntact) and
// reports an overrun instead of following a smashed link.
//
// ╒═════════════ Raw root (HEAP + RAW_ROOT_OFFSET) ═════════════╕
//  +0       flMap          bit f set iff some slMap[f] != 0
//  +4       slMap[25]      bit s of slMap[f] set iff head(f, s) != 0
//  +104     head[25][16]   first free block of each (first, second) level list
// ╘═════════════════════════════════════════════════════════════╛
// First level f covers sizes [2^(f+7), 2^(f+8)) for f >= 1 and [0, 256) for f = 0; each is
// split into 16 second-level lists of equal width. Invariant: no two adjacent blocks are free.

import {
  HEAP, RAW_ROOT_OFFSET, RAW_ROOT_BYTES, WASM_PAGE_SHIFT, Status, CHECKED, header, fail, broken, corrupt,
  alignUp, FREE_THREADED,
} from "../memory/header";
import { heapLock, heapUnlock, LOCK_BYTES } from "../memory/lock";

// @ts-ignore: decorator
@inline export const FREE: u32 = 1;
// @ts-ignore: decorator
@inline const PREV_FREE: u32 = 2;
// @ts-ignore: decorator
@inline export const INTERNAL: u32 = 4;
// @ts-ignore: decorator
@inline export const HELD: u32 = 8;
// @ts-ignore: decorator
@inline const SIZE_MASK: u32 = ~15;

// @ts-ignore: decorator
@inline export const RAW_HEADER: usize = 8;
// @ts-ignore: decorator
@inline const GRANULE: usize = 16;
/** Room for next, prev and the back pointer once free. */
// @ts-ignore: decorator
@inline const MIN_BLOCK: usize = 32;
// @ts-ignore: decorator
@inline const RAW_GUARD: u32 = 0x9e3779b1;
/** Larger requests fail at once: a block this big could never fit in 4 GiB next to the header. */
// @ts-ignore: decorator
@inline export const MAX_RAW_REQUEST: usize = 0xf000_0000;

/** Memory grows by at least committed / GROWTH_FRACTION at a time. */
// @ts-ignore: decorator
@inline const GROWTH_FRACTION: u32 = 8;

// @ts-ignore: decorator
@inline const SL_BITS: u32 = 4;
// @ts-ignore: decorator
@inline const SL_COUNT: u32 = 1 << SL_BITS;
// @ts-ignore: decorator
@inline const FL_COUNT: u32 = 25;
/** Sizes below this are one first-level list of 16-byte steps. */
// @ts-ignore: decorator
@inline const SMALL_BLOCK: u32 = 256;

// @ts-ignore: decorator
@inline const ROOT: usize = HEAP + RAW_ROOT_OFFSET;
// @ts-ignore: decorator
@inline const SL_MAP: usize = ROOT + 4;
// @ts-ignore: decorator
@inline const HEADS: usize = SL_MAP + FL_COUNT * 4;
// @ts-ignore: decorator
@inline const ROOT_BYTES: usize = HEADS + FL_COUNT * SL_COUNT * sizeof<usize>() - ROOT;

// @ts-ignore: decorator
@inline export function blockInfo(b: usize): u32 { return load<u32>(b); }
// @ts-ignore: decorator
@inline export function blockSize(b: usize): usize { return load<u32>(b) & SIZE_MASK; }
// @ts-ignore: decorator
@inline function setInfo(b: usize, info: u32): void { store<u32>(b, info); }
// @ts-ignore: decorator
@inline function blockGuardOk(b: usize): bool { return load<u32>(b, 4) == (<u32>b ^ RAW_GUARD); }
// @ts-ignore: decorator
@inline function setGuard(b: usize): void { store<u32>(b, <u32>b ^ RAW_GUARD, 4); }
// @ts-ignore: decorator
@inline function clearGuard(b: usize): void { store<u32>(b, 0, 4); }
// @ts-ignore: decorator
@inline function nextFree(b: usize): usize { return load<usize>(b, 8); }
// @ts-ignore: decorator
@inline function prevFree(b: usize): usize { return load<usize>(b, 12); }
// @ts-ignore: decorator
@inline function backPointer(b: usize): usize { return load<usize>(b - 4); }
// @ts-ignore: decorator
@inline function setBackPointer(b: usize, size: usize): void { store<usize>(b + size - 4, b); }

/** End of linear memory; the sentinel sits in its last RAW_HEADER bytes. */
// @ts-ignore: decorator
@inline function sentinel(): usize {
  return (<usize>header().committedPages << WASM_PAGE_SHIFT) - RAW_HEADER;
}

// @ts-ignore: decorator
@inline function flMap(): u32 { return load<u32>(ROOT); }
// @ts-ignore: decorator
@inline function slMap(fl: u32): u32 { return load<u32>(SL_MAP + (<usize>fl << 2)); }
// @ts-ignore: decorator
@inline function headOf(fl: u32, sl: u32): usize {
  return load<usize>(HEADS + ((<usize>fl * SL_COUNT + sl) << 2));
}
// @ts-ignore: decorator
@inline function setHead(fl: u32, sl: u32, b: usize): void {
  store<usize>(HEADS + ((<usize>fl * SL_COUNT + sl) << 2), b);
}

/** The (first, second) level list a free block of `size` bytes belongs on, packed fl << 8 | sl. */
// @ts-ignore: decorator
@inline function listOf(size: usize): u32 {
  if (size < SMALL_BLOCK) return <u32>size >> 4;
  const f = 31 - clz<u32>(<u32>size);
  return ((f - 7) << 8) | ((<u32>size >> (f - SL_BITS)) & (SL_COUNT - 1));
}

/** Rounds a block size up so that every block on its list (and the lists above) fits it. */
// @ts-ignore: decorator
@inline function searchSize(size: usize): usize {
  if (size < SMALL_BLOCK) return size;
  return size + (<usize>1 << (31 - clz<u32>(<u32>size) - SL_BITS)) - 1;
}

function insertFree(b: usize): void {
  const size = blockSize(b);
  const list = listOf(size);
  const fl = list >> 8, sl = list & 0xff;
  const head = headOf(fl, sl);
  store<usize>(b, head, 8);
  store<usize>(b, 0, 12);
  if (head) store<usize>(head, b, 12);
  setHead(fl, sl, b);
  store<u32>(ROOT, flMap() | (1 << fl));
  store<u32>(SL_MAP + (<usize>fl << 2), slMap(fl) | (1 << sl));
  header().rawFreeBytes += <u32>size;
}

function removeFree(b: usize): void {
  const size = blockSize(b);
  const list = listOf(size);
  const fl = list >> 8, sl = list & 0xff;
  const next = nextFree(b), prev = prevFree(b);
  if (next) store<usize>(next, prev, 12);
  if (prev) store<usize>(prev, next, 8);
  else {
    setHead(fl, sl, next);
    if (!next) {
      const slBits = slMap(fl) & ~(1 << sl);
      store<u32>(SL_MAP + (<usize>fl << 2), slBits);
      if (!slBits) store<u32>(ROOT, flMap() & ~(1 << fl));
    }
  }
  header().rawFreeBytes -= <u32>size;
}

/** A free block of at least `size` bytes, still on its list, or 0. */
function findFree(size: usize): usize {
  const list = listOf(searchSize(size));
  let fl = list >> 8;
  let slBits = slMap(fl) & (~0 << (list & 0xff));
  if (!slBits) {
    const flBits = flMap() & (~0 << (fl + 1));
    if (!flBits) return 0;
    fl = ctz<u32>(flBits);
    slBits = slMap(fl);
  }
  return headOf(fl, ctz<u32>(slBits));
}

/** Marks a free block of the sentinel-closed tiling as free: flags, back pointer, list. */
function makeFree(b: usize, size: usize, prevFlag: u32): void {
  setInfo(b, <u32>size | FREE | prevFlag);
  clearGuard(b);
  setBackPointer(b, size);
  insertFree(b);
}

/**
 * Grows linear memory so that a free block of at least `size` bytes ends at the sentinel.
 * Memory grows by at least 1/GROWTH_FRACTION of what is committed: each memory.grow costs
 * hundreds of microseconds in V8, so growing page by page would dominate a growing workload.
 */
function grow(size: usize): bool {
  const hdr = header();
  const oldSentinel = sentinel();
  const current = <u32>memory.size();
  // Someone else (an embedder sharing the memory) may have grown memory since we last did:
  // then the new memory starts a region of its own, linked from the old region's sentinel.
  const contiguous = current == hdr.committedPages;
  const oldInfo = blockInfo(oldSentinel);
  let have: usize = 0;
  if (contiguous && (oldInfo & PREV_FREE)) have = blockSize(backPointer(oldSentinel));
  const need = contiguous ? size - have : size + 2 * RAW_HEADER;
  const minPages = <u32>((need + 0xffff) >> WASM_PAGE_SHIFT);
  if (<u64>current + minPages > <u64>hdr.maxPages) return false;
  let pages = min(max(minPages, current / GROWTH_FRACTION), hdr.maxPages - current);
  let first = memory.grow(pages);
  if (first < 0 && pages > minPages) first = memory.grow(pages = minPages);
  if (first < 0) return false;
  hdr.committedPages = current + pages;
  if (hdr.committedPages > hdr.peakCommittedPages) hdr.peakCommittedPages = hdr.committedPages;

  let b: usize, blockBytes: usize;
  if (contiguous) {
    b = oldSentinel;
    blockBytes = <usize>pages << WASM_PAGE_SHIFT;
    if (oldInfo & PREV_FREE) {
      b = backPointer(oldSentinel);
      removeFree(b);
      blockBytes += blockSize(b);
    }
  } else {
    b = (<usize>first << WASM_PAGE_SHIFT) + RAW_HEADER;
    blockBytes = (<usize>pages << WASM_PAGE_SHIFT) - 2 * RAW_HEADER;
    store<usize>(oldSentinel, b, 4);
  }
  const newSentinel = sentinel();
  setInfo(newSentinel, PREV_FREE);
  clearGuard(newSentinel);
  makeFree(b, blockBytes, 0);
  return true;
}

/** Takes `size` bytes from the front of free block b (already off its list); frees the rest. */
function useBlock(b: usize, size: usize, flags: u32): void {
  const info = blockInfo(b);
  let bytes = <usize>(info & SIZE_MASK);
  const rest = bytes - size;
  if (rest >= MIN_BLOCK) {
    makeFree(b + size, rest, 0);
    bytes = size;
  } else {
    const next = b + bytes;
    setInfo(next, blockInfo(next) & ~PREV_FREE);
  }
  setInfo(b, <u32>bytes | (info & PREV_FREE) | flags);
  setGuard(b);
}

/**
 * True iff the header at n, which follows a block, is one this allocator wrote: a sentinel
 * (the last, or one linking to a region further up), a free block whose back pointer names
 * it, or an allocated block with its guard. Reads nothing outside [n, sentinel].
 */
function neighbourIsIntact(n: usize): bool {
  const info = blockInfo(n);
  const size = <usize>(info & SIZE_MASK);
  if (!size) {
    const link = <usize>load<u32>(n, 4);
    return (info & ~PREV_FREE) == 0 && (n == sentinel() || (link > n && link < sentinel()));
  }
  if (size < MIN_BLOCK || size > sentinel() - n) return false;
  if (info & FREE) return load<u32>(n, 4) == 0 && backPointer(n + size) == n;
  return blockGuardOk(n);
}

/** True iff b's back pointer names a free block that ends exactly at b. */
function previousIsIntact(b: usize): bool {
  const prev = backPointer(b);
  if (prev < header().dynamicBase || prev > b - MIN_BLOCK || (prev & (GRANULE - 1)) != RAW_HEADER) return false;
  const info = blockInfo(prev);
  return (info & FREE) != 0 && load<u32>(prev, 4) == 0 && prev + <usize>(info & SIZE_MASK) == b;
}

/**
 * Frees block b: coalesces it with free neighbours and puts the result on its list. A
 * neighbour's header that this allocator did not write (an overrun) stops it first.
 */
function releaseBlock(b: usize): void {
  const info = blockInfo(b);
  let size = <usize>(info & SIZE_MASK);
  if (!neighbourIsIntact(b + size) || ((info & PREV_FREE) != 0 && !previousIsIntact(b))) {
    corrupt(RawBroken.OVERRUN, b);
  }
  // Leave a freed header behind, so that freeing it again is recognised even after a merge.
  setInfo(b, <u32>size | FREE | (info & PREV_FREE));
  clearGuard(b);
  const next = b + size;
  const nextInfo = blockInfo(next);
  if (nextInfo & FREE) {
    removeFree(next);
    size += nextInfo & SIZE_MASK;
  }
  if (info & PREV_FREE) {
    const prev = backPointer(b);
    removeFree(prev);
    size += blockSize(prev);
    b = prev;
  }
  const after = b + size;
  setInfo(after, blockInfo(after) | PREV_FREE);
  makeFree(b, size, 0);
}

// @ts-ignore: decorator
@inline function blockBytesFor(n: usize): usize {
  const bytes = alignUp(n + RAW_HEADER, GRANULE);
  return bytes < MIN_BLOCK ? MIN_BLOCK : bytes;
}

/** A free block of at least `size` bytes, taken off its list, growing memory if need be; or 0. */
function takeFree(size: usize): usize {
  let b = findFree(size);
  if (!b) {
    if (!grow(searchSize(size))) return 0;
    b = findFree(size);
  }
  removeFree(b);
  return b;
}

/** Why p is not the payload of a caller's raw block; OK, or OBJECT for a held one. */
function rawBlockStatusAt(p: usize): u32 {
  const hdr = header();
  if ((p & (GRANULE - 1)) != 0 || p < hdr.dynamicBase + RAW_HEADER || p >= sentinel()) {
    return Status.NOT_ALLOCATED;
  }
  const b = p - RAW_HEADER;
  const info = blockInfo(b);
  if (!blockGuardOk(b)) {
    return (info & FREE) != 0 && load<u32>(b, 4) == 0 ? Status.DOUBLE_FREE : Status.NOT_ALLOCATED;
  }
  if (info & (FREE | INTERNAL)) return Status.NOT_ALLOCATED;
  const size = <usize>(info & SIZE_MASK);
  if (size < MIN_BLOCK || size > sentinel() - b) return Status.NOT_ALLOCATED;
  return info & HELD ? Status.OBJECT : Status.OK;
}

/**
 * Why `p` cannot be a raw block handed out by rawAlloc, or OK (a held block: OBJECT). An
 * address inside the first granule of a held block (an object's GC header) is INSIDE_OBJECT.
 */
export function rawBlockStatus(p: usize): u32 {
  if (FREE_THREADED) heapLock();
  const status = rawBlockStatusAt(p);
  if (status == Status.NOT_ALLOCATED && (p & (GRANULE - 1)) != 0 && rawBlockStatusAt(p & ~(GRANULE - 1)) == Status.OBJECT) {
    if (FREE_THREADED) heapUnlock();
    return Status.INSIDE_OBJECT;
  }
  if (FREE_THREADED) heapUnlock();
  return status;
}

/** Sets up the raw allocator over [base, end of memory): base must be ≡ 8 mod 16. */
export function rawInit(base: usize): bool {
  if (CHECKED) assert(ROOT_BYTES + LOCK_BYTES <= RAW_ROOT_BYTES); // the root must fit its reservation, below the heap lock
  const hdr = header();
  hdr.dynamicBase = base;
  const pages = <u32>((base + MIN_BLOCK + RAW_HEADER + 0xffff) >> WASM_PAGE_SHIFT);
  const current = <u32>memory.size();
  if (max(pages, current) > hdr.maxPages) return false;
  if (pages > current && memory.grow(pages - current) < 0) return false;
  hdr.committedPages = max(pages, current);
  hdr.peakCommittedPages = hdr.committedPages;
  const end = sentinel();
  setInfo(end, PREV_FREE);
  clearGuard(end);
  makeFree(base, end - base, 0);
  return true;
}

/** Allocates a raw block of at least n bytes (`flags`: 0, INTERNAL or HELD); 0 if memory cannot be had. */
export function rawAlloc(n: usize, flags: u32): usize {
  if (FREE_THREADED) heapLock();
  if (n > MAX_RAW_REQUEST) {
    fail(Status.OUT_OF_MEMORY, 0);
    if (FREE_THREADED) heapUnlock();
    return 0;
  }
  if (n == 0) n = 1;
  const size = blockBytesFor(n);
  const b = takeFree(size);
  if (!b) {
    fail(Status.OUT_OF_MEMORY, 0);
    if (FREE_THREADED) heapUnlock();
    return 0;
  }
  useBlock(b, size, flags);
  if (!(flags & INTERNAL)) {
    const hdr = header();
    hdr.rawBlocks++;
    hdr.rawBytes += <u32>(blockSize(b) - RAW_HEADER);
  }
  if (FREE_THREADED) heapUnlock();
  return b + RAW_HEADER;
}

/**
 * Allocates an INTERNAL block of n bytes whose payload is `alignment`-aligned (a power of two),
 * at least `skew` bytes past the start of the free block it comes from (the bytes skipped stay
 * a free block).
 */
export function rawAllocAligned(n: usize, alignment: usize, skew: usize): usize {
  if (FREE_THREADED) heapLock();
  const size = blockBytesFor(n);
  let b = takeFree(size + alignment + MIN_BLOCK + skew);
  if (!b) {
    if (FREE_THREADED) heapUnlock();
    return 0;
  }
  let payload = alignUp(b + RAW_HEADER + skew, alignment);
  if (payload - RAW_HEADER - b != 0 && payload - RAW_HEADER - b < MIN_BLOCK) payload += alignment;
  const lead = payload - RAW_HEADER - b;
  if (lead) {
    const info = blockInfo(b);
    const aligned = payload - RAW_HEADER;
    setInfo(aligned, ((info & SIZE_MASK) - <u32>lead) | PREV_FREE);
    makeFree(b, lead, info & PREV_FREE);
    b = aligned;
  }
  useBlock(b, size, INTERNAL);
  if (FREE_THREADED) heapUnlock();
  return payload;
}

/** Frees an INTERNAL block (an arena or the arena objects). */
export function rawFreeInternal(p: usize): void {
  if (FREE_THREADED) heapLock();
  if (CHECKED) assert(blockInfo(p - RAW_HEADER) & INTERNAL); // only the heap's own blocks come here
  releaseBlock(p - RAW_HEADER);
  if (FREE_THREADED) heapUnlock();
}

/** Frees a caller's block b (its address validated): the counters, then the block. */
function releaseCallerBlock(b: usize): void {
  const hdr = header();
  hdr.rawBlocks--;
  hdr.rawBytes -= <u32>(blockSize(b) - RAW_HEADER);
  releaseBlock(b);
}

/** Frees a caller's raw block: OK, or why the address is not one (OBJECT: it is held). */
export function rawFree(p: usize): u32 {
  if (FREE_THREADED) heapLock();
  const status = rawBlockStatus(p);
  if (status != Status.OK) {
    if (FREE_THREADED) heapUnlock();
    return fail(status, p);
  }
  releaseCallerBlock(p - RAW_HEADER);
  if (FREE_THREADED) heapUnlock();
  return Status.OK;
}

/** Frees a held raw block: OK, or why the address is not one (OK: it was not held). */
export function rawFreeHeld(p: usize): u32 {
  if (FREE_THREADED) heapLock();
  const status = rawBlockStatus(p);
  if (status != Status.OBJECT) {
    if (FREE_THREADED) heapUnlock();
    return fail(status == Status.OK ? Status.NOT_ALLOCATED : status, p);
  }
  releaseCallerBlock(p - RAW_HEADER);
  if (FREE_THREADED) heapUnlock();
  return Status.OK;
}

/** Bytes the raw block at p can hold. p must have passed rawBlockStatus. */
// @ts-ignore: decorator
@inline export function rawUsableSize(p: usize): usize {
  return blockSize(p - RAW_HEADER) - RAW_HEADER;
}

/** Cuts block b (allocated, `bytes` long) down to `size` bytes, freeing the tail if it is big enough. */
function trimBlock(b: usize, bytes: usize, size: usize): usize {
  const rest = bytes - size;
  if (rest < MIN_BLOCK) return bytes;
  const info = blockInfo(b);
  setInfo(b, <u32>size | (info & ~SIZE_MASK));
  const tail = b + size;
  setInfo(tail, <u32>rest);
  releaseBlock(tail);
  return size;
}

/**
 * Resizes the caller's raw block at p (which passed rawBlockStatus, held or not) in place when
 * it can, else moves it (a held block stays held). Returns the new address, or 0 with p
 * untouched when memory cannot be had.
 */
export function rawRealloc(p: usize, n: usize): usize {
  if (FREE_THREADED) heapLock();
  if (n > MAX_RAW_REQUEST) {
    fail(Status.OUT_OF_MEMORY, 0);
    if (FREE_THREADED) heapUnlock();
    return 0;
  }
  if (n == 0) n = 1;
  const hdr = header();
  const b = p - RAW_HEADER;
  const size = blockBytesFor(n);
  let bytes = blockSize(b);
  const oldBytes = bytes;
  if (size > bytes) {
    const next = b + bytes;
    if (!neighbourIsIntact(next)) corrupt(RawBroken.OVERRUN, b);
    let nextInfo = blockInfo(next);
    const atEnd = next == sentinel() || ((nextInfo & FREE) != 0 && next + (nextInfo & SIZE_MASK) == sentinel());
    // The last block grows into new memory where it is, as a C heap's top chunk does.
    if (atEnd && bytes + (nextInfo & SIZE_MASK) < size && grow(size - bytes)) nextInfo = blockInfo(next);
    if (!(nextInfo & FREE) || bytes + (nextInfo & SIZE_MASK) < size) {
      const q = rawAlloc(n, blockInfo(b) & HELD);
      if (!q) {
        if (FREE_THREADED) heapUnlock();
        return 0;
      }
      memory.copy(q, p, bytes - RAW_HEADER);
      releaseCallerBlock(b);
      if (FREE_THREADED) heapUnlock();
      return q;
    }
    removeFree(next);
    bytes += nextInfo & SIZE_MASK;
    setInfo(b, <u32>bytes | (blockInfo(b) & ~SIZE_MASK));
    const after = b + bytes;
    setInfo(after, blockInfo(after) & ~PREV_FREE);
  }
  bytes = trimBlock(b, bytes, size);
  hdr.rawBytes += <u32>bytes - <u32>oldBytes;
  if (FREE_THREADED) heapUnlock();
  return p;
}

/** The raw allocator's invariants that check() verifies; src/heap/errors.ts names them. */
export const enum RawBroken {
  NONE = 0,
  TILING = 16,
  FLAGS = 17,
  FREE_LISTS = 18,
  COUNTERS = 19,
  /** Found by a free, not by the checker: see neighbourIsIntact. */
  OVERRUN = 24,
}

/** The raw allocator: blocks tile memory up to the sentinel, flags agree, lists hold the free blocks. */
export function rawIsValid(): u32 {
  const hdr = header();
  const end = sentinel();
  let freeBlocks: u32 = 0, freeBytes: u32 = 0, userBlocks: u32 = 0, userBytes: u32 = 0;
  let prevWasFree = false;
  let b = hdr.dynamicBase;
  for (;;) {
    const info = blockInfo(b);
    const size = <usize>(info & SIZE_MASK);
    if (!size) {
      // A region's sentinel: the last one, or a link over memory someone else grew.
      if (((info & PREV_FREE) != 0) != prevWasFree) return broken(RawBroken.FLAGS, b);
      const next = <usize>load<u32>(b, 4);
      if (!next) break;
      if (next <= b || next >= end) return broken(RawBroken.TILING, b);
      b = next;
      prevWasFree = false;
      continue;
    }
    if (size < MIN_BLOCK || size > end - b) return broken(RawBroken.TILING, b);
    if (((info & PREV_FREE) != 0) != prevWasFree) return broken(RawBroken.FLAGS, b);
    if (info & FREE) {
      if (prevWasFree || (info & (INTERNAL | HELD)) != 0 || load<u32>(b, 4) != 0 || backPointer(b + size) != b) {
        return broken(RawBroken.FLAGS, b);
      }
      freeBlocks++;
      freeBytes += <u32>size;
    } else {
      if (!blockGuardOk(b) || (info & (INTERNAL | HELD)) == (INTERNAL | HELD)) return broken(RawBroken.FLAGS, b);
      if (!(info & INTERNAL)) {
        userBlocks++;
        userBytes += <u32>(size - RAW_HEADER);
      }
    }
    prevWasFree = (info & FREE) != 0;
    b += size;
  }
  if (b != end) return broken(RawBroken.TILING, b);
  if (userBlocks != hdr.rawBlocks || userBytes != hdr.rawBytes || freeBytes != hdr.rawFreeBytes) {
    return broken(RawBroken.COUNTERS, 0);
  }

  let listed: u32 = 0;
  for (let fl: u32 = 0; fl < FL_COUNT; fl++) {
    if (((flMap() >> fl) & 1) != (slMap(fl) != 0 ? 1 : 0)) return broken(RawBroken.FREE_LISTS, 0);
    for (let sl: u32 = 0; sl < SL_COUNT; sl++) {
      const head = headOf(fl, sl);
      if (((slMap(fl) >> sl) & 1) != (head != 0 ? 1 : 0)) return broken(RawBroken.FREE_LISTS, 0);
      let prev: usize = 0;
      for (let f = head; f; f = nextFree(f)) {
        if (
          ++listed > freeBlocks || f < hdr.dynamicBase || f >= end || !(blockInfo(f) & FREE) ||
          prevFree(f) != prev || listOf(blockSize(f)) != ((fl << 8) | sl)
        ) {
          return broken(RawBroken.FREE_LISTS, f);
        }
        prev = f;
      }
    }
  }
  if (listed != freeBlocks) return broken(RawBroken.FREE_LISTS, 0);
  return RawBroken.NONE;
}

/**
 * The payload of the first caller's block (neither free nor INTERNAL) after payload p, or
 * after the start of memory when p is 0; 0 when there is none. For walks of every caller's
 * block (the debug hooks' checker): the tiling is trusted, as rawIsValid has verified it.
 */
export function rawNextCallerBlock(p: usize): usize {
  let b = p ? p - RAW_HEADER + blockSize(p - RAW_HEADER) : header().dynamicBase;
  while (b) {
    const info = blockInfo(b);
    const size = <usize>(info & SIZE_MASK);
    if (!size) {
      b = <usize>load<u32>(b, 4); // a region's sentinel: the next region, or 0 after the last
    } else if (info & (FREE | INTERNAL)) {
      b += size;
    } else {
      return b + RAW_HEADER;
    }
  }
  return 0;
}
