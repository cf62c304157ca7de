// Arenas: ARENA_SIZE bytes of pools, their arena objects, the usable_arenas order and the
// arena map that answers address_in_range.
//
// An arena is an INTERNAL raw block whose payload is POOL_SIZE-aligned, so every one of its
// poolsPerArena pools is whole (CPython loses a pool per arena to alignment; here the gap
// before an arena is a free raw block that large requests can use). Pools are carved from
// the front lazily: [address, poolAddress) have been handed out at least once, the rest
// never; of a pool never carved, only the header's `bits` is written (0, by newArena).
//
// ╒═════════════ The raw block of an arena (payload POOL_SIZE-aligned) ═════════════╕
//  +0            pools        ARENA_SIZE bytes: poolsPerArena pools
//  +ARENA_SIZE   block bits   poolBitsBytes() per pool, in pool order (pymalloc/pool.ts)
// ╘═════════════════════════════════════════════════════════════════════════════════╛
// The block bits live outside the pools, so that neither POOL_OVERHEAD nor any block address
// moves, and in the arena's own block, so that they come and go with it: 1/32 of the arena
// with 8-byte alignment, 1/64 with 16. A pool's part is zeroed when the pool is first carved.
//
// ╒══════════════════ Arena object (32 bytes, in the `arenas` array) ══════════════════╕
//  +0   address      usize   the arena's first byte; 0 iff no arena is attached
//  +4   poolAddress  usize   the next never-used pool
//  +8   nfreepools   u32     empty pools on `freepools` + never-used pools
//  +12  ntotalpools  u32     poolsPerArena
//  +16  freepools    usize   singly linked through nextpool: empty pools
//  +20  nextarena    usize   usable_arenas links, or the unused_arena_objects link
//  +24  prevarena    usize
// ╘════════════════════════════════════════════════════════════════════════════════════╛
//
// States of an arena object:
//   unused  iff address == 0; it is then on unusedArenaObjects.
//   usable  iff address != 0 and nfreepools > 0; it is then on usableArenas, which is sorted
//           by ascending nfreepools, so allocation drains the fullest arena first and nearly
//           empty ones get the chance to become wholly free and be released.
//   full    iff address != 0 and nfreepools == 0; it is on no list.
// nfp2lasta[n] is the last usable arena with nfreepools == n, or 0 when there is none: it is
// where an arena whose count just became n is moved to, which keeps the re-sort O(1).
//
// Release rule (bpo-37257): when a freed pool leaves an arena wholly free and another arena
// follows it in usableArenas, the arena is released; the last wholly free arena is kept, so
// a loop that allocates and frees one block does not create and release an arena each time.
//
// ╒═══════ Arena map entry (8 bytes per ARENA_SIZE slot of the address space) ═══════╕
//  +0   headEnd   u32   an arena covers the slot's bytes [0, headEnd)
//  +4   tailLen   u32   an arena covers the slot's last tailLen bytes
// ╘═══════════════════════════════════════════════════════════════════════════════════╛
// An arena starting at offset o of slot s sets tailLen = ARENA_SIZE - o in slot s and, unless
// o == 0, headEnd = o in slot s + 1. Zeroed memory means "no arena", so the map needs no
// initialisation, and address_in_range reads only the map.

import { Status, CHECKED, header, fail, broken, poolShift, arenaShift } from "../memory/header";
import {
  rawAllocAligned, rawAlloc, rawFreeInternal, blockInfo, blockSize, INTERNAL, FREE, RAW_HEADER,
} from "../raw/tlsf";
import { PoolHeader, PymallocBroken, NO_CLASS, poolIsValid, poolTrailerBytes, trailerLead, isKeptEmpty } from "./pool";

@unmanaged export class ArenaObject {
  address: usize;
  poolAddress: usize;
  nfreepools: u32;
  ntotalpools: u32;
  freepools: usize;
  nextarena: usize;
  prevarena: usize;
  private reserved: u32;
}

/** Bytes of block bits after each arena (and, free-threaded, the pools' pending bits and owners). */
// @ts-ignore: decorator
@inline export function arenaBitsBytes(): usize {
  return poolTrailerBytes() << (arenaShift() - poolShift());
}

/** Where the block bits of the pool at `pool` live, in the arena at `address`. */
// @ts-ignore: decorator
@inline function poolBits(address: usize, pool: usize): usize {
  return address + (<usize>1 << arenaShift()) + (((pool - address) >> poolShift()) * poolTrailerBytes()) + trailerLead();
}

// @ts-ignore: decorator
@inline export const ARENA_OBJECT_SHIFT: u32 = 5;
// @ts-ignore: decorator
@inline const INITIAL_ARENA_OBJECTS: u32 = 16;

