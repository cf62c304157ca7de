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
// ╘═════════════════════════════════════════════════════════════════════════════╛
// src/heap/stats.ts reads the same layout.

import { IO, MAX_SIZE_CLASSES, header } from "../memory/header";
import { PoolHeader, poolCapacity } from "../pymalloc/pool";
import { arenaObject, arenaBitsBytes } from "../pymalloc/arena";
import { state } from "../objects/object";
import { classSize } from "../pymalloc/sizeclass";

// @ts-ignore: decorator
@inline const SUMMARY: usize = IO + ((1 + 3 * MAX_SIZE_CLASSES) << 2);

/** Writes the statistics record into the IO buffer. */
export function fillStats(): void {
  const hdr = header();
  const poolSize: usize = <usize>1 << hdr.poolShift;
  memory.fill(IO, 0, SUMMARY - IO);
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
      if (!p.count) continue;
      const row = IO + ((1 + 3 * <usize>p.szidx) << 2);
      store<u32>(row, load<u32>(row) + 1);
      store<u32>(row, load<u32>(row, 4) + p.count, 4);
      store<u32>(row, load<u32>(row, 8) + poolCapacity(classSize(p.szidx)) - p.count, 8);
    }
  }
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
