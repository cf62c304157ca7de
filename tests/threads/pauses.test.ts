// The readers of what only some free-threaded heaps count: the stop-the-world collection's pauses
// in gc.getStats() and the pools each thread holds in stats(). Present, they are read exactly;
// absent (the heaps of today), they read as null and the tool falls back on its own measures.

import { describe, expect, it } from 'vitest';

import { Heap, type GcGenerationStats, type HeapStats } from '../../src/index.js';
import { pauseMsOf, threadPoolsOf } from '../../src/tools/threads/pauses.js';

const line = (extra: Record<string, number>): GcGenerationStats => ({ collections: 1, collected: 0, uncollectable: 0, ...extra } as GcGenerationStats);

describe('pauseMsOf', () => {
  it('is the pause time counted between two getStats() results, over the generations, in ms', () => {
    const before = [line({ pauses: 2, pauseSeconds: 0.001 }), line({ pauses: 0, pauseSeconds: 0 }), line({ pauses: 1, pauseSeconds: 0.002 })];
    const after = [line({ pauses: 3, pauseSeconds: 0.0015 }), line({ pauses: 0, pauseSeconds: 0 }), line({ pauses: 3, pauseSeconds: 0.00425 })];
    expect(pauseMsOf(before, after)).toBeCloseTo(2.75, 12);
  });

  it('is null when a generation counts no pause, or when none does (a heap that does not stop the world)', async () => {
    expect(pauseMsOf([line({ pauseSeconds: 1 }), line({})], [line({ pauseSeconds: 2 }), line({})])).toBeNull();
    const heap = await Heap.create({ shared: true, concurrency: 'free-threaded' });
    try {
      const stats = heap.gc.getStats();
      const counted = 'pauseSeconds' in stats[0];
      expect(pauseMsOf(stats, stats)).toBe(counted ? 0 : null);
    } finally {
      heap.dispose();
    }
  });
});

describe('threadPoolsOf', () => {
  const stats = (extra: Record<string, unknown>) => ({ sizeClasses: [], ...extra } as unknown as HeapStats);

  it('reads a total, or sums the pools of each thread', () => {
    expect(threadPoolsOf(stats({ threadPools: 7 }))).toBe(7);
    expect(threadPoolsOf(stats({ threads: [{ id: 1, pools: 3 }, { id: 2, pools: 5 }] }))).toBe(8);
  });

  it('is null when stats() counts no pools per thread', () => {
    expect(threadPoolsOf(stats({}))).toBeNull();
    expect(threadPoolsOf(stats({ threads: [{ id: 1 }] }))).toBeNull();
    expect(threadPoolsOf(stats({ threadPools: 'many' }))).toBeNull();
  });
});