// @ts-ignore: decorator
@inline export function arenaObject(index: u32): ArenaObject {
  return changetype<ArenaObject>(header().arenas + (<usize>index << ARENA_OBJECT_SHIFT));
}

// @ts-ignore: decorator
@inline export function arenaIndex(ao: ArenaObject): u32 {
  return <u32>((changetype<usize>(ao) - header().arenas) >> ARENA_OBJECT_SHIFT);
}

// @ts-ignore: decorator
@inline export function nfp2lasta(n: u32): usize {
  return load<usize>(header().nfp2lasta + (<usize>n << 2));
}

// @ts-ignore: decorator
@inline export function setNfp2lasta(n: u32, ao: usize): void {
  store<usize>(header().nfp2lasta + (<usize>n << 2), ao);
}

/** True iff p lies inside an arena: exact, O(1), and it reads nothing but the arena map. */
// @ts-ignore: decorator
@inline export function addressInRange(p: usize): bool {
  const shift = arenaShift();
  const entry = header().arenaMap + ((p >> shift) << 3);
  const offset = <u32>p & ((1 << shift) - 1);
  // Both halves are computed, not short-circuited: which one holds depends on which slot of an
  // arena the block is in, at random, and a branch on it was mispredicted (churn 9.7 → 9.1 ns/op).
  return (offset < load<u32>(entry)) | (offset >= (1 << shift) - load<u32>(entry, 4));
}

/** Records in the arena map that [address, address + ARENA_SIZE) is, or no longer is, an arena. */
function markArena(address: usize, present: bool): void {
  const hdr = header();
  const arenaSize: u32 = 1 << hdr.arenaShift;
  const entry = hdr.arenaMap + ((address >> hdr.arenaShift) << 3);
  const offset = <u32>address & (arenaSize - 1);
  store<u32>(entry, present ? arenaSize - offset : 0, 4);
  if (offset) store<u32>(entry + 8, present ? offset : 0);
}

/** Doubles the arena objects (to maxArenas for the address space at most); false if it cannot. */
function growArenaObjects(): bool {
  const hdr = header();
  const limit: u32 = <u32>(<u64>1 << (32 - hdr.arenaShift));
  const old = hdr.maxArenas;
  if (old >= limit) return false;
  const count = old ? min(old << 1, limit) : INITIAL_ARENA_OBJECTS;
  const objects = rawAlloc(<usize>count << ARENA_OBJECT_SHIFT, INTERNAL);
  if (!objects) return false;
  // Tricky: nothing points into the old array now. growArenaObjects runs only when
  // unusedArenaObjects is empty and usableArenas is empty (new arenas are made only then), so
  // every live arena object is full, on no list, and nfp2lasta holds no arena either.
  if (old) {
    memory.copy(objects, hdr.arenas, <usize>old << ARENA_OBJECT_SHIFT);
    rawFreeInternal(hdr.arenas);
  }
  memory.fill(objects + (<usize>old << ARENA_OBJECT_SHIFT), 0, <usize>(count - old) << ARENA_OBJECT_SHIFT);
  hdr.arenas = objects;
  hdr.maxArenas = count;
  for (let i = count; i > old; i--) {
    const ao = arenaObject(i - 1);
    ao.nextarena = hdr.unusedArenaObjects;
    hdr.unusedArenaObjects = changetype<usize>(ao);
  }
  return true;
}

/**
 * Attaches a fresh arena to an unused arena object and makes it the only usable arena. The
 * heap's first arena starts firstArenaSkew pools further into memory (see placeFirstArena).
 */
export function newArena(): ArenaObject | null {
  const hdr = header();
  if (CHECKED) assert(hdr.usableArenas == 0); // only called when no arena has a free pool
  if (!hdr.unusedArenaObjects && !growArenaObjects()) {
    fail(Status.OUT_OF_MEMORY, 0);
    return null;
  }
  const ao = changetype<ArenaObject>(hdr.unusedArenaObjects);
  const skew: usize = hdr.ntimesArenaAllocated ? 0 : <usize>hdr.firstArenaSkew << hdr.poolShift;
  const address = rawAllocAligned((<usize>1 << hdr.arenaShift) + arenaBitsBytes(), <usize>1 << hdr.poolShift, skew);
  if (!address) {
    fail(Status.OUT_OF_MEMORY, 0);
    return null;
  }
  hdr.unusedArenaObjects = ao.nextarena;
  // A pool is carved iff its header's `bits` is set (pymalloc/obmalloc.ts, poolIsKnown): the
  // memory may hold anything, an older arena's pool headers included, so every one is cleared.
  const end = address + (<usize>1 << arenaShift());
  for (let pool = address; pool < end; pool += <usize>1 << poolShift()) changetype<PoolHeader>(pool).bits = 0;
  markArena(address, true);
  ao.address = address;
  ao.poolAddress = address;
  ao.nfreepools = hdr.poolsPerArena;
  ao.ntotalpools = hdr.poolsPerArena;
  ao.freepools = 0;
  ao.nextarena = 0;
  ao.prevarena = 0;
  hdr.narenasCurrentlyAllocated++;
  hdr.ntimesArenaAllocated++;
  if (hdr.narenasCurrentlyAllocated > hdr.narenasHighwater) {
    hdr.narenasHighwater = hdr.narenasCurrentlyAllocated;
  }
  hdr.usableArenas = changetype<usize>(ao);
  setNfp2lasta(ao.nfreepools, changetype<usize>(ao));
  return ao;
}

