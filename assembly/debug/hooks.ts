// The debug hooks (PYTHONMALLOC=debug): the three allocation domains, and the layout the debug
// allocator puts around every block when the hooks are on.
//
// Every allocation enters here: the host's malloc/free (PyObject_Malloc, API 'o'), its
// memMalloc (PyMem_Malloc, 'm') and rawMalloc (PyMem_RawMalloc, 'r'), and the object layer's
// held blocks (objects are 'o'). With the hooks off each entry point is one test of
// HeapHeader.debugFlags, then the allocator below (pymalloc for 'o' and 'm', the raw allocator
// for 'r'). With them on, the block the allocator sees is the request plus EXTRA bytes:
//
// ╒═══════════ A debug block (S = sizeof<usize>() = 4; p is what the caller gets) ═══════════╕
//  p-2S  size      S bytes    the size requested, big-endian
//  p-S   api       1 byte     'r', 'm' or 'o'
//  p-S+1 pad       S-1 bytes  FORBIDDEN
//  p     data      size bytes CLEAN when new (not for calloc)
//  p+n   tail      S bytes    FORBIDDEN
//  p+n+S serial    S bytes    big-endian call number, only with serial numbers on
// ╘═══════════════════════════════════════════════════════════════════════════════════════════╛
// EXTRA is 3S, 4S with serial numbers, so pymalloc serves requests of up to 512 - EXTRA bytes
// and its statistics count the EXTRA bytes, as CPython's do.
//
// A freed block is filled with DEAD, all of it from p-S on (pymalloc's free-list link takes
// the size word). Every block of a pool that is carved and free is then DEAD from S on:
// freed blocks by the fill, and the one block pymalloc carves ahead of need (the only one
// never handed out: pool.ts, "carved lazily") by freshBlockDead after each allocation, and the
// two first blocks of a pool made afresh by pymalloc itself (allocateFromNewPool). So a
// write after free is found when the block is handed out again, and by debugBlocksAreValid.
// The raw allocator keeps its own links in its free blocks: writes after free there are left
// to its own checks (raw/tlsf.ts, neighbourIsIntact).
//
// A violation is not fatal here (CPython aborts): the call fails with DEBUG_VIOLATION, the
// header records which rule broke and at which block, and the host builds CPython's report
// from the block's bytes. The bad block is left as it is, allocated, so nothing else changes;
// a freed block found written to when handed out is copied to the IO buffer for the report,
// made DEAD again and given back, and the call fails.
//
// Under the hooks realloc always moves the block: a stale pointer to the old one then reads
// DEAD, as CPython's debug realloc arranges by erasing the old block.

import { IO, Status, header, fail, broken, callocBytes } from "../memory/header";
import { rawAlloc, rawFree, rawRealloc, rawBlockStatus, rawUsableSize, rawNextCallerBlock } from "../raw/tlsf";
import { PoolHeader, POOL_OVERHEAD, NO_CLASS, poolOf, blockState } from "../pymalloc/pool";
import { classSize } from "../pymalloc/sizeclass";
import { addressInRange, arenaObject } from "../pymalloc/arena";
import {
  objectMalloc, objectCalloc, objectRealloc, objectFree,
  heldMalloc as pymallocHeldMalloc, heldFree as pymallocHeldFree, heldRealloc as pymallocHeldRealloc,
  blockStatus as pymallocBlockStatus, usableSize as pymallocUsableSize,
} from "../pymalloc/obmalloc";

// @ts-ignore: decorator
@inline const S: usize = sizeof<usize>();
/** Fresh data (unless calloc). */
// @ts-ignore: decorator
@inline export const CLEAN: u8 = 0xcd;
/** Freed blocks, whole. */
// @ts-ignore: decorator
@inline export const DEAD: u8 = 0xdd;
/** The pads around the data. */
// @ts-ignore: decorator
@inline export const FORBIDDEN: u8 = 0xfd;

// @ts-ignore: decorator
@inline export const API_RAW: u32 = 0x72; // 'r'
// @ts-ignore: decorator
@inline export const API_MEM: u32 = 0x6d; // 'm'
// @ts-ignore: decorator
@inline export const API_OBJECT: u32 = 0x6f; // 'o'

