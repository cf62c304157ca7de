import { describe, it, expect } from 'vitest';
import { Heap } from '../../src/index.js';

// cpython-3.7 geometry: 4 KiB pools of which 32 bytes are the header, 64 pools per 256 KiB arena.
const POOL = 4096;
const OVERHEAD = 32;
const PER_POOL_512 = Math.floor((POOL - OVERHEAD) / 512); // 7
const POOLS_PER_ARENA = 64;
const poolOf = (p: number) => p - (p % POOL);

async function heap37(build: 'release' | 'debug' = 'release') {
  return Heap.create({ preset: 'cpython-3.7', build });
}

function classRow(heap: Heap, size: number) {
  return heap.stats().sizeClasses[size / heap.config.alignment - 1];
}

describe.each(['release', 'debug'] as const)('pool life cycle (%s build)', (build) => {
  it('fills a pool block by block, goes full, back to used, to empty, and is reused', async () => {
    const heap = await heap37(build);
    const blocks: number[] = [];
    for (let i = 0; i < PER_POOL_512; i++) {
      blocks.push(heap.malloc(512));
      heap.check();
      // Blocks are carved in address order from just past the pool header.
      expect(blocks[i]).toBe(poolOf(blocks[0]) + OVERHEAD + 512 * i);
      expect(classRow(heap, 512)).toMatchObject({ pools: 1, blocksInUse: i + 1, blocksAvailable: PER_POOL_512 - i - 1 });
    }
    const pool = poolOf(blocks[0]);

    // Full: the next request opens a second pool.
    const other = heap.malloc(512);
    heap.check();
    expect(poolOf(other)).not.toBe(pool);
    expect(classRow(heap, 512)).toMatchObject({ pools: 2, blocksInUse: PER_POOL_512 + 1 });

    // Back to used: it goes first on usedpools, so its freed block is handed out next.
    heap.free(blocks[3]);
    heap.check();
    expect(heap.malloc(512)).toBe(blocks[3]);
    heap.check();

    // To empty: its pool leaves the class and becomes an unused pool of the arena.
    const unusedBefore = heap.stats().bytes.freePools;
    for (const p of blocks) {
      heap.free(p);
      heap.check();
    }
    expect(classRow(heap, 512)).toMatchObject({ pools: 1, blocksInUse: 1 });
    expect(heap.stats().bytes.freePools).toBe(unusedBefore + 1);

    // Reused for another class: re-initialised, its first block just past the header.
    const small = heap.malloc(8);
    heap.check();
    expect(small).toBe(pool + OVERHEAD);
    expect(classRow(heap, 8)).toMatchObject({ pools: 1, blocksInUse: 1 });
    heap.free(small);
    heap.free(other);
    heap.check();
  });

  it('reuses an emptied pool for the same class without re-initialising it', async () => {
    const heap = await heap37(build);
    const blocks = [heap.malloc(64), heap.malloc(64), heap.malloc(64)];
    const pool = poolOf(blocks[0]);
    heap.free(blocks[0]);
    heap.free(blocks[2]);
    heap.free(blocks[1]);
    heap.check();
    expect(classRow(heap, 64).pools).toBe(0);
    // The free list survives: the last block freed comes back first, not the pool's first block.
    const again = heap.malloc(64);
    expect(again).toBe(blocks[1]);
    expect(poolOf(again)).toBe(pool);
    expect(heap.malloc(64)).toBe(blocks[2]);
    expect(heap.malloc(64)).toBe(blocks[0]);
    // Then carving resumes where it stopped.
    expect(heap.malloc(64)).toBe(pool + OVERHEAD + 3 * 64);
    heap.check();
  });
});