/** Unlinks a wholly free arena from usableArenas and gives its memory back to the raw allocator. */
function releaseArena(ao: ArenaObject): void {
  const hdr = header();
  if (ao.prevarena) changetype<ArenaObject>(ao.prevarena).nextarena = ao.nextarena;
  else hdr.usableArenas = ao.nextarena;
  if (ao.nextarena) changetype<ArenaObject>(ao.nextarena).prevarena = ao.prevarena;
  ao.nextarena = hdr.unusedArenaObjects;
  hdr.unusedArenaObjects = changetype<usize>(ao);
  markArena(ao.address, false);
  rawFreeInternal(ao.address);
  ao.address = 0;
  ao.poolAddress = 0;
  hdr.narenasCurrentlyAllocated--;
}

/**
 * Bookkeeping after one of ao's pools became empty (it is already on ao.freepools):
 * counts the free pool, then releases the arena or moves it to keep usableArenas sorted.
 */
export function arenaGainedFreePool(ao: ArenaObject): void {
  const hdr = header();
  let nf = ao.nfreepools;
  const lastnf = nfp2lasta(nf);
  if (lastnf == changetype<usize>(ao)) {
    const prev = ao.prevarena;
    setNfp2lasta(nf, prev && changetype<ArenaObject>(prev).nfreepools == nf ? prev : 0);
  }
  ao.nfreepools = ++nf;

  if (nf == ao.ntotalpools && ao.nextarena) {
    releaseArena(ao);
    return;
  }
  if (nf == 1) {
    // It was full, so on no list: it goes first, having the fewest free pools.
    ao.nextarena = hdr.usableArenas;
    ao.prevarena = 0;
    if (hdr.usableArenas) changetype<ArenaObject>(hdr.usableArenas).prevarena = changetype<usize>(ao);
    hdr.usableArenas = changetype<usize>(ao);
    if (!nfp2lasta(1)) setNfp2lasta(1, changetype<usize>(ao));
    return;
  }
  if (!nfp2lasta(nf)) setNfp2lasta(nf, changetype<usize>(ao));
  // The last arena with the old count stays where it is: everything after it has more.
  if (lastnf == changetype<usize>(ao)) return;

  // Slide ao right, to just after the last arena that had its old count.
  if (CHECKED) assert(ao.nextarena != 0); // else ao would have been the last with its old count
  const next = changetype<ArenaObject>(ao.nextarena);
  if (ao.prevarena) changetype<ArenaObject>(ao.prevarena).nextarena = ao.nextarena;
  else hdr.usableArenas = ao.nextarena;
  next.prevarena = ao.prevarena;
  const last = changetype<ArenaObject>(lastnf);
  ao.prevarena = lastnf;
  ao.nextarena = last.nextarena;
  if (ao.nextarena) changetype<ArenaObject>(ao.nextarena).prevarena = changetype<usize>(ao);
  last.nextarena = changetype<usize>(ao);
}

/**
 * Takes one pool from the first usable arena (making an arena if none is usable):
 * an empty pool from its freepools, else the next never-used one. 0 if out of memory.
 * Returns with the pool's arenaindex set; a never-used pool has szidx NO_CLASS.
 */
