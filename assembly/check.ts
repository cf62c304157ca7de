// The heap checker: walks every structure and verifies the invariants the other files state.
//
// Each `...IsValid` returns the first broken invariant (a Broken code) and leaves the address
// of the offending structure in HeapHeader.errorAddress; the host turns the code into a
// HeapCorruptionError naming the invariant. Walks are bounded by counts the checker has
// already established, so a corrupted link cannot make it loop.

import { Status, header, fail } from "./common";
import { classSize } from "./sizeclass";
import { objectsAreValid } from "./gc";
import { PoolHeader, POOL_OVERHEAD, usedpoolsHead, poolCapacity } from "./pool";
import { ArenaObject, ARENA_OBJECT_SHIFT, arenaObject, nfp2lasta, addressInRange } from "./arena";
import {
  FREE, PREV_FREE, INTERNAL, SIZE_MASK, MIN_BLOCK, RAW_HEADER, blockInfo, blockSize,
  blockGuardOk, nextFree, prevFree, backPointer, sentinel, flMap, slMap, headOf, listOf,
} from "./raw";

/** The invariants, by the structure they belong to. Keep in step with src/errors.ts. */
export const enum Broken {
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
  RAW_TILING = 16,
  RAW_FLAGS = 17,
  RAW_FREE_LISTS = 18,
  RAW_COUNTERS = 19,
  MEMORY = 20,
}

function broken(code: Broken, address: usize): u32 {
  fail(Status.OK, address);
  return code;
}

/** A carved pool of arena `index`: its header, and its free list against its count. */
export function poolIsValid(pool: PoolHeader, index: u32): u32 {
  const address = changetype<usize>(pool);
  if (pool.arenaindex != index) return broken(Broken.POOL_ARENAINDEX, address);
  // A carved pool always has a class: NO_CLASS (0xffff) fails this too.
  if (pool.szidx >= header().numClasses) return broken(Broken.POOL_CLASS, address);
  const size = classSize(pool.szidx);
  const capacity = poolCapacity(size);
  if (pool.count > capacity) return broken(Broken.POOL_COUNT, address);
  const poolSize: u32 = 1 << header().poolShift;
  if (
    pool.maxnextoffset != poolSize - size || pool.nextoffset < POOL_OVERHEAD + size ||
    pool.nextoffset > pool.maxnextoffset + size || (pool.nextoffset - POOL_OVERHEAD) % size != 0
  ) {
    return broken(Broken.POOL_NEXTOFFSET, address);
  }
  const carved = (pool.nextoffset - POOL_OVERHEAD) / size;
  let free: u32 = 0;
  for (let block = pool.freeblock; block; block = load<usize>(block)) {
    const offset = <u32>(block - address) - POOL_OVERHEAD;
    if (
      ++free > carved || block < address ||
      offset >= pool.nextoffset - POOL_OVERHEAD || offset % size != 0
    ) {
      return broken(Broken.POOL_FREE_LIST, block);
    }
  }
  if (pool.count + free != carved) return broken(Broken.POOL_FREE_LIST, address);
  // A pool whose free list is empty but has never-used blocks left would be stuck.
  if (pool.count && !free && pool.nextoffset <= pool.maxnextoffset) {
    return broken(Broken.POOL_FREE_LIST, address);
  }
  return Broken.NONE;
}

