// The readers of what only a free-threaded heap counts: the stop-the-world collection's pauses in
// gc.getStats() and the pools each thread owns in stats(). Present, they are read exactly; absent
// (a GIL heap), they read as null and the tool falls back on its own measures.

import { describe, expect, it } from 'vitest';

import { Heap, type GcGenerationStats, type HeapStats } from '../../src/index.js';
import { pauseMsOf, threadPoolsOf } from '../../src/tools/threads/ft-stats.js';

const line = (extra: Record<string, number>): GcGenerationStats => ({ collections: 1, collected: 0, uncollectable: 0, ...extra } as GcGenerationStats);

describe('pauseMsOf', () => {
  it('is the pause time counted between two getStats() results, over the generations, in ms', () => {
    const before = [line({ pauses: 2, pauseSeconds: 0.001 }), line({ pauses: 0, pauseSeconds: 0 }), line({ pauses: 1, pauseSeconds: 0.002 })];
    const after = [line({ pauses: 3, pauseSeconds: 0.0015 }), line({ pauses: 0, pauseSeconds: 0 }), line({ pauses: 3, pauseSeconds: 0.00425 })];
    expect(pauseMsOf(before, after)).toBeCloseTo(2.75, 12);
  });

  it('is null when a generation counts no pause, as on a GIL heap; 0 between two reads of a free-threaded heap that did not collect', async () => {
    expect(pauseMsOf([line({ pauseSeconds: 1 }), line({})], [line({ pauseSeconds: 2 }), line({})])).toBeNull();
    const gil = await Heap.create({ shared: true });
    const ft = await Heap.create({ shared: true, concurrency: 'free-threaded' });
    try {
      expect(pauseMsOf(gil.gc.getStats(), gil.gc.getStats())).toBeNull();
      expect(pauseMsOf(ft.gc.getStats(), ft.gc.getStats())).toBe(0);
      const before = ft.gc.getStats();
      ft.gc.collect();
      expect(pauseMsOf(before, ft.gc.getStats())).toBeGreaterThan(0);
    } finally {
      gil.dispose();
      ft.dispose();
    }
  });
});

describe('threadPoolsOf', () => {
  const stats = (extra: Record<string, unknown>) => ({ sizeClasses: [], ...extra } as unknown as HeapStats);
  const slot = (id: number, pools: number) => ({ id, tid: id === 1 ? 0 : (7 << 9) | id, pools, remotePending: 0, remoteFrees: 0, lockedFrees: 0, drains: 0, drained: 0, adopted: 0 });

  it("sums the pools of every slot, a detached one's included, beside the pools no thread owns", () => {
    expect(threadPoolsOf(stats({ threads: { sharedPools: 2, slots: [slot(1, 0), slot(2, 3), slot(3, 5)] } }))).toEqual({ threadPools: 8, sharedPools: 2 });
    expect(threadPoolsOf(stats({ threads: { sharedPools: 0, slots: [] } }))).toEqual({ threadPools: 0, sharedPools: 0 });
  });

  it("is null on a GIL heap; on a free-threaded one, the creator's pool after one malloc", async () => {
    expect(threadPoolsOf(stats({}))).toBeNull();
    const gil = await Heap.create({ shared: true });
    const ft = await Heap.create({ shared: true, concurrency: 'free-threaded' });
    try {
      expect(threadPoolsOf(gil.stats())).toBeNull();
      const p = ft.malloc(16);
      expect(threadPoolsOf(ft.stats())).toEqual({ threadPools: 1, sharedPools: 0 });
      ft.free(p);
    } finally {
      gil.dispose();
      ft.dispose();
    }
  });
});
