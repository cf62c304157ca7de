// The heap header: every piece of allocator state, at one fixed address in linear memory.
//
// Glossary (words mean one thing throughout assembly/ and src/):
//   wasm page   64 KiB, the unit of memory.grow. Never just "page".
//   block       what malloc hands out. A small block lives in a pool; a raw block is
//               carved by the raw allocator (raw/tlsf.ts) for requests of 0 or > threshold bytes.
//   size class  the rounded-up block size of a small request: (index + 1) << alignmentShift.
//   pool        POOL_SIZE bytes, POOL_SIZE-aligned, holding blocks of one size class
//               behind a pool header (pymalloc/pool.ts).
//   arena       ARENA_SIZE bytes of pools, obtained from the raw allocator (pymalloc/arena.ts).
//   arena map   one entry per ARENA_SIZE slot of the 4 GiB address space, telling exactly
//               which bytes of the slot lie in an arena (address_in_range).
//
// Layers, bottom up: linear memory -> raw allocator -> arenas -> pools -> blocks, then objects
// and the collector; one folder each (assembly/README.md), and each calls only those below it.
//
// ╒═════════════ Heap header (HEAP, below the module's static data) ══════════════╕
//  +0    HeapHeader            geometry, arena bookkeeping, counters, errors
//  +HDR  usedpools             2 x usize per size class: the links of a fake pool
//                              header per class (see pymalloc/pool.ts, "Tricky")
//  +...  divisibility table    3 x u32 per size class (see pymalloc/sizeclass.ts)
//  +...  raw allocator root    free-list bitmaps and heads (see raw/tlsf.ts)
//  +...  object space          reserved for the object layer and the collector
//  +...  call scratch          working records of one call (the JSON walks, heap/json.ts and
//                              heap/json-parse.ts), set up afresh by each call
//  +...  shared state          reserved for the host, when workers share the heap: the GIL,
//                              its statistics and the attachments (src/heap/gil.ts); the core
//                              never reads or writes it
// ╘════════════════════════════════════════════════════════════════════════════╛
//
// Tunables and the invariants they must keep (checked once, by heapInit):
//   1) alignmentShift is 3 or 4 (ALIGNMENT 8 or 16).
//   2) ALIGNMENT <= smallThreshold <= MAX_SMALL_THRESHOLD, smallThreshold % ALIGNMENT == 0.
//   3) 4 KiB <= POOL_SIZE <= ARENA_SIZE, both powers of two.
//   4) WASM_PAGE <= ARENA_SIZE <= MAX_ARENA_SIZE.
//   5) POOL_OVERHEAD + smallThreshold <= POOL_SIZE (every pool holds one block of
//      every class; in fact the smallest legal pool holds 7 blocks of 512 bytes).

/** Assertions (and the object quarantine, objects/object.ts) are on in the debug build only. */
// @ts-ignore: decorator
@inline export const CHECKED: bool = !ASC_NO_ASSERT;

/**
 * The free-threaded build (docs/free-threaded.md): its targets define PYMALLOC_FREE_THREADED with
 * --use; every other build compiles none of the code behind `if (FREE_THREADED)`.
 */
// @ts-ignore: decorator, and defined by --use
@inline export const FREE_THREADED: bool = isDefined(PYMALLOC_FREE_THREADED);

// @ts-ignore: decorator
@inline export const WASM_PAGE_SHIFT: u32 = 16;
// @ts-ignore: decorator
@inline export const WASM_PAGE: u32 = 1 << WASM_PAGE_SHIFT;
/** Pages of the 4 GiB wasm32 address space. */
// @ts-ignore: decorator
@inline export const MAX_WASM_PAGES: u32 = 65536;

// @ts-ignore: decorator
@inline export const MAX_SIZE_CLASSES: u32 = 64;
// @ts-ignore: decorator
@inline export const MAX_SMALL_THRESHOLD: u32 = 512;
// @ts-ignore: decorator
@inline export const MIN_POOL_SHIFT: u32 = 12;
// @ts-ignore: decorator
@inline export const MAX_ARENA_SHIFT: u32 = 26;