/** HeapHeader.debugFlags. */
// @ts-ignore: decorator
@inline export const HOOKS_ON: u32 = 1;
// @ts-ignore: decorator
@inline export const SERIAL_NUMBERS: u32 = 2;

/** Which rule a debug block broke: HeapHeader.debugViolation; src/heap/debug.ts words each. */
export const enum DebugViolation {
  NONE = 0,
  /** The API id is not the one the block is freed (or resized) through. */
  BAD_ID = 1,
  /** A byte of the S-1 pads before the data is not FORBIDDEN. */
  LEADING_PAD = 2,
  /** A byte of the S pads after the data is not FORBIDDEN. */
  TRAILING_PAD = 3,
  /** The block is free already (a second free, or realloc of a freed block). */
  FREED = 4,
  /** A freed block's DEAD bytes were written to. */
  WRITTEN_AFTER_FREE = 5,
  /** The size word says more than the block holds (overwritten, or not a debug block). */
  BAD_SIZE = 6,
}

/** The heap checker's code for a debug block that breaks the layout (heap/check.ts). */
// @ts-ignore: decorator
@inline export const DEBUG_BLOCK_BROKEN: u32 = 32;

/** Where debugReport copies a block that was found written to after free. */
// @ts-ignore: decorator
@inline const SNAPSHOT: usize = IO + 32;
// The snapshot is at most one pymalloc block (512 bytes) and IO holds 64 KiB: it fits.

// @ts-ignore: decorator
@inline function extraBytes(): usize {
  return header().debugFlags & SERIAL_NUMBERS ? 4 * S : 3 * S;
}

// @ts-ignore: decorator
@inline function readSize(block: usize): usize {
  return <usize>bswap<u32>(load<u32>(block));
}

/** Records a violation at block (p - 2S) and fails the call with DEBUG_VIOLATION. */
function violation(kind: DebugViolation, api: u32, block: usize): u32 {
  const hdr = header();
  hdr.debugViolation = kind;
  hdr.debugExpectedApi = api;
  hdr.debugBlock = block;
  return fail(Status.DEBUG_VIOLATION, block + 2 * S);
}

/** Bytes the allocator below gave block (which it has handed out, or has free in a pool). */
// @ts-ignore: decorator
@inline function capacityOf(block: usize): usize {
  return addressInRange(block) ? <usize>classSize(poolOf(block).szidx) : rawUsableSize(block);
}

/** True iff every byte of [from, to) is `value`. */
function allAre(from: usize, to: usize, value: u8): bool {
  for (let q = from; q < to; q++) if (load<u8>(q) != value) return false;
  return true;
}

/**
 * The layout of the handed-out debug block at `block`, checked as CPython does (API id, then the
 * leading pads, then the trailing pads); `api` 0 accepts any of the three ids.
 */
function layoutViolation(block: usize, api: u32): DebugViolation {
  const id = <u32>load<u8>(block + S);
  if (api ? id != api : id != API_RAW && id != API_MEM && id != API_OBJECT) return DebugViolation.BAD_ID;
  if (!allAre(block + S + 1, block + 2 * S, FORBIDDEN)) return DebugViolation.LEADING_PAD;
  const n = readSize(block);
  if (n > capacityOf(block) - extraBytes()) return DebugViolation.BAD_SIZE;
  const tail = block + 2 * S + n;
  if (!allAre(tail, tail + S, FORBIDDEN)) return DebugViolation.TRAILING_PAD;
  return DebugViolation.NONE;
}

/** True iff block starts a block pymalloc has carved (free or not) in a pool of a live arena. */
function isCarvedBlock(block: usize): bool {
  if (!addressInRange(block)) return false;
  const pool = poolOf(block);
  const offset = <u32>(block - changetype<usize>(pool));
  return pool.szidx != NO_CLASS && offset >= POOL_OVERHEAD && offset < pool.nextoffset &&
    (offset - POOL_OVERHEAD) % classSize(pool.szidx) == 0;
}

