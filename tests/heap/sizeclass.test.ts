import { describe, it, expect } from 'vitest';
import { Heap, PRESETS } from '../../src/index.js';

describe.each(['cpython-3.7', 'cpython-3.12'] as const)('size classes of %s', (preset) => {
  const { alignment, smallRequestThreshold } = PRESETS[preset];
  const classOf = (n: number) => (n - 1) >> Math.log2(alignment);

  it('serves every request of 1..512 bytes from its size class, and 0 and 513 from the raw allocator', async () => {
    const heap = await Heap.create({ preset });
    for (let n = 0; n <= smallRequestThreshold + 1; n++) {
      const p = heap.malloc(n);
      if (n >= 1 && n <= smallRequestThreshold) {
        expect(heap.owns(p)).toBe(true);
        expect(heap.usableSize(p)).toBe((classOf(n) + 1) * alignment);
        expect(p % alignment).toBe(0);
        const row = heap.stats().sizeClasses[classOf(n)];
        expect(row.size).toBe((classOf(n) + 1) * alignment);
        expect(row.blocksInUse).toBeGreaterThan(0);
      } else {
        expect(heap.owns(p)).toBe(false);
        expect(heap.usableSize(p)).toBeGreaterThanOrEqual(Math.max(n, 1));
        expect(p % 16).toBe(0);
      }
      heap.free(p);
    }
    heap.check();
  });

  it('maps the documented examples', async () => {
    const heap = await Heap.create({ preset });
    const size = (n: number) => heap.usableSize(heap.malloc(n));
    expect(size(1)).toBe(alignment);
    expect(size(alignment)).toBe(alignment);
    expect(size(alignment + 1)).toBe(2 * alignment);
    expect(size(36)).toBe(alignment === 8 ? 40 : 48);
    expect(size(505)).toBe(512);
    expect(size(512)).toBe(512);
    expect(heap.stats().sizeClasses).toHaveLength(512 / alignment);
  });
});