/** Why a call failed: returned by free and friends, and left in HeapHeader.lastError. */
export const enum Status {
  OK = 0,
  /** No memory could be had for the request (memory.grow refused, or maxMemory reached). */
  OUT_OF_MEMORY = 1,
  /** The address is in no arena and starts no raw block. */
  NOT_ALLOCATED = 2,
  /** The address is inside a pool but not at the start of one of its blocks. */
  MISALIGNED = 3,
  /** The address is in a pool that holds no allocated block. */
  EMPTY_POOL = 4,
  /** The address is a block that is already free. */
  DOUBLE_FREE = 5,
  /** The address is in a pool, past the blocks that were ever handed out. */
  NEVER_ALLOCATED = 6,
  /** heapInit was given a geometry that breaks one of the invariants above. */
  BAD_GEOMETRY = 7,
  /**
   * The block is held by the object layer: it holds an object (or an object's items), and
   * objects die by decref.
   */
  OBJECT = 8,
  /** The address is inside a held block (an object's GC header, say), not at its start. */
  INSIDE_OBJECT = 9,
  /**
   * The debug hooks found the block's layout broken (a pad byte, its API id, a write after
   * free, a second free): debugViolation says which.
   */
  DEBUG_VIOLATION = 10,
}

@unmanaged export class HeapHeader {
  /** log2(ALIGNMENT). */
  alignmentShift: u32;
  /** Number of size classes: smallThreshold >> alignmentShift. */
  numClasses: u32;
  /** Requests of 1..smallThreshold bytes are served from pools. */
  smallThreshold: u32;
  /** log2(POOL_SIZE). */
  poolShift: u32;
  /** log2(ARENA_SIZE). */
  arenaShift: u32;
  /** ARENA_SIZE / POOL_SIZE. */
  poolsPerArena: u32;

  /** The arena map: (2^32 >> arenaShift) entries of ArenaMapEntry. */
  arenaMap: usize;
  /** The arena objects: an array of maxArenas ArenaObject, grown by doubling. */
  arenas: usize;
  maxArenas: u32;
  /** Singly linked through nextarena: arena objects with no arena attached. */
  unusedArenaObjects: usize;
  /** Doubly linked, sorted by ascending nfreepools: arenas with at least one free pool. */
  usableArenas: usize;
  /** nfp2lasta[n] is the last arena in usableArenas with n free pools (poolsPerArena + 1 entries). */
  nfp2lasta: usize;
  narenasCurrentlyAllocated: u32;
  ntimesArenaAllocated: u32;
  narenasHighwater: u32;

  /** Raw blocks handed out to callers, and the bytes they can hold. */
  rawBlocks: u32;
  rawBytes: u32;
  /** Bytes held in free raw-allocator blocks: released memory awaiting reuse. */
  rawFreeBytes: u32;
  /** Start of the memory the raw allocator manages (memory below is the header, map, statics). */
  dynamicBase: usize;
  committedPages: u32;
  peakCommittedPages: u32;
  /** The most wasm pages the heap may commit (maxMemory). */
  maxPages: u32;

  /** Status of the last failed call, and the address it was about. */
  lastError: u32;
  errorAddress: usize;
  /**
   * The Broken code of the corruption that stopped the last operation (see `corrupt`), or 0.
   * Once it is set the host refuses every further call.
   */
  corruption: u32;
  /** Pools of address space the first arena is placed further in (placeFirstArena). */
  firstArenaSkew: u32;

  /**
   * The debug hooks (debug/hooks.ts): 0 when off, which is all the entry points test; set once,
   * before the first block, by debugHooksInit.
   */
  debugFlags: u32;
  /** Calls to debug malloc/realloc so far: the serial number of the last block made. */
  debugSerial: u32;
  /** The last violation the hooks found (debug/hooks.ts, DebugViolation), and about what. */
  debugViolation: u32;
  debugExpectedApi: u32;
  debugBlock: usize;
}