/**
 * Why p cannot be freed or resized through `api`: OK, a Status of the allocator below (the
 * address is no block), or DEBUG_VIOLATION. `held` asks for a block of the object layer.
 */
function checkDebugBlock(p: usize, api: u32, held: bool): u32 {
  if (p < 2 * S) return fail(Status.NOT_ALLOCATED, p);
  const block = p - 2 * S;
  const status = pymallocBlockStatus(block);
  if ((status == Status.DOUBLE_FREE || status == Status.EMPTY_POOL) && isCarvedBlock(block)) {
    return violation(DebugViolation.FREED, api, block);
  }
  if (status != (held ? Status.OBJECT : Status.OK)) {
    return fail(held && status == Status.OK ? Status.NOT_ALLOCATED : status, p);
  }
  const kind = layoutViolation(block, api);
  if (kind != DebugViolation.NONE) return violation(kind, api, block);
  return Status.OK;
}

/**
 * The free block pymalloc may just have carved ahead of need in the pool of `block` (the
 * tail of the free list, at nextoffset - size, link 0): made DEAD from S on, so that every
 * free block of a pool is. When the block there is instead one freed into a full pool, it
 * is DEAD already and refilling it changes nothing but evidence of a write after free.
 */
function freshBlockDead(block: usize): void {
  const pool = poolOf(block);
  const free = pool.freeblock;
  const size = <usize>classSize(pool.szidx);
  if (free && free == changetype<usize>(pool) + pool.nextoffset - size && !load<usize>(free)) {
    memory.fill(free + S, DEAD, size - S);
  }
}

/**
 * A block pymalloc just handed out, which was free in its pool: DEAD from S on, unless a
 * write after free changed it. True if it is intact. (A pool made afresh for a class starts
 * its two first blocks DEAD: pymalloc/obmalloc.ts, allocateFromNewPool.)
 */
function handedOutIntact(block: usize): bool {
  return allAre(block + S, block + <usize>classSize(poolOf(block).szidx), DEAD);
}

/** The allocator below, for each domain: the raw allocator for 'r', pymalloc otherwise. */
// @ts-ignore: decorator
@inline function blockFor(api: u32, bytes: usize, held: bool): usize {
  if (api == API_RAW) return rawAlloc(bytes, 0);
  return held ? pymallocHeldMalloc(bytes) : objectMalloc(bytes);
}

// @ts-ignore: decorator
@inline function releaseBlock(block: usize, held: bool): u32 {
  return held ? pymallocHeldFree(block) : objectFree(block);
}

/** Debug malloc: a debug block of n bytes through `api`, CLEAN unless `clean` is false; 0 on failure. */
function debugMalloc(api: u32, n: usize, held: bool, clean: bool): usize {
  const hdr = header();
  const extra = extraBytes();
  if (n > <usize>u32.MAX_VALUE - extra) {
    fail(Status.OUT_OF_MEMORY, 0);
    return 0;
  }
  const block = blockFor(api, n + extra, held);
  if (!block) return 0;
  if (addressInRange(block)) {
    if (!handedOutIntact(block)) {
      memory.copy(SNAPSHOT, block, capacityOf(block));
      memory.fill(block + S, DEAD, capacityOf(block) - S);
      releaseBlock(block, held);
      violation(DebugViolation.WRITTEN_AFTER_FREE, api, block);
      return 0;
    }
    freshBlockDead(block);
  }
  store<u32>(block, bswap<u32>(<u32>n));
  store<u8>(block + S, <u8>api);
  memory.fill(block + S + 1, FORBIDDEN, S - 1);
  const p = block + 2 * S;
  if (clean) memory.fill(p, CLEAN, n);
  memory.fill(p + n, FORBIDDEN, S);
  if (hdr.debugFlags & SERIAL_NUMBERS) store<u32>(p + n + S, bswap<u32>(++hdr.debugSerial));
  return p;
}

/** Debug free: checks p's block through `api`, then makes it DEAD and frees it. */
function debugFree(api: u32, p: usize, held: bool): u32 {
  if (!p) return Status.OK;
  const status = checkDebugBlock(p, api, held);
  if (status != Status.OK) return status;
  const block = p - 2 * S;
  if (addressInRange(block)) memory.fill(block, DEAD, capacityOf(block));
  else memory.fill(block, DEAD, readSize(block) + extraBytes());
  return releaseBlock(block, held);
}

