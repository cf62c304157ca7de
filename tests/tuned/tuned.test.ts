import { describe, it, expect } from 'vitest';
import { Heap, InvalidAddressError, HeapCorruptionError } from '../../src/index.js';
import { parse } from '../heap/mallocstats.js';

// The tuned preset: 16-byte classes, 32 KiB pools of which 32 bytes are the header, 64 pools per
// 2 MiB arena; a 512-byte pool holds (32768 - 32) / 512 = 63 blocks.
const POOL = 32768;
const OVERHEAD = 32;
const PER_POOL_512 = 63;
const POOLS_PER_ARENA = 64;
const poolOf = (p: number) => p - (p % POOL);

describe.each(['release', 'debug'] as const)('the tuned policy (%s build)', (build) => {
  it('links a pool that was full last on its list: malloc keeps filling the pool it was on', async () => {
    const heap = await Heap.create({ preset: 'tuned', build });
    const first = Array.from({ length: PER_POOL_512 }, () => heap.malloc(512));
    expect(first.map((p) => p - poolOf(first[0]))).toEqual(first.map((_, i) => OVERHEAD + 512 * i));
    const second = heap.malloc(512); // the first pool is full: a second one opens
    expect(poolOf(second)).not.toBe(poolOf(first[0]));

    heap.free(first[3]);
    heap.check();
    // CPython would hand first[3] out again (tests/heap/lifecycle.test.ts); tuned goes on
    // carving the second pool until it is full.
    const rest = Array.from({ length: PER_POOL_512 - 1 }, () => heap.malloc(512));
    expect(rest).toEqual(rest.map((_, i) => second + 512 * (i + 1)));
    expect(heap.malloc(512)).toBe(first[3]);
    heap.check();
  });

  it('is CPython block for block otherwise: classes of 16-byte steps, pools carved in address order', async () => {
    const heap = await Heap.create({ preset: 'tuned', build });
    const p = heap.malloc(1);
    const q = heap.malloc(16);
    expect([heap.usableSize(p), heap.usableSize(q), q - p]).toEqual([16, 16, 16]);
    expect(heap.usableSize(heap.malloc(17))).toBe(32);
    expect(heap.usableSize(heap.malloc(497))).toBe(512);
  });
});

describe('the tuned preset under the Heap API', () => {
  it("prints sys._debugmallocstats()'s report with its own geometry", async () => {
    const heap = await Heap.create({ preset: 'tuned' });
    for (let i = 0; i < PER_POOL_512; i++) heap.malloc(512);
    heap.malloc(16);
    const { header, rows, summary } = parse(heap.debugMallocStats());
    expect(header).toBe('Small block threshold = 512, in 32 size classes.');
    expect(rows).toEqual([
      { index: 0, size: 16, pools: 1, inUse: 1, avail: (POOL - OVERHEAD) / 16 - 1 },
      { index: 31, size: 512, pools: 1, inUse: PER_POOL_512, avail: 0 },
    ]);
    expect(summary.get('# arenas allocated current')).toBe(1);
    expect(summary.get('1 arenas * 2097152 bytes/arena')).toBe(2097152);
    expect(summary.get(`${POOLS_PER_ARENA - 2} unused pools * ${POOL} bytes`)).toBe((POOLS_PER_ARENA - 2) * POOL);
    expect(summary.get('# bytes in allocated blocks')).toBe(PER_POOL_512 * 512 + 16);
  });

  it('catches a double free and an address in a pool never carved, leaving the heap as it was', async () => {
    const heap = await Heap.create({ preset: 'tuned' });
    const p = heap.malloc(100);
    heap.malloc(100); // keeps the pool in use
    heap.free(p);
    expect(() => heap.free(p)).toThrow(expect.objectContaining({ reason: 'double-free' }));
    const uncarved = poolOf(p) + POOL + OVERHEAD;
    expect(heap.owns(uncarved)).toBe(true);
    expect(() => heap.free(uncarved)).toThrow(InvalidAddressError);
    expect(() => heap.free(uncarved)).toThrow(expect.objectContaining({ reason: 'never-allocated' }));
    heap.check();
    expect(heap.malloc(100)).toBe(p);
  });

  it("check() finds a pool never carved whose header says it was (its bits word set)", async () => {
    const heap = await Heap.create({ preset: 'tuned' });
    const p = heap.malloc(100);
    const bitsField = poolOf(p) + POOL + 20; // the pool header's `bits` (assembly/pymalloc/pool.ts)
    new DataView(heap.memory.buffer).setUint32(bitsField, 0x1000, true);
    expect(() => heap.check()).toThrow(HeapCorruptionError);
    expect(() => heap.check()).toThrow(/block bits/);
  });

  it('survives a random churn with every structure checked', async () => {
    const heap = await Heap.create({ preset: 'tuned' });
    const live: number[] = [];
    let x = 12345;
    for (let step = 0; step < 30000; step++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      if (live.length > 2000 || (live.length > 0 && (x & 1))) {
        const [victim] = live.splice((x >>> 1) % live.length, 1);
        heap.free(victim);
      } else {
        live.push(heap.malloc(1 + ((x >>> 0) % 512)));
      }
      if (step % 5000 === 0) heap.check();
    }
    heap.check();
    expect(heap.stats().sizeClasses.reduce((n, c) => n + c.blocksInUse, 0)).toBe(live.length);
    for (const p of live) heap.free(p);
    heap.check();
    expect(heap.stats().sizeClasses.reduce((n, c) => n + c.blocksInUse, 0)).toBe(0);
  });
});
