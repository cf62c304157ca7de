// Statistics: what sys._debugmallocstats() reports, counted by walking the arenas as CPython
// does (so nothing is counted on the fast paths), plus the counters kept in the header.
//
// ╒══════════════ Statistics record (u32 words in the IO buffer) ══════════════╕
//  [0]                 numClasses
//  [1 + 3i .. 3 + 3i]  class i: pools, blocks in use, blocks available   (i < 64)
//  [193]               arenas attached (found by the walk)
//  [194]               free pools: empty ones plus never-used ones
//  [195]               bytes lost to arena alignment
//  [196]               arenas allocated in total
//  [197]               arenas allocated now (the header's counter)
//  [198]               arenas high-water mark
//  [199 .. 201]        raw blocks, raw bytes, bytes in free raw blocks
//  [202 .. 205]        committed wasm pages, their peak, the page limit, dynamicBase
//  [206]               bytes of block bits (after the attached arenas, pymalloc/arena.ts)
//  [207 .. 208]        freed objects the debug build holds in quarantine, and their bytes
//  free-threaded build only:
//  [209]               used or full pools of no thread (the shared lists', and full abandoned ones)
//  [210 + 8(id-1) ..]  thread `id` (1..MAX_THREADS): tid (0: no thread), pools it owns, blocks
//                      on its remote list, and its counters: frees it sent to other threads'
//                      pools, those of them that took the locked path, drains, blocks drained,
//                      pools adopted
// ╘═════════════════════════════════════════════════════════════════════════════╛
// A block another thread has freed and its owner has not drained yet counts as available.
// src/heap/stats.ts reads the same layout.

import {
  IO, MAX_SIZE_CLASSES, FREE_THREADED, MAX_THREADS, THREAD_REMOTE_FREES, THREAD_LOCKED_FREES, THREAD_DRAINS,
  THREAD_DRAINED, THREAD_ADOPTED, THREAD_ID_MASK, header, threadRecord,
} from "../memory/header";
import { PoolHeader, poolCapacity, poolOwner, isKeptEmpty } from "../pymalloc/pool";
import { poolPendingCount, remoteCount } from "../pymalloc/obmalloc";
import { arenaObject, arenaBitsBytes } from "../pymalloc/arena";
import { state } from "../objects/object";
import { classSize } from "../pymalloc/sizeclass";

// @ts-ignore: decorator
@inline const SUMMARY: usize = IO + ((1 + 3 * MAX_SIZE_CLASSES) << 2);
// @ts-ignore: decorator
@inline const SHARED_POOL_COUNT: usize = SUMMARY + (16 << 2);
// @ts-ignore: decorator
@inline const THREAD_ROWS: usize = SHARED_POOL_COUNT + 4;
// @ts-ignore: decorator
@inline const THREAD_ROW_WORDS: usize = 8;

// @ts-ignore: decorator
@inline function threadRow(id: u32): usize {
  return THREAD_ROWS + ((<usize>(id - 1) * THREAD_ROW_WORDS) << 2);
}

/** Writes the statistics record into the IO buffer. */
export function fillStats(): void {
  const hdr = header();
  const poolSize: usize = <usize>1 << hdr.poolShift;
  memory.fill(IO, 0, SUMMARY - IO);
  if (FREE_THREADED) memory.fill(SHARED_POOL_COUNT, 0, threadRow(MAX_THREADS + 1) - SHARED_POOL_COUNT);
  store<u32>(IO, hdr.numClasses);
  let arenas: u32 = 0, freePools: u32 = 0, alignmentLoss: u32 = 0;
  for (let i: u32 = 0; i < hdr.maxArenas; i++) {
    const ao = arenaObject(i);
    if (!ao.address) continue;
    arenas++;
    freePools += ao.nfreepools;
    if (ao.address & (poolSize - 1)) alignmentLoss += <u32>(poolSize - (ao.address & (poolSize - 1)));
    for (let pool = ao.address; pool < ao.poolAddress; pool += poolSize) {
      const p = changetype<PoolHeader>(pool);
      if (!p.count && !isKeptEmpty(p)) continue;
      const row = IO + ((1 + 3 * <usize>p.szidx) << 2);
      store<u32>(row, load<u32>(row) + 1);
      store<u32>(row, load<u32>(row, 4) + p.count, 4);
      store<u32>(row, load<u32>(row, 8) + poolCapacity(classSize(p.szidx)) - p.count, 8);
      if (FREE_THREADED) {
        const pending = poolPendingCount(p);
        store<u32>(row, load<u32>(row, 4) - pending, 4);
        store<u32>(row, load<u32>(row, 8) + pending, 8);
        const owner = poolOwner(p);
        const held = owner ? threadRow(owner & THREAD_ID_MASK) + 4 : SHARED_POOL_COUNT;
        store<u32>(held, load<u32>(held) + 1);
      }
    }
  }
  if (FREE_THREADED) fillThreadRows();
  store<u32>(SUMMARY, arenas);
  store<u32>(SUMMARY, freePools, 4);
  store<u32>(SUMMARY, alignmentLoss, 8);
  store<u32>(SUMMARY, hdr.ntimesArenaAllocated, 12);
  store<u32>(SUMMARY, hdr.narenasCurrentlyAllocated, 16);
  store<u32>(SUMMARY, hdr.narenasHighwater, 20);
  store<u32>(SUMMARY, hdr.rawBlocks, 24);
  store<u32>(SUMMARY, hdr.rawBytes, 28);
  store<u32>(SUMMARY, hdr.rawFreeBytes, 32);
  store<u32>(SUMMARY, hdr.committedPages, 36);
  store<u32>(SUMMARY, hdr.peakCommittedPages, 40);
  store<u32>(SUMMARY, hdr.maxPages, 44);
  store<u32>(SUMMARY, <u32>hdr.dynamicBase, 48);
  store<u32>(SUMMARY, arenas * <u32>arenaBitsBytes(), 52);
  store<u32>(SUMMARY, state().quarantineCount, 56);
  store<u32>(SUMMARY, state().quarantineBytes, 60);
}

/** The free-threaded rows of each thread (the pools each owns were counted by the walk). */
function fillThreadRows(): void {
  for (let id: u32 = 1; id <= MAX_THREADS; id++) {
    const record = threadRecord(id);
    if (!record) return;
    const row = threadRow(id);
    store<u32>(row, load<u32>(record));
    store<u32>(row, remoteCount(record), 8);
    store<u32>(row, load<u32>(record + THREAD_REMOTE_FREES), 12);
    store<u32>(row, load<u32>(record + THREAD_LOCKED_FREES), 16);
    store<u32>(row, load<u32>(record + THREAD_DRAINS), 20);
    store<u32>(row, load<u32>(record + THREAD_DRAINED), 24);
    store<u32>(row, load<u32>(record + THREAD_ADOPTED), 28);
  }
}
