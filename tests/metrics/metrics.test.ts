// pymalloc-wasm/metrics: the registry's text output, parsed, against heap.stats() and the
// collector's counts after a known sequence of mallocs, frees and collections.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { Registry, register as defaultRegistry } from 'prom-client';
import { Heap } from '../../src/index.js';
import { registerHeapMetrics, type HeapMetrics } from '../../src/tools/metrics/index.js';
import { Crew } from '../shared/helpers.js';
import { parse } from './helpers.js';

describe('registerHeapMetrics', () => {
  let heap: Heap;
  let registry: Registry;
  let metrics: HeapMetrics;

  beforeEach(async () => {
    heap = await Heap.create();
    heap.gc.disable();
    registry = new Registry();
    metrics = registerHeapMetrics(heap, { register: registry });
  });

  afterEach(() => metrics.unregister());

  const scrape = async () => parse(await registry.metrics());

  it('reads the allocator at scrape time: blocks, bytes, pools and arenas exactly as stats() has them', async () => {
    const blocks = Array.from({ length: 100 }, () => heap.malloc(36));
    const big = heap.malloc(10_000);
    for (const p of blocks.slice(0, 40)) heap.free(p);
    const size = heap.usableSize(blocks[99]);
    const stats = heap.stats();
    const s = await scrape();
    expect(s.get(`pymalloc_blocks_in_use{size_class="${size}"}`)).toBe(60);
    for (const c of stats.sizeClasses) expect(s.get(`pymalloc_blocks_in_use{size_class="${c.size}"}`)).toBe(c.blocksInUse);
    expect(s.get('pymalloc_blocks_bytes{state="allocated"}')).toBe(60 * size);
    expect(s.get('pymalloc_blocks_bytes{state="allocated"}')).toBe(stats.bytes.inAllocatedBlocks);
    expect(s.get('pymalloc_blocks_bytes{state="free"}')).toBe(stats.bytes.inAvailableBlocks);
    expect(s.get('pymalloc_raw_blocks')).toBe(stats.raw.blocks);
    expect(s.get('pymalloc_raw_bytes')).toBe(heap.usableSize(big));
    expect(s.get('pymalloc_committed_bytes')).toBe(stats.memory.committedBytes);
    expect(s.get('pymalloc_peak_committed_bytes')).toBe(stats.memory.peakCommittedBytes);
    expect(s.get('pymalloc_pools{state="used"}')).toBe(1);
    expect(s.get('pymalloc_pools{state="free"}')).toBe(stats.bytes.freePools);
    expect(s.get('pymalloc_arenas')).toBe(1);
    expect(s.get('pymalloc_arenas_highwater')).toBe(1);
    expect(s.get('pymalloc_arenas_allocated_total')).toBe(1);
    expect(s.get('pymalloc_arenas_reclaimed_total')).toBe(0);
    expect(s.get('pymalloc_fragmentation_ratio')).toBe(stats.memory.committedBytes / (60 * size + heap.usableSize(big)));

    // The next scrape sees the frees since; CPython keeps the last empty arena (bpo-37257).
    for (const p of blocks.slice(40)) heap.free(p);
    heap.free(big);
    const after = await scrape();
    expect(after.get(`pymalloc_blocks_in_use{size_class="${size}"}`)).toBe(0);
    expect(after.get('pymalloc_arenas')).toBe(1);
    expect(after.get('pymalloc_fragmentation_ratio')).toBeNaN();
    expect(after.get('pymalloc_raw_blocks')).toBe(0);

    // Two arenas' worth of 512-byte blocks, then all freed: one arena goes back.
    const perArena = (heap.config.arenaSize / heap.config.poolSize) * Math.floor((heap.config.poolSize - heap.config.poolOverhead) / 512);
    const many = Array.from({ length: perArena + 1 }, () => heap.malloc(512));
    const two = await scrape();
    expect([two.get('pymalloc_arenas'), two.get('pymalloc_arenas_highwater'), two.get('pymalloc_arenas_allocated_total')]).toEqual([2, 2, 2]);
    expect(two.get('pymalloc_blocks_in_use{size_class="512"}')).toBe(perArena + 1);
    heap.freeMany(many);
    const one = await scrape();
    expect([one.get('pymalloc_arenas'), one.get('pymalloc_arenas_highwater'), one.get('pymalloc_arenas_reclaimed_total')]).toEqual([1, 2, 1]);
  });

  it('counts collections and the objects they collect per generation, and times each pause', async () => {
    for (let i = 0; i < 3; i++) {
      // d <-> l, dropped: 2 objects a cycle
      const d = heap.newDict();
      const l = heap.newList([d]);
      heap.dictSet(d, 'l', l);
      heap.decref(l);
      heap.decref(d);
    }
    expect(heap.gc.collect(0)).toBe(6);
    expect(heap.gc.collect(2)).toBe(0);
    expect(heap.gc.collect(2)).toBe(0);
    const s = await scrape();
    expect(s.get('pymalloc_gc_collections_total{generation="0"}')).toBe(1);
    expect(s.get('pymalloc_gc_collections_total{generation="1"}')).toBe(0);
    expect(s.get('pymalloc_gc_collections_total{generation="2"}')).toBe(2);
    expect(s.get('pymalloc_gc_collected_total{generation="0"}')).toBe(6);
    expect(s.get('pymalloc_gc_collected_total{generation="2"}')).toBe(0);
    expect(s.get('pymalloc_gc_uncollectable_total{generation="0"}')).toBe(0);
    expect(s.get('pymalloc_gc_pause_seconds_count{generation="0"}')).toBe(1);
    expect(s.get('pymalloc_gc_pause_seconds_count{generation="2"}')).toBe(2);
    expect(s.get('pymalloc_gc_pause_seconds_bucket{le="+Inf",generation="2"}')).toBe(2);
    expect(s.get('pymalloc_gc_pause_seconds_sum{generation="0"}')).toBeGreaterThan(0);
    for (const [g, n] of heap.gc.getStats().entries()) {
      expect(s.get(`pymalloc_gc_collections_total{generation="${g}"}`)).toBe(n.collections);
    }
  });

  it('names every metric with the prefix, and unregister() removes them all and the gc callback', async () => {
    const other = registerHeapMetrics(heap, { register: registry, prefix: 'second_heap_' });
    expect(other.names).toEqual(metrics.names.map((n) => n.replace(/^pymalloc_/, 'second_heap_')));
    expect(metrics.names.every((n) => /^pymalloc_\w+$/.test(n) && /(_bytes|_total|_seconds|_ratio|arenas|arenas_highwater|pools|blocks|blocks_in_use)$/.test(n))).toBe(true);
    expect(heap.gc.callbacks).toHaveLength(2);
    other.unregister();
    expect(heap.gc.callbacks).toHaveLength(1);
    expect([...(await scrape()).keys()].some((k) => k.startsWith('second_heap_'))).toBe(false);
    metrics.unregister();
    expect(await registry.metrics()).toBe('\n');
    expect(heap.gc.callbacks).toHaveLength(0);
    metrics = registerHeapMetrics(heap, { register: registry });
  });

  it("registers with prom-client's default registry when none is given", async () => {
    const onDefault = registerHeapMetrics(heap);
    try {
      heap.malloc(100);
      const s = parse(await defaultRegistry.metrics());
      expect(s.get('pymalloc_blocks_bytes{state="allocated"}')).toBe(heap.stats().bytes.inAllocatedBlocks);
    } finally {
      onDefault.unregister();
    }
    expect(await defaultRegistry.getSingleMetricAsString('pymalloc_arenas').catch(() => 'gone')).toBe('gone');
  });

  it('refuses bad options with errors naming them', () => {
    expect(() => registerHeapMetrics(heap, { prefix: '9bad' })).toThrow(/options.prefix/);
    expect(() => registerHeapMetrics(heap, { register: {} as Registry })).toThrow(/options.register/);
    expect(() => registerHeapMetrics(heap, { pauseBuckets: [0.1, 0.01] })).toThrow(/options.pauseBuckets/);
    expect(() => registerHeapMetrics(heap, { regster: registry } as never)).toThrow(/unknown option 'regster'/);
    // A second set under the same prefix collides, as prom-client says.
    expect(() => registerHeapMetrics(heap, { register: registry })).toThrow(/already been registered/);
  });
});

