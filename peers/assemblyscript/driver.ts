// Driver for the AssemblyScript peers: the benchmark loops of the peer ABI (peers/README.md),
// calling whatever allocator the runtime provides through `heap.alloc`, `heap.realloc` and
// `heap.free`. peers/c/driver.c is the same driver for the C peers; the two must run the same
// operations in the same order.
//
//   tlsf   asc peers/assemblyscript/driver.ts --runtime incremental        (AssemblyScript's TLSF)
//   bump   asc peers/assemblyscript/driver.ts --runtime ./peers/bump/runtime
//
// Scratch space (the churn slots, the replay id table and op buffer) must not come from the
// allocator under test, so it is taken with memory.grow:
//
//   0       __heap_base                 end of memory at the first reservation
//   │       │                           │
//   ├static─┼─ allocator's at start-up ─┼─ id table ─┼─ op buffer ─┼─ heap growth ─┼─ slots ─┤
//
// TLSF takes all memory between __heap_base and the current end of memory when it starts, so the
// driver starts the allocator (one alloc and free, inside memory the module already has) before
// its first reservation; the bump runtime copes with memory grown by others either way.
//
// ╒═══════════════════ Replay op (3 × u32) ═══════════════════════╕
// │                 kind: 0 alloc, 1 free, 2 realloc              │ +0
// ├───────────────────────────────────────────────────────────────┤
// │                 id: index into the id table                   │ +4
// ├───────────────────────────────────────────────────────────────┤
// │                 size in bytes (ignored by free)               │ +8
// └───────────────────────────────────────────────────────────────┘

// @ts-ignore: decorator
@inline const REPLAY_CAPACITY: u32 = 65536;
// @ts-ignore: decorator
@inline const OP_ALLOC: u32 = 0;
// @ts-ignore: decorator
@inline const OP_FREE: u32 = 1;
// @ts-ignore: decorator
@inline const OP_REALLOC: u32 = 2;
// @ts-ignore: decorator
@inline const WASM_PAGE_BITS: usize = 16;
// @ts-ignore: decorator
@inline const WASM_PAGE_SIZE: usize = 1 << WASM_PAGE_BITS;
// @ts-ignore: decorator
@inline const ADDRESS_SIZE: usize = sizeof<u32>();
// @ts-ignore: decorator
@inline const OP_SIZE: usize = 3 * sizeof<u32>();

// replay_init's results; the loader in src/tools/compare/allocators.ts knows them.
// @ts-ignore: decorator
@inline const INIT_OK: u32 = 0;
// @ts-ignore: decorator
@inline const INIT_OUT_OF_MEMORY: u32 = 1;
// @ts-ignore: decorator
@inline const INIT_ALREADY_DONE: u32 = 2;
// @ts-ignore: decorator
@inline const REPLAY_DONE: i32 = -1;

let allocatorStarted = false;
let slots: usize = 0;
let slotCapacity: u32 = 0;
let idTable: usize = 0;
let idCapacity: u32 = 0;
let opBuffer: usize = 0;

// @ts-ignore: decorator
@inline function xorshift32(x: u32): u32 {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return x;
}

/** Allocates and writes the first byte, so the block is really touched. */
// @ts-ignore: decorator
@inline function allocTouched(size: usize): usize {
  const ptr = heap.alloc(size);
  if (ptr != 0 && size != 0) store<u8>(ptr, 1);
  return ptr;
}

/** realloc with C's meaning for a null pointer, which `heap.realloc` does not accept. */
// @ts-ignore: decorator
@inline function reallocTouched(ptr: usize, size: usize): usize {
  if (ptr == 0) return allocTouched(size);
  const moved = heap.realloc(ptr, size);
  if (moved != 0 && size != 0) store<u8>(moved, 1);
  return moved;
}

/** Grows memory by whole wasm pages for `bytes` of scratch space; 0 iff memory cannot grow. */
function reserveScratch(bytes: u64): usize {
  if (!allocatorStarted) {
    heap.free(heap.alloc(1));
    allocatorStarted = true;
  }
  const pages = (bytes + WASM_PAGE_SIZE - 1) >> WASM_PAGE_BITS;
  if (pages > 65536) return 0;
  const firstPage = memory.grow(<i32>pages);
  if (firstPage < 0) return 0;
  return <usize>firstPage << WASM_PAGE_BITS;
}

