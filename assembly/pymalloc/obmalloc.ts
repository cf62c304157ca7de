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
  poolShift, geometryIsBuilt, corrupt, FREE_THREADED, MAX_THREADS, THREAD_POOLS, THREAD_REMOTE, REMOTE_CLOSED,
  THREAD_REMOTE_FREES, THREAD_DRAINS, THREAD_DRAINED, THREAD_ADOPTED, THREAD_LOCKED_FREES, currentTid, currentRecord,
  threadRecord,
} from "../memory/header";
import { heapLock, heapUnlock } from "../memory/lock";
import { sizeClassOf, classSize, isBlockMultiple, initSizeClasses } from "./sizeclass";
import {
  PoolHeader, PymallocBroken, POOL_OVERHEAD, ALLOCATED, HELD, STATE_MASK, usedpoolsHead, poolOf,
  extendFirstPool, relinkIfWasFull, unlinkPool, frontLinkPool, initUsedpools, poolIsValid,
  blockState,
  setBlockState, markAllocated, granuleOf, stateWord, stateShift, isGranuleStart,
  SHARED_POOLS, usedpoolsHeadIn, initUsedpoolsAt, setOwnPools, pendingWord, poolOwner, poolOwnerRecord,
  setPoolOwner, poolBitsBytes, isKeptEmpty,
} from "./pool";
import {
  ArenaObject, ARENA_OBJECT_SHIFT, addressInRange, arenaObject, arenaGainedFreePool, takePool,
  arenaIsValid, usableArenasAreValid,
} from "./arena";
import {
  rawInit, rawAlloc, rawFree, rawFreeHeld, rawRealloc, rawBlockStatus, rawUsableSize, RAW_HEADER,
  HELD as RAW_HELD, rawAllocAligned,
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
  if (pool != head) return takeBlock(pool, head, index, state);
  const block = allocateFromNewPool(index, state);
  if (!block) fail(Status.OUT_OF_MEMORY, 0);
  return block;
}

/** Takes the first free block of `pool`, the first pool of class `index` (`head`). */
// @ts-ignore: decorator
@inline function takeBlock(pool: PoolHeader, head: PoolHeader, index: u32, state: u32): usize {
  pool.count++;
  const block = pool.freeblock;
  const next = load<usize>(block);
  pool.freeblock = next;
  extendFirstPool(pool, head, next == 0, classSize(index));
  markAllocated(pool, block, state);
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
  // Only this thread gives its pools away (emptyPool, abandonPools), so the owner cannot stop
  // being this thread while it frees; any other owner sends p to freeRemote.
  if (FREE_THREADED && poolOwner(pool) != currentTid()) return freeRemote(p, pool, expected);
  const g = granuleOf(pool, p);
  const word = stateWord(pool, g);
  const shift = stateShift(g);
  const bits = load<u32>(word);
  const state = (bits >> shift) & STATE_MASK;
  if (state != expected) return fail(refusal(p, pool, state, expected), p);
  // Another thread's free of p is under way: this one is the second.
  if (FREE_THREADED && (load<u32>(pendingWord(word)) >> shift) & ALLOCATED) return fail(Status.DOUBLE_FREE, p);
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
  if (FREE_THREADED) {
    freeSmallBlock(p, expected == Status.OBJECT ? ALLOCATED | HELD : ALLOCATED);
    return q;
  }
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
  // Free-threaded, a thread keeps the last pool of a class when it empties, as mimalloc keeps a
  // thread's emptied pages: a loop that allocates and frees a few blocks of a class would
  // otherwise give its pool back and take one again, under the heap lock, every time round.
  if (FREE_THREADED && poolOwner(pool) == currentTid() && currentTid()) {
    const head = usedpoolsHead(pool.szidx);
    if (head.nextpool == changetype<usize>(pool) && pool.nextpool == changetype<usize>(head)) return;
  }
  unlinkPool(pool);
  if (FREE_THREADED) {
    heapLock();
    setPoolOwner(pool, 0, 0);
  }
  const ao = arenaObject(pool.arenaindex);
  pool.nextpool = ao.freepools;
  ao.freepools = changetype<usize>(pool);
  arenaGainedFreePool(ao);
  // Free-threaded, the arena's other pools may be changing under their owners meanwhile.
  if (CHECKED && !FREE_THREADED) assert(!ao.address || arenaIsValid(ao, pool.arenaindex) == 0); // unless released
  if (FREE_THREADED) heapUnlock();
}

