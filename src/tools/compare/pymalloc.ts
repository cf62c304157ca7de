// pymalloc's internals as a comparison sees them: the statistics record (assembly/heap/stats.ts) and
// the arena map record (assembly/heap/introspect.ts), read from a pymalloc allocator module.

import { resolveConfig, type HeapConfig } from '../../heap/config.js';
import { decodeStats, formatDebugMallocStats } from '../../heap/stats.js';
import { PYMALLOC_PRESETS, type PymallocGeometry, type PymallocName } from './allocators.js';

/** States of a pool in the arena map, in the order of assembly/heap/introspect.ts's PoolState. */
export const POOL_STATES = ['never-used', 'empty', 'used', 'full'] as const;

export type PoolState = (typeof POOL_STATES)[number];

export interface PoolRecord {
  state: PoolState;
  /** Block size of the pool's size class; 0 for a pool never used. */
  blockSize: number;
  blocksInUse: number;
  /** Blocks of that size that fit in the pool; 0 for a pool never used. */
  capacity: number;
}

export interface ArenaRecord {
  /** Index of the arena object. */
  index: number;
  address: number;
  /** Empty pools plus never-used pools. */
  freePools: number;
  pools: PoolRecord[];
}

export interface ArenaMap {
  /** Arenas attached; more than arenas.length iff the IO buffer could not hold them all. */
  arenasAttached: number;
  poolSize: number;
  arenaSize: number;
  arenas: ArenaRecord[];
}

/** Word offsets of the two records (assembly/heap/introspect.ts, assembly/heap/stats.ts). */
const MAP_HEADER_WORDS = 8;
const ARENA_RECORD_WORDS = 4;
const POOL_RECORD_WORDS = 2;
const STATE_MASK = 0b11;
const CLASS_SHIFT = 2;
const CLASS_MASK = 0x3f;
const COUNT_SHIFT = 8;
const STATS_SUMMARY = 1 + 3 * 64;

export function decodeArenaMap(words: Uint32Array): ArenaMap {
  const [recorded, arenasAttached, poolShift, arenaShift, alignmentShift, poolsPerArena] = words;
  const arenas: ArenaRecord[] = [];
  let at = MAP_HEADER_WORDS;
  for (let a = 0; a < recorded; a++) {
    const pools: PoolRecord[] = [];
    for (let p = 0; p < poolsPerArena; p++) {
      const packed = words[at + ARENA_RECORD_WORDS + POOL_RECORD_WORDS * p];
      const state = POOL_STATES[packed & STATE_MASK];
      const used = state !== 'never-used';
      pools.push({
        state,
        blockSize: used ? (((packed >>> CLASS_SHIFT) & CLASS_MASK) + 1) << alignmentShift : 0,
        blocksInUse: packed >>> COUNT_SHIFT,
        capacity: words[at + ARENA_RECORD_WORDS + POOL_RECORD_WORDS * p + 1],
      });
    }
    arenas.push({ index: words[at], address: words[at + 1], freePools: words[at + 2], pools });
    at += ARENA_RECORD_WORDS + POOL_RECORD_WORDS * poolsPerArena;
  }
  return { arenasAttached, poolSize: 2 ** poolShift, arenaSize: 2 ** arenaShift, arenas };
}

/** What a comparison samples of pymalloc along a trace. */
export interface PymallocSample {
  arenas: number;
  /** Pools holding at least one block. */
  usedPools: number;
  blocksInUse: number;
}

export function summarizeStats(words: Uint32Array): PymallocSample {
  let usedPools = 0;
  let blocksInUse = 0;
  for (let i = 0; i < words[0]; i++) {
    usedPools += words[1 + 3 * i];
    blocksInUse += words[2 + 3 * i];
  }
  return { arenas: words[STATS_SUMMARY], usedPools, blocksInUse };
}

/** The configuration of the named module: its preset's, or a sweep module's geometry under the preset's policy. */
export function pymallocConfig(name: PymallocName, geometry?: PymallocGeometry): HeapConfig {
  return resolveConfig({ preset: PYMALLOC_PRESETS[name], ...geometry });
}

/** sys._debugmallocstats()'s report for a statistics record of the named module. */
export function debugMallocStats(name: PymallocName, words: Uint32Array, geometry?: PymallocGeometry): string {
  return formatDebugMallocStats(decodeStats(words, pymallocConfig(name, geometry)));
}