/** The small-object churn loop; returns the xor of every address allocated, 0 iff one failed. */
export function churn(live: u32, steps: u32, seed: u32, maxSize: u32): u32 {
  if (live == 0 || maxSize == 0) return 0;
  if (live > slotCapacity) {
    slots = reserveScratch(<u64>live * ADDRESS_SIZE);
    if (slots == 0) return 0;
    slotCapacity = live;
  }
  let x = seed != 0 ? seed : 1; // xorshift32 stays at 0 forever
  let checksum: u32 = 0;
  let failed = false;
  for (let i: u32 = 0; i < live; i++) {
    x = xorshift32(x);
    const ptr = allocTouched(1 + x % maxSize);
    failed |= ptr == 0;
    checksum ^= <u32>ptr;
    store<u32>(slots + <usize>i * ADDRESS_SIZE, <u32>ptr);
  }
  for (let step: u32 = 0; step < steps; step++) {
    x = xorshift32(x);
    const slot = slots + <usize>(x % live) * ADDRESS_SIZE;
    heap.free(load<u32>(slot));
    x = xorshift32(x);
    const ptr = allocTouched(1 + x % maxSize);
    failed |= ptr == 0;
    checksum ^= <u32>ptr;
    store<u32>(slot, <u32>ptr);
  }
  for (let i: u32 = 0; i < live; i++) {
    heap.free(load<u32>(slots + <usize>i * ADDRESS_SIZE));
  }
  return failed ? 0 : checksum;
}

// ---- one op per call: the footprint pass -----------------------------------------------------
// The host keeps the id table and calls these once per op, so that nothing but the allocator (and
// this module's static data) is ever in memory: no scratch, no memory.grow but the allocator's.

/** malloc: the block's first byte written, as in the loops above; 0 iff it failed. */
export function peer_malloc(size: usize): usize {
  return allocTouched(size);
}

/** realloc with C's meaning for a null pointer; the first byte written; 0 iff it failed. */
export function peer_realloc(ptr: usize, size: usize): usize {
  return reallocTouched(ptr, size);
}

export function peer_free(ptr: usize): void {
  heap.free(ptr);
}

/** Reserves the id table (zeroed) and the op buffer; callable once per instance. */
export function replay_init(maxIds: u32): u32 {
  if (opBuffer != 0) return maxIds <= idCapacity ? INIT_OK : INIT_ALREADY_DONE;
  const tableBytes = <u64>maxIds * ADDRESS_SIZE;
  const scratch = reserveScratch(tableBytes + <u64>REPLAY_CAPACITY * OP_SIZE);
  if (scratch == 0) return INIT_OUT_OF_MEMORY;
  idTable = scratch;
  idCapacity = maxIds;
  opBuffer = scratch + <usize>tableBytes;
  return INIT_OK;
}

export function replay_ops(): usize {
  return opBuffer;
}

export function replay_capacity(): u32 {
  return REPLAY_CAPACITY;
}

export function replay_table(): usize {
  return idTable;
}

/**
 * Runs the first `count` ops of the op buffer. Returns -1 when all ran, otherwise the index of the
 * first op that could not: an allocation of a nonzero size returned 0, the id is outside the
 * table, the kind is unknown, or the op lies beyond the buffer's capacity.
 */
export function replay_run(count: u32): i32 {
  if (opBuffer == 0) return 0;
  const runnable = min(count, REPLAY_CAPACITY);
  for (let i: u32 = 0; i < runnable; i++) {
    const op = opBuffer + <usize>i * OP_SIZE;
    const kind = load<u32>(op);
    const id = load<u32>(op, 4);
    const size = load<u32>(op, 8);
    if (id >= idCapacity) return i;
    const entry = idTable + <usize>id * ADDRESS_SIZE;
    let ptr: usize;
    if (kind == OP_ALLOC) {
      ptr = allocTouched(size);
    } else if (kind == OP_FREE) {
      heap.free(load<u32>(entry));
      ptr = 0;
    } else if (kind == OP_REALLOC) {
      ptr = reallocTouched(load<u32>(entry), size);
    } else {
      return i;
    }
    if (ptr == 0 && size != 0 && kind != OP_FREE) return i;
    store<u32>(entry, <u32>ptr);
  }
  return runnable < count ? runnable : REPLAY_DONE;
}
