// Introspection: a map of every attached arena, pool by pool, for reports that show where the
// memory of a heap goes (one live block pinning a whole arena is visible in it at a glance).
// Nothing here runs unless the host asks: it walks the arena objects as stats.ts does.
//
// The map is written into the IO buffer (memory/header.ts) as u32 words:
//
// ╒══════════════════════ Arena map record (IO buffer) ═══════════════════════╕
//  [0]  arenas recorded (fewer than [1] iff the IO buffer could not hold them all)
//  [1]  arenas attached
//  [2]  poolShift          log2(POOL_SIZE)
//  [3]  arenaShift         log2(ARENA_SIZE)
//  [4]  alignmentShift     log2(ALIGNMENT): class i holds blocks of (i + 1) << alignmentShift
//  [5]  poolsPerArena
//  [6]  words written, this header included
//  [7]  reserved (0)
//  [8]  the arena records, one after another
// ╘═══════════════════════════════════════════════════════════════════════════╛
//
// ╒═══════ Arena record (ARENA_RECORD_WORDS + POOL_RECORD_WORDS x poolsPerArena) ═══════╕
//  +0   index         u32   the arena object's index in the `arenas` array
//  +1   address       u32   the arena's first byte
//  +2   nfreepools    u32   empty pools plus never-used pools
//  +3   carved        u32   pools handed out at least once: the arena's front
//  +4   pool records  in address order, poolsPerArena of them
// ╘═════════════════════════════════════════════════════════════════════════════════════╛
//
// ╒════════════════════════ Pool record (2 x u32) ════════════════════════╕
//    3                   2                   1
//  1 0 9 8 7 6 5 4 3 2 1 0 9 8 7 6 5 4 3 2 1 0 9 8 7 6 5 4 3 2 1 0  bits
// ├─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┴─┼─┴─┴─┴─┴─┴─┴─┼─┴─┤
// │                 blocks in use (count)         │  size class │ S │ +0
// ├───────────────────────────────────────────────┴─────────────┴───┤
// │        capacity: blocks of the size class that fit in a pool    │ +1
// └─────────────────────────────────────────────────────────────────┘
//   S (PoolState) is the pool's state in pymalloc/pool.ts's sense, plus the pools never carved:
//     NEVER_USED iff the pool lies at or beyond the arena's poolAddress; class and counts 0.
//     EMPTY      iff count == 0; class is the one it last served (it keeps its free list).
//     FULL       iff count > 0 and freeblock == 0 (pymalloc/pool.ts: for a pool that is not empty,
//                freeblock == 0 iff the pool is full).
//     USED       otherwise.
//   A count fits 24 bits: a pool of at most 64 MiB holds fewer than 2^23 blocks of 8 bytes.

import { IO, IO_WORDS, header } from "../memory/header";
import { PoolHeader, poolCapacity } from "../pymalloc/pool";
import { arenaObject } from "../pymalloc/arena";
import { classSize } from "../pymalloc/sizeclass";

// @ts-ignore: decorator
@inline const MAP_HEADER_WORDS: u32 = 8;
// @ts-ignore: decorator
@inline const ARENA_RECORD_WORDS: u32 = 4;
// @ts-ignore: decorator
@inline const POOL_RECORD_WORDS: u32 = 2;
// @ts-ignore: decorator
@inline const STATE_BITS: u32 = 2;
// @ts-ignore: decorator
@inline const CLASS_BITS: u32 = 6;
// @ts-ignore: decorator
@inline const COUNT_SHIFT: u32 = STATE_BITS + CLASS_BITS;

export const enum PoolState {
  NEVER_USED = 0,
  EMPTY = 1,
  USED = 2,
  FULL = 3,
}

// @ts-ignore: decorator
@inline function word(index: u32): usize {
  return IO + (<usize>index << 2);
}

/** Writes one pool's record at word `at`. */
function recordPool(at: u32, pool: usize, carvedEnd: usize): void {
  if (pool >= carvedEnd) {
    store<u32>(word(at), PoolState.NEVER_USED);
    store<u32>(word(at + 1), 0);
    return;
  }
  const p = changetype<PoolHeader>(pool);
  const state = p.count == 0 ? PoolState.EMPTY : p.freeblock == 0 ? PoolState.FULL : PoolState.USED;
  store<u32>(word(at), state | (<u32>p.szidx << STATE_BITS) | (p.count << COUNT_SHIFT));
  store<u32>(word(at + 1), poolCapacity(classSize(p.szidx)));
}

/**
 * Writes the arena map record into the IO buffer; returns the number of arenas recorded.
 * Arenas that do not fit are counted in word 1 but left out.
 */
export function arenaMap(): u32 {
  const hdr = header();
  const poolSize: usize = <usize>1 << hdr.poolShift;
  const arenaWords = ARENA_RECORD_WORDS + POOL_RECORD_WORDS * hdr.poolsPerArena;
  let at = MAP_HEADER_WORDS;
  let recorded: u32 = 0;
  let attached: u32 = 0;
  for (let i: u32 = 0; i < hdr.maxArenas; i++) {
    const ao = arenaObject(i);
    if (!ao.address) continue;
    attached++;
    if (at + arenaWords > IO_WORDS) continue;
    store<u32>(word(at), i);
    store<u32>(word(at + 1), <u32>ao.address);
    store<u32>(word(at + 2), ao.nfreepools);
    store<u32>(word(at + 3), <u32>((ao.poolAddress - ao.address) >> hdr.poolShift));
    let poolAt = at + ARENA_RECORD_WORDS;
    for (let pool = ao.address; poolAt < at + arenaWords; pool += poolSize) {
      recordPool(poolAt, pool, ao.poolAddress);
      poolAt += POOL_RECORD_WORDS;
    }
    at += arenaWords;
    recorded++;
  }
  store<u32>(word(0), recorded);
  store<u32>(word(1), attached);
  store<u32>(word(2), hdr.poolShift);
  store<u32>(word(3), hdr.arenaShift);
  store<u32>(word(4), hdr.alignmentShift);
  store<u32>(word(5), hdr.poolsPerArena);
  store<u32>(word(6), at);
  store<u32>(word(7), 0);
  return recorded;
}
