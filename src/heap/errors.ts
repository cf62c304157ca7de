/** Why an address was refused; the Status codes of assembly/memory/header.ts, by name. */
export type InvalidAddressReason =
  | 'not-allocated'
  | 'misaligned'
  | 'empty-pool'
  | 'double-free'
  | 'never-allocated'
  | 'object';

const REASON_TEXT: Record<InvalidAddressReason, string> = {
  'not-allocated': 'is not in any arena and does not start a raw block',
  misaligned: 'is inside a pool but not at the start of one of its blocks',
  'empty-pool': 'is in a pool that holds no allocated block',
  'double-free': 'is a block that is already free',
  'never-allocated': 'is in an arena, past the blocks that were ever handed out',
  object: "is (or is inside) a block that holds an object or an object's items: objects die by decref",
};

export function hex(address: number): string {
  return '0x' + (address >>> 0).toString(16).padStart(8, '0');
}

/** An address that is not a live block of this heap was passed to free, realloc, usableSize, ... */
export class InvalidAddressError extends Error {
  override name = 'InvalidAddressError';
  constructor(
    readonly operation: string,
    readonly address: number,
    readonly reason: InvalidAddressReason,
  ) {
    super(`${operation}(${hex(address)}): address ${REASON_TEXT[reason]}`);
  }
}

/** The heap could not grow to satisfy a request. The heap is unchanged and stays usable. */
export class OutOfMemoryError extends Error {
  override name = 'OutOfMemoryError';
  /**
   * @param requested bytes asked for; 0 for an object, whose size the core works out from its type
   * @param what      what was being allocated, when it is more than `requested` bytes
   *                  ("a tuple of 1000 references"): the message names it instead of the bytes
   */
  constructor(
    readonly operation: string,
    readonly requested: number,
    readonly committedBytes: number,
    readonly maxMemory: number,
    what?: string,
  ) {
    super(
      `${operation}: out of memory for ${what ?? `${requested} bytes`} ` +
        `(${committedBytes} bytes committed, maxMemory ${maxMemory})`,
    );
  }
}

/** The invariants check() verifies, by their codes (assembly/heap/check.ts lists every layer's). */
export const INVARIANTS = [
  'none',
  'arena map: the map does not cover exactly the attached arenas',
  'arena block: an arena is not a pool-aligned internal raw block of ARENA_SIZE bytes',
  'arena pool address: poolAddress is outside its arena or not pool-aligned',
  'arena nfreepools: nfreepools != empty pools + never-used pools',
  'arena freepools: the freepools list does not hold exactly the empty pools',
  'pool arenaindex: a carved pool names another arena object',
  'pool size class: a carved pool has no valid size class',
  'pool count: a pool counts more blocks in use than it can hold',
  'pool free list: the free list leaves the pool, repeats a block, or disagrees with count',
  'pool nextoffset: nextoffset or maxnextoffset is out of step with the size class',
  'usedpools: a list is broken or does not hold exactly the used pools of its class',
  'usable arenas: the list is broken, unsorted, or not exactly the arenas with free pools',
  'nfp2lasta: an entry is not the last usable arena with its count of free pools',
  'unused arena objects: the list is broken or holds an arena object with an arena',
  'arena counters: the arena counters disagree with the attached arenas',
  'raw tiling: raw blocks do not tile memory up to the sentinel',
  'raw flags: a raw block has a wrong FREE/PREV_FREE flag, guard or back pointer',
  'raw free lists: a raw free list or bitmap is broken',
  'raw counters: the raw block counters disagree with the blocks',
  'memory: committed pages disagree with the size of linear memory',
  'gc lists: a generation list is broken or holds something that is not a live GC object',
  'object reference: a tracked object (or gc.garbage) refers to something that is not a live object',
  'refcount: an object is referred to by more tracked objects than its refcount counts',
  'raw overrun: a raw block next to the one being freed or resized has a header the raw allocator did not write (a write past the end of a block)',
  "block bits: a pool's block states disagree with its carved blocks, its free list or its count",
  'gc list walk: a generation list or a working list of a collection is longer than the live GC objects (its links were overwritten)',
  'trashcan walk: the delete-later list leads to a freed object or past the live GC objects (its links were overwritten)',
  "weak list walk: an object's weak list is longer than the live GC objects (its links were overwritten)",
  'intern table: a probe of the interned strings found no empty slot (the table was overwritten)',
  'quarantine: a freed object parked by the debug build was written to after it died (a use after free)',
  'object block: the block under an object, or an array an object owns, is not held by the object layer',
  'debug block: a block breaks the debug hooks\' layout (a MemoryCorruptionError says how)',
  "dict table: a dict's index table, entries or counts disagree, or a probe found no empty slot (the table was overwritten)",
  "brc queue: a thread's merge queue of a free-threaded heap is longer than it counts (its links were overwritten)",
  "pool owner: a pool of a free-threaded heap is owned by no live thread, sits on another's usedpools, or has a pending free on a block not handed out",
  "remote list: a thread's remote-free list holds a block that is not on its way back, holds one twice, or misses one (its links were overwritten)",
] as const;