// @ts-ignore: decorator
@inline const HEADER_FIXED: usize = (offsetof<HeapHeader>() + 15) & ~15;
// @ts-ignore: decorator
@inline export const USEDPOOLS_OFFSET: usize = HEADER_FIXED;
// @ts-ignore: decorator
@inline export const DIVISIBILITY_OFFSET: usize = USEDPOOLS_OFFSET + MAX_SIZE_CLASSES * 2 * sizeof<usize>();
// @ts-ignore: decorator
@inline export const RAW_ROOT_OFFSET: usize = DIVISIBILITY_OFFSET + MAX_SIZE_CLASSES * 3 * sizeof<u32>();
/** Bytes reserved for the raw allocator's root (raw/tlsf.ts checks that its root fits). */
// @ts-ignore: decorator
@inline export const RAW_ROOT_BYTES: usize = 2048;
// @ts-ignore: decorator
@inline export const OBJECT_SPACE_OFFSET: usize = RAW_ROOT_OFFSET + RAW_ROOT_BYTES;
/** Bytes reserved for the object layer and the cycle collector. */
// @ts-ignore: decorator
@inline export const OBJECT_SPACE_BYTES: usize = 1024;
// @ts-ignore: decorator
@inline export const CALL_SCRATCH_OFFSET: usize = OBJECT_SPACE_OFFSET + OBJECT_SPACE_BYTES;
/** Bytes reserved for the call scratch (heap/json.ts places its records in them). */
// @ts-ignore: decorator
@inline export const CALL_SCRATCH_BYTES: usize = 128;
// @ts-ignore: decorator
@inline export const SHARED_STATE_OFFSET: usize = CALL_SCRATCH_OFFSET + CALL_SCRATCH_BYTES;
/** Bytes reserved for the host's shared state (src/heap/gil.ts checks that its layout fits). */
// @ts-ignore: decorator
@inline export const SHARED_STATE_BYTES: usize = 2048;
// @ts-ignore: decorator
@inline const HEADER_BYTES: usize = SHARED_STATE_OFFSET + SHARED_STATE_BYTES;

/**
 * The address of the heap header. Tricky: not memory.data, because a module that imports its
 * memory carries every static region as an active data segment, zeros included, and each
 * instantiation over a shared memory re-applies them: a worker attaching would reset the
 * header of a heap in use. So the header and the IO buffer sit below the module's static data,
 * which asconfig.json's memoryBase starts at STATIC_END or above (heapInit refuses to build
 * otherwise), where no segment reaches.
 */
// @ts-ignore: decorator
@inline export const HEAP: usize = 64;
// @ts-ignore: decorator
@inline export const CALL_SCRATCH: usize = HEAP + CALL_SCRATCH_OFFSET;

/**
 * The exchange buffer, after the header: batch calls and statistics pass arrays through it.
 * IO_WORDS u32 words, so a batch of up to IO_WORDS requests crosses in one call.
 */
// @ts-ignore: decorator
@inline export const IO_WORDS: u32 = 16384;
// @ts-ignore: decorator
@inline export const IO: usize = HEAP + HEADER_BYTES;
/** The end of the header and the IO buffer: the lowest memoryBase the build may have. */
// @ts-ignore: decorator
@inline export const STATIC_END: usize = IO + (<usize>IO_WORDS << 2);

// @ts-ignore: decorator
@inline export function header(): HeapHeader {
  return changetype<HeapHeader>(HEAP);
}

// Fixed geometry. A preset's build fixes its geometry at compile time (scripts/build-presets.sh:
// --use PYMALLOC_ALIGNMENT_SHIFT=4 --use PYMALLOC_POOL_SHIFT=14 ...), so that the fast paths
// shift and mask by constants instead of loading them from the header on every call; heapInit
// then refuses any other geometry. The generic build defines none of them and reads the header.
// The header holds the geometry in both builds, so everything off the fast path reads it there.

// @ts-ignore: decorator
@inline export function alignmentShift(): u32 {
  // @ts-ignore: defined by --use
  if (isDefined(PYMALLOC_ALIGNMENT_SHIFT)) return <u32>PYMALLOC_ALIGNMENT_SHIFT;
  return header().alignmentShift;
}

// @ts-ignore: decorator
@inline export function poolShift(): u32 {
  // @ts-ignore: defined by --use
  if (isDefined(PYMALLOC_POOL_SHIFT)) return <u32>PYMALLOC_POOL_SHIFT;
  return header().poolShift;
}

// @ts-ignore: decorator
@inline export function arenaShift(): u32 {
  // @ts-ignore: defined by --use
  if (isDefined(PYMALLOC_ARENA_SHIFT)) return <u32>PYMALLOC_ARENA_SHIFT;
  return header().arenaShift;
}