describe('registerHeapMetrics on a shared heap', () => {
  it('reads the GIL: acquisitions and contended counters, and a wait histogram whose buckets, sum and count are gil.stats()', async () => {
    const heap = await Heap.create({ shared: true, maxMemory: 64 * 2 ** 20 });
    const registry = new Registry();
    const metrics = registerHeapMetrics(heap, { register: registry });
    try {
      // Two workers incref one object; worker 0 sleeps holding the GIL ten times, so waits happen.
      const o = heap.newList();
      const crew = new Crew(heap);
      const runs = [0, 1].map(() => crew.start('incref', { o, ops: 20_000, batch: 0 }).result);
      crew.release(2);
      await Promise.all(runs);
      await crew.terminate();

      const gil = heap.gil.stats();
      expect(gil.contended).toBeGreaterThan(0);
      // Every collect() runs before registry.metrics() first awaits, so under one gil.run the
      // scrape is one acquisition, uncontended, and reads one consistent picture.
      const s = parse(await heap.gil.run(() => registry.metrics()));
      expect(s.get('pymalloc_gil_acquisitions_total')).toBe(gil.acquisitions + 1);
      expect(s.get('pymalloc_gil_contended_total')).toBe(gil.contended);
      expect(s.get('pymalloc_gil_recoveries_total')).toBe(0);
      let cumulative = 0;
      gil.waitHistogram.le.forEach((le, i) => {
        cumulative += gil.waitHistogram.counts[i];
        expect(s.get(`pymalloc_gil_wait_seconds_bucket{le="${Number.isFinite(le) ? le : '+Inf'}"}`)).toBe(cumulative);
      });
      expect(cumulative).toBe(gil.contended);
      expect(s.get('pymalloc_gil_wait_seconds_count')).toBe(gil.contended);
      expect(s.get('pymalloc_gil_wait_seconds_sum')).toBe(gil.waitSeconds);
      expect(metrics.names).toContain('pymalloc_gil_wait_seconds');
      // The text has one +Inf bucket, and the registry's JSON calls it a histogram.
      expect((await registry.metrics()).match(/pymalloc_gil_wait_seconds_bucket\{le="\+Inf"\}/g)).toHaveLength(1);
      expect((await registry.getMetricsAsJSON()).find((m) => m.name === 'pymalloc_gil_wait_seconds')?.type).toBe('histogram');
    } finally {
      metrics.unregister();
      heap.dispose();
    }
    expect(await registry.metrics()).toBe('\n');
  });

  it('registers no GIL metrics for a heap that is not shared', async () => {
    const heap = await Heap.create();
    const registry = new Registry();
    const metrics = registerHeapMetrics(heap, { register: registry });
    expect(metrics.names.filter((n) => n.includes('gil'))).toEqual([]);
    metrics.unregister();
    heap.dispose();
  });
});