describe('arena life cycle', () => {
  /** Allocates whole pools of 512-byte blocks until `arenas` arenas are full. */
  function fillArenas(heap: Heap, arenas: number): number[] {
    const blocks: number[] = [];
    for (let i = 0; i < arenas * POOLS_PER_ARENA * PER_POOL_512; i++) blocks.push(heap.malloc(512));
    return blocks;
  }

  it('keeps the last wholly free arena, and releases one that another wholly free arena follows', async () => {
    const heap = await heap37();
    const first = fillArenas(heap, 1);
    const second = fillArenas(heap, 1);
    heap.check();
    expect(heap.stats().arenas).toEqual({ allocatedTotal: 2, reclaimed: 0, highwater: 2, current: 2 });
    const span = (blocks: number[]) => Math.max(...blocks) - Math.min(...blocks);
    expect(span(first)).toBeLessThan(POOLS_PER_ARENA * POOL);
    expect(span(second)).toBeLessThan(POOLS_PER_ARENA * POOL);

    // The second arena is full, so on no list: the first, once wholly free, is the only usable
    // arena and is kept (bpo-37257).
    for (let i = 0; i < first.length; i++) {
      heap.free(first[i]);
      if (i % PER_POOL_512 === PER_POOL_512 - 1) heap.check();
    }
    expect(heap.stats().arenas).toEqual({ allocatedTotal: 2, reclaimed: 0, highwater: 2, current: 2 });
    expect(heap.stats().bytes.freePools).toBe(POOLS_PER_ARENA);

    // The second drains pool by pool, ahead of the first in usable_arenas; when its last pool
    // is freed the wholly free first arena follows it, so it is released.
    for (let i = 0; i < second.length; i++) {
      heap.free(second[i]);
      if (i % PER_POOL_512 === PER_POOL_512 - 1) heap.check();
      if (i < second.length - 1) expect(heap.stats().arenas.current).toBe(2);
    }
    expect(heap.stats().arenas).toEqual({ allocatedTotal: 2, reclaimed: 1, highwater: 2, current: 1 });
    expect(heap.owns(second[0])).toBe(false);
    expect(heap.owns(first[0])).toBe(true);

    // A released arena's memory is reused: a new arena needs no new memory.
    const committed = heap.stats().memory.committedBytes;
    const again = fillArenas(heap, 2);
    heap.check();
    expect(heap.stats().arenas).toEqual({ allocatedTotal: 3, reclaimed: 1, highwater: 2, current: 2 });
    expect(heap.stats().memory.committedBytes).toBe(committed);

    // And for a large block: release the new arena again, and a raw block takes its place.
    for (const p of again) heap.free(p);
    heap.check();
    expect(heap.stats().arenas).toMatchObject({ reclaimed: 2, current: 1 });
    expect(heap.stats().memory.releasedBytes).toBeGreaterThanOrEqual(POOLS_PER_ARENA * POOL);
    const large = heap.malloc(POOLS_PER_ARENA * POOL - 4096);
    expect(heap.owns(large)).toBe(false);
    heap.check();
    expect(heap.stats().memory.committedBytes).toBe(committed);
  });

  it('keeps usable_arenas sorted so that allocation drains the fullest arena first', async () => {
    const heap = await heap37();
    const arenas = [fillArenas(heap, 1), fillArenas(heap, 1), fillArenas(heap, 1)];
    // Free 5 pools in arena 0, 2 pools in arena 1 and 9 pools in arena 2.
    const freePools = (blocks: number[], pools: number) => {
      for (let i = 0; i < pools * PER_POOL_512; i++) heap.free(blocks[i]);
      heap.check();
    };
    freePools(arenas[0], 5);
    freePools(arenas[1], 2);
    freePools(arenas[2], 9);
    // New pools come from arena 1 (fewest free pools), then arena 0, then arena 2.
    const pool0 = new Set(arenas[0].slice(0, 5 * PER_POOL_512).map(poolOf));
    const pool1 = new Set(arenas[1].slice(0, 2 * PER_POOL_512).map(poolOf));
    const pool2 = new Set(arenas[2].slice(0, 9 * PER_POOL_512).map(poolOf));
    const order: string[] = [];
    for (let i = 0; i < 16; i++) {
      const pool = poolOf(heap.malloc(256));
      for (let k = 1; k < Math.floor((POOL - OVERHEAD) / 256); k++) heap.malloc(256);
      heap.check();
      order.push(pool0.has(pool) ? 'a0' : pool1.has(pool) ? 'a1' : pool2.has(pool) ? 'a2' : '?');
    }
    expect(order).toEqual([...Array(2).fill('a1'), ...Array(5).fill('a0'), ...Array(9).fill('a2')]);
    expect(heap.stats().arenas.current).toBe(3);
  });
});