// @ts-ignore: decorator
@inline export function smallThreshold(): u32 {
  // @ts-ignore: defined by --use
  if (isDefined(PYMALLOC_SMALL_THRESHOLD)) return <u32>PYMALLOC_SMALL_THRESHOLD;
  return header().smallThreshold;
}

/**
 * True in the tuned preset's builds (--use PYMALLOC_TUNED=1): pymalloc's structure with policies
 * that are not CPython's (pymalloc/pool.ts, relinkIfWasFull). Off, every policy is CPython's.
 */
// @ts-ignore: decorator
@inline export function tunedPolicy(): bool {
  // @ts-ignore: defined by --use
  return isDefined(PYMALLOC_TUNED);
}

/** True iff this build runs the given geometry: any, unless it fixes one at compile time. */
export function geometryIsBuilt(alignment: u32, threshold: u32, pool: u32, arena: u32): bool {
  // @ts-ignore: defined by --use
  if (isDefined(PYMALLOC_ALIGNMENT_SHIFT) && alignment != <u32>PYMALLOC_ALIGNMENT_SHIFT) return false;
  // @ts-ignore: defined by --use
  if (isDefined(PYMALLOC_SMALL_THRESHOLD) && threshold != <u32>PYMALLOC_SMALL_THRESHOLD) return false;
  // @ts-ignore: defined by --use
  if (isDefined(PYMALLOC_POOL_SHIFT) && pool != <u32>PYMALLOC_POOL_SHIFT) return false;
  // @ts-ignore: defined by --use
  if (isDefined(PYMALLOC_ARENA_SHIFT) && arena != <u32>PYMALLOC_ARENA_SHIFT) return false;
  return true;
}

// ───── the free-threaded build's threads (docs/free-threaded.md) ─────
//
// ╒═══════ ThreadState (THREAD_BYTES, one per attachment id: objects/brc.ts owns the table) ═══════╕
//  +0   tid           the attached thread's tid; 0 while the slot is free
//  +4   queue, +8 queued          the biased-refcount merge queue (objects/brc.ts)
//  +12  pools         the thread's usedpools: an INTERNAL raw block (pymalloc/pool.ts)
//  +16  state         the stop-the-world word: the host's (src/heap/shared.ts), never the core's
//  +20  lastError, +24 errorAddress   this thread's failure (see `fail`)
//  +28  remote        first block freed into this thread's pools by another thread, linked
//                     through each block's first word; REMOTE_CLOSED once the thread has left
//  +32  remoteFrees, +36 drains, +40 drained, +44 adopted, +48 lockedFrees   counters
// ╘════════════════════════════════════════════════════════════════════════════════════════════════╛
// 64 bytes, and the table 64-aligned, so that two threads' records never share a cache line.
// FtState, in the last FT_STATE_BYTES of the object space: +0 the attachment serial, +4 the table,
// +8 the objects a merge with the world stopped kept, +12 how many (objects/brc.ts).

// @ts-ignore: decorator
@inline export const THREAD_BYTES: usize = 64;
// @ts-ignore: decorator
@inline export const THREAD_POOLS: usize = 12;
// @ts-ignore: decorator
@inline export const THREAD_STATE: usize = 16;
// @ts-ignore: decorator
@inline export const THREAD_LAST_ERROR: usize = 20;
// @ts-ignore: decorator
@inline export const THREAD_ERROR_ADDRESS: usize = 24;
// @ts-ignore: decorator
@inline export const THREAD_REMOTE: usize = 28;
// @ts-ignore: decorator
@inline export const THREAD_REMOTE_FREES: usize = 32;
// @ts-ignore: decorator
@inline export const THREAD_DRAINS: usize = 36;
// @ts-ignore: decorator
@inline export const THREAD_DRAINED: usize = 40;
// @ts-ignore: decorator
@inline export const THREAD_ADOPTED: usize = 44;
// @ts-ignore: decorator
@inline export const THREAD_LOCKED_FREES: usize = 48;
/** A closed remote list: its thread has left, and a freer takes the locked path instead. */
// @ts-ignore: decorator
@inline export const REMOTE_CLOSED: usize = 1;
// @ts-ignore: decorator
@inline export const FT_STATE_BYTES: usize = 16;
// @ts-ignore: decorator
@inline export const FT_STATE: usize = HEAP + OBJECT_SPACE_OFFSET + OBJECT_SPACE_BYTES - FT_STATE_BYTES;
/** Records of the thread table: attachment ids 1..MAX_THREADS (record 0 unused). */
// @ts-ignore: decorator
@inline export const MAX_THREADS: u32 = 256;
/** A tid's attachment id: tid & THREAD_ID_MASK (objects/brc.ts). */
// @ts-ignore: decorator
@inline export const THREAD_ID_MASK: u32 = 511;