/** An arena object with an arena attached, its map entries and every pool it has carved. */
export function arenaIsValid(ao: ArenaObject, index: u32): u32 {
  const hdr = header();
  const address = ao.address;
  const arenaSize: usize = <usize>1 << hdr.arenaShift;
  const poolSize: usize = <usize>1 << hdr.poolShift;
  const self = changetype<usize>(ao);
  const block = address - RAW_HEADER;
  if (
    (address & (poolSize - 1)) != 0 || (blockInfo(block) & (INTERNAL | FREE)) != INTERNAL ||
    blockSize(block) < arenaSize + RAW_HEADER
  ) {
    return broken(Broken.ARENA_BLOCK, self);
  }
  if (
    !addressInRange(address) || !addressInRange(address + arenaSize - 1) ||
    addressInRange(address - 1) || addressInRange(address + arenaSize)
  ) {
    return broken(Broken.ARENA_MAP, self);
  }
  if (
    ao.poolAddress < address || ao.poolAddress > address + arenaSize ||
    ((ao.poolAddress - address) & (poolSize - 1)) != 0 || ao.ntotalpools != hdr.poolsPerArena
  ) {
    return broken(Broken.ARENA_POOL_ADDRESS, self);
  }
  const carved = <u32>((ao.poolAddress - address) >> hdr.poolShift);
  let emptyPools: u32 = 0;
  for (let pool = address; pool < ao.poolAddress; pool += poolSize) {
    const status = poolIsValid(changetype<PoolHeader>(pool), index);
    if (status != Broken.NONE) return status;
    if (!changetype<PoolHeader>(pool).count) emptyPools++;
  }
  let listed: u32 = 0;
  for (let pool = ao.freepools; pool; pool = changetype<PoolHeader>(pool).nextpool) {
    if (
      ++listed > emptyPools || pool < address || pool >= ao.poolAddress ||
      ((pool - address) & (poolSize - 1)) != 0 || changetype<PoolHeader>(pool).count != 0
    ) {
      return broken(Broken.ARENA_FREEPOOLS, self);
    }
  }
  if (listed != emptyPools) return broken(Broken.ARENA_FREEPOOLS, self);
  if (ao.nfreepools != emptyPools + hdr.poolsPerArena - carved) {
    return broken(Broken.ARENA_NFREEPOOLS, self);
  }
  return Broken.NONE;
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
        return broken(Broken.USEDPOOLS, pool);
      }
      prev = pool;
    }
    if (head.prevpool != prev) return broken(Broken.USEDPOOLS, changetype<usize>(head));
  }
  if (listed != usedPools) return broken(Broken.USEDPOOLS, 0);
  return Broken.NONE;
}

/** usableArenas sorted by ascending nfreepools, holding exactly the arenas with a free pool. */
function usableArenasAreValid(usable: u32): u32 {
  const hdr = header();
  let listed: u32 = 0;
  let prev: usize = 0;
  for (let a = hdr.usableArenas; a; a = changetype<ArenaObject>(a).nextarena) {
    const ao = changetype<ArenaObject>(a);
    if (
      ++listed > usable || !ao.address || !ao.nfreepools || ao.prevarena != prev ||
      (prev && changetype<ArenaObject>(prev).nfreepools > ao.nfreepools)
    ) {
      return broken(Broken.USABLE_ARENAS, a);
    }
    const next = ao.nextarena;
    const last = !next || changetype<ArenaObject>(next).nfreepools != ao.nfreepools;
    if ((nfp2lasta(ao.nfreepools) == a) != last) return broken(Broken.NFP2LASTA, a);
    prev = a;
  }
  if (listed != usable) return broken(Broken.USABLE_ARENAS, 0);
  for (let n: u32 = 0; n <= hdr.poolsPerArena; n++) {
    const last = nfp2lasta(n);
    if (last && (!changetype<ArenaObject>(last).address || changetype<ArenaObject>(last).nfreepools != n)) {
      return broken(Broken.NFP2LASTA, last);
    }
  }
  return Broken.NONE;
}

