// The ABI: every export the host (src/heap/heap.ts) uses, and nothing else. Addresses and sizes
// cross as u32; arrays cross through the IO buffer (memory/header.ts). Calls that can fail return 0
// or a Status, and leave the reason in lastError() / errorAddress(). A call that finds the heap
// corrupted traps (memory/header.ts, `corrupt`) and leaves the invariant in corruption().

import { HEAP, IO, IO_WORDS, SHARED_STATE_BYTES, SHARED_STATE_OFFSET, Status, header, lastStatus, lastAddress } from "../memory/header";
import { pyObjectMalloc, pyObjectFree } from "../debug/hooks";
import { addressInRange } from "../pymalloc/arena";
import { fillStats } from "../heap/stats";
import { heapIsValid } from "../heap/check";

export { heapInit, placeFirstArena } from "../pymalloc/obmalloc";
export {
  pyObjectMalloc as malloc,
  pyObjectCalloc as calloc,
  pyObjectRealloc as realloc,
  pyObjectFree as free,
  pyMemMalloc as memMalloc,
  pyMemCalloc as memCalloc,
  pyMemRealloc as memRealloc,
  pyMemFree as memFree,
  pyRawMalloc as rawMalloc,
  pyRawCalloc as rawCalloc,
  pyRawRealloc as rawRealloc,
  pyRawFree as rawFree,
  usableSize,
  debugHooksInit,
  debugReport,
} from "../debug/hooks";

/** address_in_range: true iff p lies inside one of the heap's arenas. */
export function owns(p: usize): bool {
  return addressInRange(p);
}

/**
 * Allocates IO[i] bytes for each i < n, writing the addresses over the sizes. All or nothing:
 * when request i cannot be met, the blocks of requests 0..i-1 are freed and i is returned.
 */
export function mallocMany(n: u32): u32 {
  if (n > IO_WORDS) n = IO_WORDS;
  for (let i: u32 = 0; i < n; i++) {
    const slot = IO + (<usize>i << 2);
    const p = pyObjectMalloc(load<u32>(slot));
    if (!p) {
      for (let j: u32 = 0; j < i; j++) pyObjectFree(load<u32>(IO + (<usize>j << 2)));
      return i;
    }
    store<u32>(slot, p);
  }
  return n;
}

/** Frees IO[i] for each i < n, stopping at the first address that is not a block: returns how many were freed. */
export function freeMany(n: u32): u32 {
  if (n > IO_WORDS) n = IO_WORDS;
  for (let i: u32 = 0; i < n; i++) {
    if (pyObjectFree(load<u32>(IO + (<usize>i << 2))) != Status.OK) return i;
  }
  return n;
}

export function ioBuffer(): usize {
  return IO;
}

export function ioWords(): u32 {
  return IO_WORDS;
}

/** The host's shared state (memory/header.ts): its address, and its bytes below. */
export function sharedState(): usize {
  return HEAP + SHARED_STATE_OFFSET;
}

export function sharedStateBytes(): u32 {
  return <u32>SHARED_STATE_BYTES;
}

export function stats(): void {
  fillStats();
}

/** Walks every structure: 0, or the Broken code of the first broken invariant (heap/check.ts). */
export function check(): u32 {
  return heapIsValid();
}

export function lastError(): u32 {
  return lastStatus();
}

export function errorAddress(): usize {
  return lastAddress();
}

/** The Broken code of the corruption that made the last call trap, or 0 (memory/header.ts). */
export function corruption(): u32 {
  return header().corruption;
}
export * from "./objects";
export { arenaMap } from "../heap/introspect";
