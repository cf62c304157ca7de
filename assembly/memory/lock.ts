// The heap lock of the free-threaded build (docs/free-threaded.md, part 4): what all threads
// share below the objects (the raw allocator, the arenas and their lists, the shared usedpools,
// the header's counters) changes only under it. Each thread's own pools need no lock at all.
//
// ╒══════ The lock (16 bytes: the last of the raw allocator's reservation, raw/tlsf.ts) ══════╕
//  +0   holder    0 when free; else the holder's tid (1 for an instance not yet attached)
//  +4   depth     how many times the holder has taken it (only the holder touches it)
//  +8   sleepers  instances asleep in the host, or about to be
// ╘═══════════════════════════════════════════════════════════════════════════════════════════╛
// Re-entrant, because a pool's acquisition takes it and then calls the raw allocator, which takes
// it too. Taking it: compare-and-swap 0 -> holder, spinning SPINS times, then sleeping in the host
// (Atomics.wait): never memory.atomic.wait32 in Wasm, whose return V8's baseline compiler in
// Node 20 gets wrong (REFERENCE.md section 12). Order: the host's heap mutex, if any, is always
// taken before this lock, and nothing waits for the mutex while holding it.

import { HEAP, RAW_ROOT_OFFSET, RAW_ROOT_BYTES, currentTid } from "./header";

// @ts-ignore: decorator
@external("env", "heapLockWait")
declare function hostWait(address: usize, expected: u32): void;
// @ts-ignore: decorator
@external("env", "heapLockWake")
declare function hostWake(address: usize): void;

/** Bytes of the lock; raw/tlsf.ts keeps its root below them. */
// @ts-ignore: decorator
@inline export const LOCK_BYTES: usize = 16;
// @ts-ignore: decorator
@inline const LOCK: usize = HEAP + RAW_ROOT_OFFSET + RAW_ROOT_BYTES - LOCK_BYTES;
// @ts-ignore: decorator
@inline const SPINS: u32 = 200;

// @ts-ignore: decorator
@inline function holderId(): u32 {
  const tid = currentTid();
  return tid ? tid : 1;
}

export function heapLock(): void {
  const me = holderId();
  if (atomic.load<u32>(LOCK) == me) {
    store<u32>(LOCK, load<u32>(LOCK, 4) + 1, 4);
    return;
  }
  for (let spin: u32 = 0; ; spin++) {
    const holder = atomic.load<u32>(LOCK);
    if (!holder) {
      if (atomic.cmpxchg<u32>(LOCK, 0, me) == 0) break;
      continue;
    }
    if (spin < SPINS) continue;
    atomic.add<u32>(LOCK + 8, 1);
    // Atomics.wait returns at once when the holder word is no longer `seen`: a release between
    // this load and the wait is not slept through.
    const seen = atomic.load<u32>(LOCK);
    if (seen) hostWait(LOCK, seen);
    atomic.sub<u32>(LOCK + 8, 1);
  }
  store<u32>(LOCK, 1, 4);
}

/**
 * Takes the lock over from thread `dead`, whose worker exited holding it (terminated inside an
 * allocation's locked slow path: it will never release it). This instance then holds it once and
 * must release it. False if `dead` does not hold it.
 */
export function heapLockTakeOver(dead: u32): bool {
  if (!dead || atomic.cmpxchg<u32>(LOCK, dead, holderId()) != dead) return false;
  store<u32>(LOCK, 1, 4);
  return true;
}

export function heapUnlock(): void {
  const depth = load<u32>(LOCK, 4) - 1;
  store<u32>(LOCK, depth, 4);
  if (depth) return;
  atomic.store<u32>(LOCK, 0);
  if (atomic.load<u32>(LOCK + 8)) hostWake(LOCK);
}