export function takePool(): PoolHeader | null {
  const hdr = header();
  let ao: ArenaObject;
  if (hdr.usableArenas) ao = changetype<ArenaObject>(hdr.usableArenas);
  else {
    const made = newArena();
    if (!made) return null;
    ao = made;
  }
  const nf = ao.nfreepools;
  if (nfp2lasta(nf) == changetype<usize>(ao)) setNfp2lasta(nf, 0);
  if (nf > 1) setNfp2lasta(nf - 1, changetype<usize>(ao));

  let pool: PoolHeader;
  if (ao.freepools) {
    pool = changetype<PoolHeader>(ao.freepools);
    ao.freepools = pool.nextpool;
  } else {
    pool = changetype<PoolHeader>(ao.poolAddress);
    ao.poolAddress += <usize>1 << hdr.poolShift;
    pool.arenaindex = <u16>arenaIndex(ao);
    pool.szidx = <u16>NO_CLASS;
    pool.bits = poolBits(ao.address, changetype<usize>(pool));
    memory.fill(pool.bits - trailerLead(), 0, poolTrailerBytes());
  }
  ao.nfreepools = nf - 1;
  if (nf == 1) {
    // The arena is full now: off the list.
    hdr.usableArenas = ao.nextarena;
    if (ao.nextarena) changetype<ArenaObject>(ao.nextarena).prevarena = 0;
    ao.nextarena = 0;
  }
  return pool;
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
    blockSize(block) < arenaSize + arenaBitsBytes() + RAW_HEADER
  ) {
    return broken(PymallocBroken.ARENA_BLOCK, self);
  }
  if (
    !addressInRange(address) || !addressInRange(address + arenaSize - 1) ||
    addressInRange(address - 1) || addressInRange(address + arenaSize)
  ) {
    return broken(PymallocBroken.ARENA_MAP, self);
  }
  if (
    ao.poolAddress < address || ao.poolAddress > address + arenaSize ||
    ((ao.poolAddress - address) & (poolSize - 1)) != 0 || ao.ntotalpools != hdr.poolsPerArena
  ) {
    return broken(PymallocBroken.ARENA_POOL_ADDRESS, self);
  }
  const carved = <u32>((ao.poolAddress - address) >> hdr.poolShift);
  let emptyPools: u32 = 0;
  for (let pool = address; pool < ao.poolAddress; pool += poolSize) {
    if (changetype<PoolHeader>(pool).bits != poolBits(address, pool)) return broken(PymallocBroken.BLOCK_BITS, pool);
    const status = poolIsValid(changetype<PoolHeader>(pool), index);
    if (status != PymallocBroken.NONE) return status;
    if (!changetype<PoolHeader>(pool).count && !isKeptEmpty(changetype<PoolHeader>(pool))) emptyPools++;
  }
  for (let pool = ao.poolAddress; pool < address + arenaSize; pool += poolSize) {
    if (changetype<PoolHeader>(pool).bits) return broken(PymallocBroken.BLOCK_BITS, pool);
  }
  let listed: u32 = 0;
  for (let pool = ao.freepools; pool; pool = changetype<PoolHeader>(pool).nextpool) {
    if (
      ++listed > emptyPools || pool < address || pool >= ao.poolAddress ||
      ((pool - address) & (poolSize - 1)) != 0 || changetype<PoolHeader>(pool).count != 0
    ) {
      return broken(PymallocBroken.ARENA_FREEPOOLS, self);
    }
  }
  if (listed != emptyPools) return broken(PymallocBroken.ARENA_FREEPOOLS, self);
  if (ao.nfreepools != emptyPools + hdr.poolsPerArena - carved) {
    return broken(PymallocBroken.ARENA_NFREEPOOLS, self);
  }
  return PymallocBroken.NONE;
}

/** usableArenas sorted by ascending nfreepools, holding exactly the arenas with a free pool. */
export function usableArenasAreValid(usable: u32): u32 {
  const hdr = header();
  let listed: u32 = 0;
  let prev: usize = 0;
  for (let a = hdr.usableArenas; a; a = changetype<ArenaObject>(a).nextarena) {
    const ao = changetype<ArenaObject>(a);
    if (
      ++listed > usable || !ao.address || !ao.nfreepools || ao.prevarena != prev ||
      (prev && changetype<ArenaObject>(prev).nfreepools > ao.nfreepools)
    ) {
      return broken(PymallocBroken.USABLE_ARENAS, a);
    }
    const next = ao.nextarena;
    const last = !next || changetype<ArenaObject>(next).nfreepools != ao.nfreepools;
    if ((nfp2lasta(ao.nfreepools) == a) != last) return broken(PymallocBroken.NFP2LASTA, a);
    prev = a;
  }
  if (listed != usable) return broken(PymallocBroken.USABLE_ARENAS, 0);
  for (let n: u32 = 0; n <= hdr.poolsPerArena; n++) {
    const last = nfp2lasta(n);
    if (last && (!changetype<ArenaObject>(last).address || changetype<ArenaObject>(last).nfreepools != n)) {
      return broken(PymallocBroken.NFP2LASTA, last);
    }
  }
  return PymallocBroken.NONE;
}
