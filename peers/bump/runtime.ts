// The bump peer: an AssemblyScript runtime that never frees.
//
// It is the lower bound of the comparison: an allocation is a header write and a pointer bump, a
// free does nothing, so its speed is what an allocator costs when it does no bookkeeping at all,
// and its footprint is what a trace costs when no memory is ever reused.
//
// Compiled as a custom runtime (`asc ... --runtime ./peers/bump/runtime`) under the same driver
// as the tlsf peer, so `heap.alloc`, `heap.realloc` and `heap.free` land here. Nothing is exported
// from this file: the entry points are `@global`, which is how the compiler finds a runtime.
//
// ╒══════════════════════ Bump block layout ══════════════════════╕
//    3                   2                   1
//  1 0 9 8 7 6 5 4 3 2 1 0 9 8 7 6 5 4 3 2 1 0 9 8 7 6 5 4 3 2 1 0  bits
// ├─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┤
// │                   requested size in bytes                     │ -4
// ╞>ptr═══════════════════════════════════════════════════════════╡ ptr % ALIGNMENT == 0
// │                   payload (requested size)                    │
// └───────────────────────────────────────────────────────────────┘
//
// Blocks are laid one after another from `top` towards `end`, the end of the region the bump
// pointer owns. The size word exists only so that realloc knows how much to copy.
//
// Region state:
//   top <= end always; [top, end) is memory nobody has been given.
//   end == 0 iff nothing has been allocated yet; the first allocation takes
//   [__heap_base, end of memory).
//   Other code may grow memory too (the driver reserves its scratch space that way), so a grown
//   region is contiguous with [top, end) iff memory.grow returned `end`; otherwise the rest of the
//   old region is abandoned and the bump pointer moves to the new one.

// @ts-ignore: decorator
@inline const ALIGNMENT: usize = 16;
// @ts-ignore: decorator
@inline const ALIGNMENT_MASK: usize = ALIGNMENT - 1;
// @ts-ignore: decorator
@inline const WASM_PAGE_BITS: usize = 16;
// @ts-ignore: decorator
@inline const WASM_PAGE_SIZE: usize = 1 << WASM_PAGE_BITS;
/**
 * Memory grows by at least 1/2^GROWTH_SHIFT of its size: memory.grow costs a few hundred
 * microseconds in V8 whatever the amount, so growing by a fraction keeps the number of calls
 * logarithmic, at the price of a footprint up to that fraction above what was handed out.
 */
// @ts-ignore: decorator
@inline const GROWTH_SHIFT: i32 = 2;
// @ts-ignore: decorator
@inline const HEADER_SIZE: usize = sizeof<u32>();
/** Largest request that cannot overflow the address arithmetic below. */
// @ts-ignore: decorator
@inline const MAX_REQUEST: usize = 0xffff_ffff - ALIGNMENT - HEADER_SIZE - WASM_PAGE_SIZE;

let top: usize = 0;
let end: usize = 0;

// @ts-ignore: decorator
@inline function blockSize(ptr: usize): usize {
  return load<u32>(ptr - HEADER_SIZE);
}

/** The payload address a block would get if it started at `at`. */
// @ts-ignore: decorator
@inline function payloadAt(at: usize): usize {
  return (at + HEADER_SIZE + ALIGNMENT_MASK) & ~ALIGNMENT_MASK;
}

/** Makes room for `size` bytes after a header, growing memory; false iff memory cannot grow. */
function makeRoom(size: usize): bool {
  if (end == 0) {
    top = __heap_base;
    end = <usize>memory.size() << WASM_PAGE_BITS;
    if (payloadAt(top) + size <= end) return true;
  }
  const bytesNeeded = ALIGNMENT + HEADER_SIZE + size;
  const pagesNeeded = <i32>((bytesNeeded + WASM_PAGE_SIZE - 1) >>> WASM_PAGE_BITS);
  let pages = max(pagesNeeded, memory.size() >>> GROWTH_SHIFT);
  let firstPage = memory.grow(pages);
  if (firstPage < 0) {
    pages = pagesNeeded;
    firstPage = memory.grow(pages);
    if (firstPage < 0) return false;
  }
  const regionStart = <usize>firstPage << WASM_PAGE_BITS;
  if (regionStart != end) top = regionStart;
  end = regionStart + (<usize>pages << WASM_PAGE_BITS);
  return true;
}

/** The slow path: the current region is too small. Returns 0 iff memory cannot grow. */
function allocateAfterGrowth(size: usize): usize {
  if (size > MAX_REQUEST || !makeRoom(size)) return 0;
  return __alloc(size);
}

// @ts-ignore: decorator
@global @unsafe
function __alloc(size: usize): usize {
  const ptr = payloadAt(top);
  const next = ptr + size;
  if (size > MAX_REQUEST || next > end) return allocateAfterGrowth(size);
  store<u32>(ptr - HEADER_SIZE, <u32>size);
  top = next;
  return ptr;
}

// @ts-ignore: decorator
@global @unsafe
function __realloc(ptr: usize, size: usize): usize {
  const moved = __alloc(size);
  if (moved == 0) return 0;
  memory.copy(moved, ptr, min(blockSize(ptr), size));
  return moved;
}

// @ts-ignore: decorator
@global @unsafe
function __free(ptr: usize): void {
}