/** Debug realloc: a new debug block holding p's data (CLEAN past it), then p freed. */
function debugRealloc(api: u32, p: usize, n: usize, held: bool): usize {
  if (!p) return debugMalloc(api, n, held, true);
  if (checkDebugBlock(p, api, held) != Status.OK) return 0;
  const q = debugMalloc(api, n, held, true);
  if (!q) return 0;
  memory.copy(q, p, min(n, readSize(p - 2 * S)));
  debugFree(api, p, held);
  return q;
}

/** Debug calloc: count * size zeroed bytes through `api`, or 0. */
function debugCalloc(api: u32, count: usize, size: usize): usize {
  const bytes = callocBytes(count, size);
  if (bytes < 0) return 0;
  const p = debugMalloc(api, <usize>bytes, false, false);
  if (p) memory.fill(p, 0, <usize>bytes);
  return p;
}

/** Every block's debug layout, and every free pymalloc block's DEAD bytes: 0 or DEBUG_BLOCK_BROKEN. */
export function debugBlocksAreValid(): u32 {
  const hdr = header();
  if (!hdr.debugFlags) return 0;
  const poolSize: usize = <usize>1 << hdr.poolShift;
  for (let i: u32 = 0; i < hdr.maxArenas; i++) {
    const ao = arenaObject(i);
    if (!ao.address) continue;
    for (let pool = ao.address; pool < ao.poolAddress; pool += poolSize) {
      const p = changetype<PoolHeader>(pool);
      if (p.szidx == NO_CLASS) continue;
      const size = <usize>classSize(p.szidx);
      for (let block = pool + POOL_OVERHEAD; block < pool + p.nextoffset; block += size) {
        if (blockState(p, block)) {
          const kind = layoutViolation(block, 0);
          if (kind != DebugViolation.NONE) return debugBroken(kind, block);
        } else if (!allAre(block + S, block + size, DEAD)) {
          return debugBroken(DebugViolation.WRITTEN_AFTER_FREE, block);
        }
      }
    }
  }
  for (let p = rawNextCallerBlock(0); p; p = rawNextCallerBlock(p)) {
    const kind = layoutViolation(p, 0);
    if (kind != DebugViolation.NONE) return debugBroken(kind, p);
  }
  return 0;
}

function debugBroken(kind: DebugViolation, block: usize): u32 {
  violation(kind, 0, block);
  return broken(DEBUG_BLOCK_BROKEN, block + 2 * S);
}

// ───────────────────────────── entry points ─────────────────────────────

/**
 * Turns the hooks on (flags: HOOKS_ON, | SERIAL_NUMBERS) for a heap that has handed out no
 * block yet; OK, or NOT_ALLOCATED when it has (the layout must be around every block).
 */
export function debugHooksInit(flags: u32): u32 {
  const hdr = header();
  if (hdr.rawBlocks || hdr.ntimesArenaAllocated) return fail(Status.NOT_ALLOCATED, 0);
  hdr.debugFlags = flags ? (flags & SERIAL_NUMBERS) | HOOKS_ON : 0;
  return Status.OK;
}

/**
 * Writes the last violation into the IO buffer: [0] DebugViolation, [1] the API expected (0:
 * any), [2] the block (p - 2S), [3] the bytes the allocator gave it, [4] EXTRA, [5] 1 if it
 * is a pymalloc block; from byte 32, the block's bytes when it was found written after free.
 */
export function debugReport(): void {
  const hdr = header();
  const block = hdr.debugBlock;
  store<u32>(IO, hdr.debugViolation);
  store<u32>(IO, hdr.debugExpectedApi, 4);
  store<u32>(IO, <u32>block, 8);
  const small = addressInRange(block);
  const capacity = small ? classSize(poolOf(block).szidx) : <u32>rawUsableSize(block);
  store<u32>(IO, capacity, 12);
  store<u32>(IO, <u32>extraBytes(), 16);
  store<u32>(IO, small ? 1 : 0, 20);
}

