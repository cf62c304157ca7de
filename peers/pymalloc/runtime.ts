// pymalloc as a peer: this project's allocator behind the same driver as every other peer.
//
// Compiled as a custom AssemblyScript runtime under peers/assemblyscript/driver.ts, exactly as
// the bump peer is, so `heap.alloc`, `heap.realloc` and `heap.free` in the driver's loops land
// in PyObject_Malloc, PyObject_Realloc and PyObject_Free of assembly/pymalloc/obmalloc.ts. The
// geometry is fixed at compile time with --use (scripts/build-peers.sh builds one module per
// preset):
//
//   PYMALLOC_ALIGNMENT_SHIFT   3 or 4
//   PYMALLOC_POOL_SHIFT        log2(POOL_SIZE)
//   PYMALLOC_ARENA_SHIFT       log2(ARENA_SIZE)
//   PYMALLOC_SMALL_THRESHOLD   512
//   PYMALLOC_TUNED             defined for the tuned preset's policy (assembly/memory/header.ts)
//
// They fix the core's geometry at compile time too (assembly/memory/header.ts, "Fixed geometry").
//
// The heap is set up when the module starts, before the driver reserves its scratch memory;
// memory grown by the driver afterwards becomes a separate region to the raw allocator.

import { heapInit, objectMalloc, objectRealloc, objectFree } from "../../assembly/pymalloc/obmalloc";
import { MAX_WASM_PAGES } from "../../assembly/memory/header";

/**
 * The sweep's modules (build/peers/sweep/, `pymalloc sweep`) fix no geometry: the host passes it
 * as this import, asked for in heapInit's argument order: 0 alignment shift, 1 small request
 * threshold, 2 pool shift, 3 arena shift.
 */
// @ts-ignore: decorator
@external("env", "pymallocGeometry")
declare function pymallocGeometry(field: u32): u32;

// @ts-ignore: defined by --use
if (isDefined(PYMALLOC_ALIGNMENT_SHIFT)) {
  // @ts-ignore: defined by --use
  heapInit(PYMALLOC_ALIGNMENT_SHIFT, PYMALLOC_SMALL_THRESHOLD, PYMALLOC_POOL_SHIFT, PYMALLOC_ARENA_SHIFT, MAX_WASM_PAGES);
} else if (heapInit(pymallocGeometry(0), pymallocGeometry(1), pymallocGeometry(2), pymallocGeometry(3), MAX_WASM_PAGES)) {
  unreachable(); // the host validates the geometry first (src/tools/compare/sweep.ts)
}

// @ts-ignore: decorator
@global @unsafe
function __alloc(size: usize): usize {
  return objectMalloc(size);
}

// @ts-ignore: decorator
@global @unsafe
function __realloc(ptr: usize, size: usize): usize {
  return objectRealloc(ptr, size);
}

// @ts-ignore: decorator
@global @unsafe
function __free(ptr: usize): void {
  objectFree(ptr);
}