/**
 * This instance's thread, set by threadAttach (objects/brc.ts): its tid and its ThreadState,
 * 0 until then. Per instance by nature (each worker has its own instance), as brc.ts's myTid.
 */
let ownTid: u32 = 0;
let ownRecord: usize = 0;

// @ts-ignore: decorator
@inline export function currentTid(): u32 {
  return ownTid;
}

// @ts-ignore: decorator
@inline export function currentRecord(): usize {
  return ownRecord;
}

export function setCurrentThread(tid: u32, record: usize): void {
  ownTid = tid;
  ownRecord = record;
}

/** The thread table's record of attachment `id`, 0 before the first attachment. */
// @ts-ignore: decorator
@inline export function threadRecord(id: u32): usize {
  const table = load<usize>(FT_STATE, 4);
  return table ? table + <usize>id * THREAD_BYTES : 0;
}

/**
 * Records why a call failed and returns the status, so callers can `return fail(...)`. In the
 * free-threaded build an attached thread keeps its own (two threads can fail at once).
 */
export function fail(status: Status, address: usize): u32 {
  if (FREE_THREADED && ownRecord) {
    store<u32>(ownRecord, status, THREAD_LAST_ERROR);
    store<usize>(ownRecord, address, THREAD_ERROR_ADDRESS);
    return status;
  }
  const hdr = header();
  hdr.lastError = status;
  hdr.errorAddress = address;
  return status;
}

/** The status `fail` recorded last (this thread's, in the free-threaded build). */
// @ts-ignore: decorator
@inline export function lastStatus(): u32 {
  if (FREE_THREADED && ownRecord) return load<u32>(ownRecord, THREAD_LAST_ERROR);
  return header().lastError;
}

/** The address `fail` recorded last (this thread's, in the free-threaded build). */
// @ts-ignore: decorator
@inline export function lastAddress(): usize {
  if (FREE_THREADED && ownRecord) return load<usize>(ownRecord, THREAD_ERROR_ADDRESS);
  return header().errorAddress;
}

/**
 * The bytes of calloc(count, size), or -1 with OUT_OF_MEMORY recorded when the product does not
 * fit the 32-bit address space (every calloc of every domain checks it here).
 */
export function callocBytes(count: usize, size: usize): i64 {
  const bytes = <u64>count * <u64>size;
  if (bytes <= <u64>u32.MAX_VALUE) return <i64>bytes;
  fail(Status.OUT_OF_MEMORY, 0);
  return -1;
}

/**
 * A checker's verdict on a broken invariant: leaves the offending structure's address in
 * errorAddress (lastError stays OK: nothing failed) and returns the invariant's code.
 */
export function broken(code: u32, address: usize): u32 {
  fail(Status.OK, address);
  return code;
}

/**
 * An operation found the heap corrupted (a list longer than the heap can hold, a free list
 * handing out a live block, a raw header overwritten): it cannot finish, and going on would
 * spread the damage. Records the Broken code and the address in the header, then traps; the
 * host turns the trap into a HeapCorruptionError naming the invariant (src/heap/heap.ts).
 */
export function corrupt(code: u32, address: usize): void {
  const hdr = header();
  hdr.corruption = code;
  hdr.errorAddress = address;
  if (FREE_THREADED && ownRecord) store<usize>(ownRecord, address, THREAD_ERROR_ADDRESS);
  unreachable();
}

// @ts-ignore: decorator
@inline export function alignUp(value: usize, alignment: usize): usize {
  return (value + alignment - 1) & ~(alignment - 1);
}