/** The slow path of malloc: class `index` has no used pool. Returns a block, or 0. */
function allocateFromNewPool(index: u32, state: u32): usize {
  if (FREE_THREADED && refillOwnPools(index)) {
    const head = usedpoolsHead(index);
    return takeBlock(changetype<PoolHeader>(head.nextpool), head, index, state);
  }
  if (FREE_THREADED) heapLock();
  const taken = takePool();
  if (FREE_THREADED) {
    // Off the arena's lists and this thread's from here: the rest needs no lock.
    if (taken) setPoolOwner(taken, currentTid(), currentRecord());
    heapUnlock();
  }
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
  if (FREE_THREADED) return threadPoolsAreValid(usedPools);
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
      if (isKeptEmpty(p)) usedPools++;
      if (FREE_THREADED && !poolOwnerIsValid(p)) return broken(PymallocBroken.POOL_OWNER, pool);
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

// ───── the free-threaded build: frees across threads, drains, adoption (docs/free-threaded.md) ─────
//
// A block is on exactly one list: its pool's free list, or (its pending bit set, its state bits
// still ALLOCATED) one remote list, or in the hands of the one freer whose atomic or set the
// pending bit. Who may touch a pool: its owner, lock-free; anyone else only sets pending bits and
// pushes onto the owner's remote list (ThreadState.remote, a lock-free stack: compare-and-swap
// push, the owner takes all with one exchange); a pool of no thread only under the heap lock.
//
// The double-free rule: a free by a non-owner sets the block's pending bit with an atomic or
// first; an old value with the bit set is a second free of a block already on its way (refused,
// DOUBLE_FREE), whichever thread's the first was. Only then are the state bits read: not
// ALLOCATED means free already (the pending bit is given back, and the free refused). The owner's
// own free reads the pending bit with one plain load, and its drain clears the state bits
// before the pending bit, so a free that finds the pending bit clear after the drain finds the
// block free. What no rule can catch: the owner and another thread freeing the same block at the
// same instant (a double free racing itself), as in C.
//
// The abandoned-pool rule: a thread that leaves (threadDetach; threadRelease for a dead one; an
// attachment that finds its slot left by a dead one) closes its remote list (exchange with
// REMOTE_CLOSED), gives every pool it owns to no thread (used ones onto the shared usedpools, full
// ones by a walk of the arenas), then frees what it took from its list, all under the heap lock.
// A freer that finds the list closed takes the locked path, where it reads the owner again: 0
// (free into the shared pool), or a live thread (push: a live thread's list is open whenever the
// lock is free). A thread whose usedpools of a class run dry drains its list, then adopts a
// shared pool of the class (under the lock), and only then takes a new one.

/** True iff another thread's free of the block at p (ALLOCATED, in pool) is under way. */
// @ts-ignore: decorator
@inline function isPending(pool: PoolHeader, p: usize): bool {
  const g = granuleOf(pool, p);
  return ((atomic.load<u32>(pendingWord(stateWord(pool, g))) >> stateShift(g)) & ALLOCATED) != 0;
}

// @ts-ignore: decorator
@inline function bump(record: usize, field: usize): void {
  if (record) store<u32>(record + field, load<u32>(record + field) + 1);
}

/** A free of p by a thread that does not own its pool: claims the block, then sends it to the owner. */
function freeRemote(p: usize, pool: PoolHeader, expected: u32): u32 {
  const g = granuleOf(pool, p);
  const word = stateWord(pool, g);
  const bit = ALLOCATED << stateShift(g);
  if (atomic.or<u32>(pendingWord(word), bit) & bit) return fail(Status.DOUBLE_FREE, p);
  const state = (atomic.load<u32>(word) >> stateShift(g)) & STATE_MASK;
  if (state != expected) {
    atomic.and<u32>(pendingWord(word), ~bit);
    return fail(refusal(p, pool, state, expected), p);
  }
  bump(currentRecord(), THREAD_REMOTE_FREES);
  if (!pushRemote(p, pool)) {
    bump(currentRecord(), THREAD_LOCKED_FREES);
    heapLock();
    routePending(p);
    heapUnlock();
  }
  return Status.OK;
}

/** Pushes the pending block p onto the remote list of its pool's owner: false if the pool is no thread's or the list is closed. */
function pushRemote(p: usize, pool: PoolHeader): bool {
  if (!poolOwner(pool)) return false;
  const head = poolOwnerRecord(pool) + THREAD_REMOTE;
  let first = atomic.load<usize>(head);
  while (first != REMOTE_CLOSED) {
    store<usize>(p, first);
    const seen = atomic.cmpxchg<usize>(head, first, p);
    if (seen == first) return true;
    first = seen;
  }
  return false;
}

/**
 * The pending block p, under the heap lock: freed here if its pool is this thread's or no
 * thread's, else pushed to its owner (whose list the lock guarantees open).
 */
function routePending(p: usize): void {
  const pool = poolOf(p);
  const owner = poolOwner(pool);
  if (owner == 0 || owner == currentTid()) releasePending(p, pool);
  else if (!pushRemote(p, pool)) corrupt(PymallocBroken.REMOTE_LIST, p);
}

/** Frees the pending block p into its pool (this thread's, or one of no thread's under the lock). */
function releasePending(p: usize, pool: PoolHeader): void {
  const g = granuleOf(pool, p);
  const word = stateWord(pool, g);
  const shift = stateShift(g);
  store<u32>(word, load<u32>(word) & ~(STATE_MASK << shift));
  // A block on a remote list that is not pending was listed twice (its link overwritten).
  if (!(atomic.and<u32>(pendingWord(word), ~(ALLOCATED << shift)) & (ALLOCATED << shift))) {
    corrupt(PymallocBroken.REMOTE_LIST, p);
  }
  pushFreeBlock(p, pool);
}

/**
 * This thread takes its whole remote list and frees each block (a block whose pool has changed
 * hands since it was pushed goes on, under the lock). How many it took.
 */
export function drainRemote(): u32 {
  const record = currentRecord();
  if (!record || !atomic.load<usize>(record + THREAD_REMOTE)) return 0;
  let p = atomic.xchg<usize>(record + THREAD_REMOTE, 0);
  let drained: u32 = 0;
  while (p) {
    const next = load<usize>(p);
    const pool = poolOf(p);
    if (poolOwner(pool) == currentTid()) releasePending(p, pool);
    else {
      heapLock();
      routePending(p);
      heapUnlock();
    }
    p = next;
    drained++;
  }
  bump(record, THREAD_DRAINS);
  store<u32>(record + THREAD_DRAINED, load<u32>(record + THREAD_DRAINED) + drained);
  return drained;
}

/** Class `index` has no used pool of this thread's: drain, else adopt a shared pool. True iff it has one now. */
function refillOwnPools(index: u32): bool {
  const record = currentRecord();
  // An instance not attached yet allocates from the shared lists, which are its own then.
  if (!record) return false;
  const head = usedpoolsHead(index);
  if (drainRemote() && head.nextpool != changetype<usize>(head)) return true;
  heapLock();
  const shared = usedpoolsHeadIn(SHARED_POOLS, index);
  const first = shared.nextpool;
  if (first == changetype<usize>(shared)) {
    heapUnlock();
    return false;
  }
  const pool = changetype<PoolHeader>(first);
  unlinkPool(pool);
  setPoolOwner(pool, currentTid(), record);
  heapUnlock();
  frontLinkPool(pool, head);
  bump(record, THREAD_ADOPTED);
  return true;
}

/**
 * The thread of `record` leaves (see "The abandoned-pool rule" above): its list closed, its pools
 * no thread's, what was on its list freed. Runs in the thread itself or, for a dead one, in another.
 */
export function abandonPools(record: usize): void {
  heapLock();
  const tid = load<u32>(record);
  const list = atomic.xchg<usize>(record + THREAD_REMOTE, REMOTE_CLOSED);
  const base = load<usize>(record + THREAD_POOLS);
  const hdr = header();
  if (base) {
    for (let index: u32 = 0; index < hdr.numClasses; index++) {
      const head = usedpoolsHeadIn(base, index);
      const shared = usedpoolsHeadIn(SHARED_POOLS, index);
      while (head.nextpool != changetype<usize>(head)) {
        const pool = changetype<PoolHeader>(head.nextpool);
        setPoolOwner(pool, 0, 0);
        if (!pool.count) {
          emptyPool(pool); // a pool the thread kept
          continue;
        }
        unlinkPool(pool);
        frontLinkPool(pool, shared);
      }
    }
  }
  // The full ones are on no list.
  const poolSize: usize = <usize>1 << hdr.poolShift;
  for (let i: u32 = 0; i < hdr.maxArenas; i++) {
    const ao = arenaObject(i);
    for (let pool = ao.address; pool < ao.poolAddress; pool += poolSize) {
      if (tid && poolOwner(changetype<PoolHeader>(pool)) == tid) setPoolOwner(changetype<PoolHeader>(pool), 0, 0);
    }
  }
  if (list != REMOTE_CLOSED) {
    let drained: u32 = 0;
    for (let p = list; p; drained++) {
      const next = load<usize>(p);
      routePending(p);
      p = next;
    }
    store<u32>(record + THREAD_DRAINED, load<u32>(record + THREAD_DRAINED) + drained);
  }
  heapUnlock();
}

/**
 * This instance becomes the thread of `record` (currentRecord already says so): its usedpools
 * (the slot's block, made on the slot's first attachment) empty, its remote list open. False if
 * the block cannot be had.
 */
export function attachPools(record: usize): bool {
  let base = load<usize>(record + THREAD_POOLS);
  if (!base) {
    // Cache-line aligned, as the thread table: no two threads' heads share a line.
    base = rawAllocAligned(<usize>MAX_SIZE_CLASSES << 3, 64, 0);
    if (!base) return false;
    store<usize>(record + THREAD_POOLS, base);
  }
  initUsedpoolsAt(base);
  heapLock();
  atomic.store<usize>(record + THREAD_REMOTE, 0);
  heapUnlock();
  setOwnPools(base);
  return true;
}

/** This instance is no thread any more: it would allocate from the shared lists. */
export function detachPools(): void {
  setOwnPools(SHARED_POOLS);
}

/** A carved pool's owner: 0 or a live thread; and no pending bit but on an ALLOCATED block. */
function poolOwnerIsValid(pool: PoolHeader): bool {
  const owner = poolOwner(pool);
  if (owner && load<u32>(poolOwnerRecord(pool)) != owner) return false;
  const words = <u32>(poolBitsBytes() >> 2);
  for (let w: u32 = 0; w < words; w++) {
    const word = pool.bits + (<usize>w << 2);
    if (load<u32>(pendingWord(word)) & ~(load<u32>(word) & 0x55555555)) return false;
  }
  return true;
}

/** Pending blocks of the pool: on their way to a remote list's drain, free for statistics. */
export function poolPendingCount(pool: PoolHeader): u32 {
  const words = <u32>(poolBitsBytes() >> 2);
  let n: u32 = 0;
  for (let w: u32 = 0; w < words; w++) n += popcnt(load<u32>(pendingWord(pool.bits + (<usize>w << 2))));
  return n;
}

/**
 * One usedpools (the shared ones, owner 0, or a thread's): well linked, each pool of its class
 * and owner, at most `limit` pools. How many, or minus the code broken() has recorded.
 */
function poolListsAreValid(base: usize, owner: u32, limit: u32): i64 {
  const hdr = header();
  let listed: u32 = 0;
  for (let index: u32 = 0; index < hdr.numClasses; index++) {
    const head = usedpoolsHeadIn(base, index);
    let prev = changetype<usize>(head);
    for (let pool = head.nextpool; pool != changetype<usize>(head); pool = changetype<PoolHeader>(pool).nextpool) {
      const p = changetype<PoolHeader>(pool);
      // An empty pool only as the one pool of its class a thread keeps.
      const keptEmpty = !p.count && owner != 0 && p.prevpool == changetype<usize>(head) && p.nextpool == changetype<usize>(head);
      if (
        ++listed > limit || !addressInRange(pool) || p.prevpool != prev ||
        p.szidx != index || (!p.count && !keptEmpty) || !p.freeblock
      ) {
        return -<i64>broken(PymallocBroken.USEDPOOLS, pool);
      }
      if (poolOwner(p) != owner) return -<i64>broken(PymallocBroken.POOL_OWNER, pool);
      prev = pool;
    }
    if (head.prevpool != prev) return -<i64>broken(PymallocBroken.USEDPOOLS, changetype<usize>(head));
  }
  return listed;
}

/**
 * Free-threaded usedpools: the shared lists and every thread's together hold exactly the
 * `usedPools` used pools, each on its owner's; every remote list holds pending blocks only, each
 * once, and all of them (a block waiting on a remote list is free, and on no other list).
 */
function threadPoolsAreValid(usedPools: u32): u32 {
  let listed = poolListsAreValid(SHARED_POOLS, 0, usedPools);
  if (listed < 0) return <u32>-listed;
  let pending: u32 = 0;
  const hdr = header();
  const poolSize: usize = <usize>1 << hdr.poolShift;
  for (let i: u32 = 0; i < hdr.maxArenas; i++) {
    const ao = arenaObject(i);
    for (let pool = ao.address; pool < ao.poolAddress; pool += poolSize) pending += poolPendingCount(changetype<PoolHeader>(pool));
  }
  let remote: u32 = 0;
  for (let id: u32 = 1; id <= MAX_THREADS; id++) {
    const record = threadRecord(id);
    if (!record) break;
    const base = load<usize>(record + THREAD_POOLS);
    if (base) {
      const more = poolListsAreValid(base, load<u32>(record), usedPools - <u32>listed);
      if (more < 0) return <u32>-more;
      // A slot with no thread has no pools.
      if (more && !load<u32>(record)) return broken(PymallocBroken.POOL_OWNER, record);
      listed += more;
    }
    const status = remoteListIsValid(record, pending - remote);
    if (status < 0) return PymallocBroken.REMOTE_LIST;
    remote += <u32>status;
  }
  if (<u32>listed != usedPools) return broken(PymallocBroken.USEDPOOLS, 0);
  if (remote != pending) return broken(PymallocBroken.REMOTE_LIST, 0);
  return PymallocBroken.NONE;
}

/**
 * The remote list of `record`: at most `limit` blocks, each ALLOCATED and pending, none twice
 * (each one's pending bit is cleared while the walk is on, then set again). How many, or -1.
 */
function remoteListIsValid(record: usize, limit: u32): i64 {
  const first = atomic.load<usize>(record + THREAD_REMOTE);
  if (first == REMOTE_CLOSED) {
    // Closed only once its thread has left.
    if (!load<u32>(record)) return 0;
    broken(PymallocBroken.REMOTE_LIST, record);
    return -1;
  }
  let n: u32 = 0;
  let verdict = true;
  for (let p = first; p; p = load<usize>(p)) {
    if (n >= limit || !addressInRange(p) || !isGranuleStart(p)) {
      verdict = false;
      break;
    }
    const pool = poolOf(p);
    const g = granuleOf(pool, p);
    if (!pool.bits || !((load<u32>(stateWord(pool, g)) >> stateShift(g)) & ALLOCATED) || !isPending(pool, p)) {
      verdict = false;
      break;
    }
    atomic.and<u32>(pendingWord(stateWord(pool, g)), ~(ALLOCATED << stateShift(g)));
    n++;
  }
  let restored: u32 = 0;
  for (let p = first; restored < n; p = load<usize>(p), restored++) {
    const g = granuleOf(poolOf(p), p);
    atomic.or<u32>(pendingWord(stateWord(poolOf(p), g)), ALLOCATED << stateShift(g));
  }
  if (!verdict) {
    broken(PymallocBroken.REMOTE_LIST, record);
    return -1;
  }
  return n;
}

/** The blocks on the remote list of `record` (the world stopped, or quiet). */
export function remoteCount(record: usize): u32 {
  let n: u32 = 0;
  const first = atomic.load<usize>(record + THREAD_REMOTE);
  if (first == REMOTE_CLOSED) return 0;
  for (let p = first; p; p = load<usize>(p)) n++;
  return n;
}