// @ts-ignore: decorator
@inline function hooked(): bool {
  return header().debugFlags != 0;
}

/** PyObject_Malloc (API 'o'). */
export function pyObjectMalloc(n: usize): usize {
  if (hooked()) return debugMalloc(API_OBJECT, n, false, true);
  return objectMalloc(n);
}

export function pyObjectCalloc(count: usize, size: usize): usize {
  if (hooked()) return debugCalloc(API_OBJECT, count, size);
  return objectCalloc(count, size);
}

export function pyObjectRealloc(p: usize, n: usize): usize {
  if (hooked()) return debugRealloc(API_OBJECT, p, n, false);
  return objectRealloc(p, n);
}

export function pyObjectFree(p: usize): u32 {
  if (hooked()) return debugFree(API_OBJECT, p, false);
  return objectFree(p);
}

/** PyMem_Malloc (API 'm'): pymalloc too, since CPython 3.6. */
export function pyMemMalloc(n: usize): usize {
  if (hooked()) return debugMalloc(API_MEM, n, false, true);
  return objectMalloc(n);
}

export function pyMemCalloc(count: usize, size: usize): usize {
  if (hooked()) return debugCalloc(API_MEM, count, size);
  return objectCalloc(count, size);
}

export function pyMemRealloc(p: usize, n: usize): usize {
  if (hooked()) return debugRealloc(API_MEM, p, n, false);
  return objectRealloc(p, n);
}

export function pyMemFree(p: usize): u32 {
  if (hooked()) return debugFree(API_MEM, p, false);
  return objectFree(p);
}

/** PyMem_RawMalloc (API 'r'): the raw allocator, whatever the size. */
export function pyRawMalloc(n: usize): usize {
  if (hooked()) return debugMalloc(API_RAW, n, false, true);
  return rawAlloc(n, 0);
}

export function pyRawCalloc(count: usize, size: usize): usize {
  if (hooked()) return debugCalloc(API_RAW, count, size);
  const bytes = callocBytes(count, size);
  if (bytes < 0) return 0;
  const p = rawAlloc(<usize>bytes, 0);
  if (p) memory.fill(p, 0, <usize>bytes);
  return p;
}

export function pyRawRealloc(p: usize, n: usize): usize {
  if (hooked()) return debugRealloc(API_RAW, p, n, false);
  if (!p) return rawAlloc(n, 0);
  const status = rawBlockStatus(p);
  if (status != Status.OK) {
    fail(status, p);
    return 0;
  }
  return rawRealloc(p, n);
}

export function pyRawFree(p: usize): u32 {
  if (hooked()) return debugFree(API_RAW, p, false);
  if (!p) return Status.OK;
  return rawFree(p);
}

// What the object layer allocates through: held blocks (pymalloc/obmalloc.ts), API 'o'.

export function heldMalloc(n: usize): usize {
  if (hooked()) return debugMalloc(API_OBJECT, n, true, true);
  return pymallocHeldMalloc(n);
}

export function heldFree(p: usize): u32 {
  if (hooked()) return debugFree(API_OBJECT, p, true);
  return pymallocHeldFree(p);
}

export function heldRealloc(p: usize, n: usize): usize {
  if (hooked()) return debugRealloc(API_OBJECT, p, n, true);
  return pymallocHeldRealloc(p, n);
}

/** pymalloc's blockStatus for the block under p (p itself when the hooks are off). */
export function blockStatus(p: usize): u32 {
  if (!hooked()) return pymallocBlockStatus(p);
  if (p < 2 * S) return Status.NOT_ALLOCATED;
  return pymallocBlockStatus(p - 2 * S);
}

/** Bytes the caller may use at p: with the hooks on, exactly the size requested. 0 if p is no block. */
export function usableSize(p: usize): usize {
  if (!hooked()) return pymallocUsableSize(p);
  fail(Status.OK, 0);
  const status = blockStatus(p);
  if (status != Status.OK && status != Status.OBJECT) {
    fail(status, p);
    return 0;
  }
  const block = p - 2 * S;
  return min(readSize(block), capacityOf(block) - extraBytes());
}