/**
 * The heap is corrupted: check() found a broken invariant, or an operation found one (or
 * trapped) and could not finish. After an operation's, the heap refuses every further call
 * with a HeapCorruptionError whose `firstFound` is that first one.
 */
export class HeapCorruptionError extends Error {
  override name = 'HeapCorruptionError';
  constructor(
    readonly invariant: string,
    readonly address: number,
    /** The call that found it, when an operation (not check()) did. */
    readonly operation?: string,
    /** Set when the heap was already broken by an earlier operation: that operation's error. */
    readonly firstFound?: HeapCorruptionError,
  ) {
    super(
      firstFound
        ? `${operation}: the heap is unusable since ${firstFound.message}`
        : `${operation ? `${operation}: ` : ''}heap corrupted: ${invariant} (at ${hex(address)})`,
    );
  }
}

/** The heap was used after dispose(). */
export class HeapDisposedError extends Error {
  override name = 'HeapDisposedError';
  /** `why` is what ended the heap for the caller: its disposal, or (shared heaps) this instance's detach(). */
  constructor(operation: string, why = 'the heap has been disposed') {
    super(`${operation}: ${why}`);
  }
}

/** Why an instance that detached from a shared heap refuses every call. */
export const DETACHED = 'this instance has detached from the shared heap';

/** Why an address was refused as an object. */
export type InvalidObjectReason = 'not-an-object' | 'bad-value';

/**
 * An address that is not a live object was used as one: never an object, or already
 * deallocated (a decref below zero ends here too). The heap is unchanged.
 */
export class InvalidObjectError extends Error {
  override name = 'InvalidObjectError';
  /**
   * @param address the object operated on
   * @param value   for 'bad-value': the value that was to be stored in it
   */
  constructor(
    readonly operation: string,
    readonly address: number,
    readonly reason: InvalidObjectReason = 'not-an-object',
    readonly value?: number,
  ) {
    super(
      `${operation}(${hex(address)}): ${reason === 'bad-value' ? `the value to store, ${hex(value ?? 0)},` : 'address'} ` +
        'is not a live object (never one, or already deallocated)',
    );
  }
}

/** The object's kind does not support the operation (listAppend on a tuple, weakref to an int...). */
export class ObjectTypeError extends TypeError {
  override name = 'ObjectTypeError';
  constructor(
    readonly operation: string,
    readonly address: number,
    detail: string,
  ) {
    super(`${operation}(${hex(address)}): ${detail}`);
  }
}

/** What the debug hooks found wrong with a block (assembly/debug/hooks.ts, DebugViolation). */
export type DebugProblem =
  | 'bad-id'
  | 'bad-leading-pad'
  | 'bad-trailing-pad'
  | 'bad-size'
  | 'freed'
  | 'written-after-free';

/**
 * The debug hooks (`debugHooks: true`) found a block's layout broken: a pad byte overwritten,
 * the block freed through another API than it was allocated with, a second free, a write to a
 * freed block. The message is CPython's report (its _PyObject_DebugDumpAddress) followed by
 * `operation: problem`. The bad block is left as it was; the heap stays usable.
 */
export class MemoryCorruptionError extends Error {
  override name = 'MemoryCorruptionError';
  constructor(
    readonly operation: string,
    /** The block's address as the caller has it (p). */
    readonly address: number,
    readonly problem: DebugProblem,
    report: string,
  ) {
    super(report);
  }
}

/** A tracemalloc call that needs tracing was made while it is off (CPython raises RuntimeError). */
export class TracemallocNotTracingError extends Error {
  override name = 'TracemallocNotTracingError';
  constructor(readonly operation: string) {
    super(`${operation}: tracemalloc is not tracing memory allocations; call heap.tracemalloc.start() first`);
  }
}

/** Snapshot.load was given a file that is not a snapshot dump(): the reason names what is wrong. */
export class NotASnapshotError extends Error {
  override name = 'NotASnapshotError';
  constructor(readonly path: string, readonly reason: string) {
    super(`${path} is not a tracemalloc snapshot: ${reason}`);
  }
}