/** Every arena object: attached ones valid, the rest on the unused list; the arena counters. */
function arenasAreValid(): u32 {
  const hdr = header();
  const poolSize: usize = <usize>1 << hdr.poolShift;
  let attached: u32 = 0, usable: u32 = 0, usedPools: u32 = 0;
  for (let i: u32 = 0; i < hdr.maxArenas; i++) {
    const ao = arenaObject(i);
    if (!ao.address) continue;
    attached++;
    if (ao.nfreepools) usable++;
    const status = arenaIsValid(ao, i);
    if (status != Broken.NONE) return status;
    for (let pool = ao.address; pool < ao.poolAddress; pool += poolSize) {
      const p = changetype<PoolHeader>(pool);
      if (p.count && p.freeblock) usedPools++;
    }
  }
  if (
    attached != hdr.narenasCurrentlyAllocated || hdr.narenasHighwater < attached ||
    hdr.ntimesArenaAllocated < attached
  ) {
    return broken(Broken.ARENA_COUNTERS, 0);
  }
  let unused: u32 = 0;
  for (let a = hdr.unusedArenaObjects; a; a = changetype<ArenaObject>(a).nextarena) {
    const offset = a - hdr.arenas;
    if (
      ++unused > hdr.maxArenas - attached || offset >= (<usize>hdr.maxArenas << ARENA_OBJECT_SHIFT) ||
      (offset & ((1 << ARENA_OBJECT_SHIFT) - 1)) != 0 || changetype<ArenaObject>(a).address
    ) {
      return broken(Broken.UNUSED_ARENAS, a);
    }
  }
  if (unused != hdr.maxArenas - attached) return broken(Broken.UNUSED_ARENAS, 0);
  const status = usedpoolsAreValid(usedPools);
  if (status != Broken.NONE) return status;
  return usableArenasAreValid(usable);
}

/** The raw allocator: blocks tile memory up to the sentinel, flags agree, lists hold the free blocks. */
function rawIsValid(): u32 {
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
      if (((info & PREV_FREE) != 0) != prevWasFree) return broken(Broken.RAW_FLAGS, b);
      const next = <usize>load<u32>(b, 4);
      if (!next) break;
      if (next <= b || next >= end) return broken(Broken.RAW_TILING, b);
      b = next;
      prevWasFree = false;
      continue;
    }
    if (size < MIN_BLOCK || size > end - b) return broken(Broken.RAW_TILING, b);
    if (((info & PREV_FREE) != 0) != prevWasFree) return broken(Broken.RAW_FLAGS, b);
    if (info & FREE) {
      if (prevWasFree || load<u32>(b, 4) != 0 || backPointer(b + size) != b) {
        return broken(Broken.RAW_FLAGS, b);
      }
      freeBlocks++;
      freeBytes += <u32>size;
    } else {
      if (!blockGuardOk(b)) return broken(Broken.RAW_FLAGS, b);
      if (!(info & INTERNAL)) {
        userBlocks++;
        userBytes += <u32>(size - RAW_HEADER);
      }
    }
    prevWasFree = (info & FREE) != 0;
    b += size;
  }
  if (b != end) return broken(Broken.RAW_TILING, b);
  if (userBlocks != hdr.rawBlocks || userBytes != hdr.rawBytes || freeBytes != hdr.rawFreeBytes) {
    return broken(Broken.RAW_COUNTERS, 0);
  }

  let listed: u32 = 0;
  for (let fl: u32 = 0; fl < 25; fl++) {
    if (((flMap() >> fl) & 1) != (slMap(fl) != 0 ? 1 : 0)) return broken(Broken.RAW_FREE_LISTS, 0);
    for (let sl: u32 = 0; sl < 16; sl++) {
      const head = headOf(fl, sl);
      if (((slMap(fl) >> sl) & 1) != (head != 0 ? 1 : 0)) return broken(Broken.RAW_FREE_LISTS, 0);
      let prev: usize = 0;
      for (let f = head; f; f = nextFree(f)) {
        if (
          ++listed > freeBlocks || f < hdr.dynamicBase || f >= end || !(blockInfo(f) & FREE) ||
          prevFree(f) != prev || listOf(blockSize(f)) != ((fl << 8) | sl)
        ) {
          return broken(Broken.RAW_FREE_LISTS, f);
        }
        prev = f;
      }
    }
  }
  if (listed != freeBlocks) return broken(Broken.RAW_FREE_LISTS, 0);
  return Broken.NONE;
}

/** Checks the whole heap; Broken.NONE, or the first broken invariant. */
export function heapIsValid(): u32 {
  const hdr = header();
  if (
    hdr.committedPages > <u32>memory.size() || hdr.peakCommittedPages < hdr.committedPages ||
    hdr.committedPages > hdr.maxPages
  ) {
    return broken(Broken.MEMORY, 0);
  }
  const status = rawIsValid();
  if (status != Broken.NONE) return status;
  return arenasAreValid() || objectsAreValid();
}
