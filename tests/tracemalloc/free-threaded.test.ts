// tracemalloc on a free-threaded heap: each instance traces its own calls, as on a GIL heap; a
// traced malloc/calloc/realloc/free takes the heap mutex (CPython's tracemalloc locks its tables
// on every traced call), an untraced one does not; objects freed by another thread's decref are
// dropped when traces are read; the trace table grows while another worker allocates lock-free.
import { describe, it, expect, afterEach } from 'vitest';
import { Heap } from '../../src/index.js';
import { Crew } from '../shared/helpers.js';

const MiB = 2 ** 20;

function create(): Promise<Heap> {
  return Heap.create({ shared: true, concurrency: 'free-threaded', maxMemory: 64 * MiB });
}

describe('tracemalloc on a free-threaded heap', () => {
  let heap: Heap;
  afterEach(() => {
    heap.tracemalloc.stop();
    heap.check();
    heap.dispose();
  });

  it('traces allocations exactly, each traced call under the heap mutex and untraced ones without it', async () => {
    heap = await create();
    const tm = heap.tracemalloc;
    const acquisitions = () => heap.gil.stats().acquisitions;

    const untraced = acquisitions();
    heap.free(heap.malloc(64));
    heap.free(heap.realloc(heap.calloc(4, 8), 100));
    expect(acquisitions()).toBe(untraced);

    tm.start();
    const before = acquisitions();
    const a = [heap.malloc(100), heap.malloc(100), heap.malloc(100)];
    const b = heap.calloc(10, 20);
    const moved = heap.realloc(a[0], 300);
    heap.free(a[1]);
    expect(acquisitions()).toBe(before + 6);
    expect(tm.getTracedMemory()).toEqual({ current: 300 + 100 + 200, peak: 300 + 200 + 200 });
    const sizes = tm.takeSnapshot().traces.map((t) => t.size).sort((x, y) => x - y);
    expect(sizes).toEqual([100, 200, 300]);
    for (const p of [moved, a[2], b]) heap.free(p);
    expect(tm.getTracedMemory().current).toBe(0);
  });

  it("drops an object another thread's decref freed (queued to its owner, merged at its safe point)", async () => {
    heap = await create();
    const tm = heap.tracemalloc;
    tm.start();
    const list = heap.newList();
    const kept = heap.newList();
    const size = tm.getTracedMemory().current / 2;
    expect(size).toBeGreaterThan(0);

    const crew = new Crew(heap);
    await crew.start('script', { objects: [list], steps: [['decref', 0]] }).result;
    await crew.terminate();
    // The worker's decref found the shared count at 0 and queued the list to this thread; the
    // next locked call (getTracedMemory) is a safe point that merges it, frees it, and then reads.
    expect(tm.getTracedMemory().current).toBe(size);
    expect(heap.isObject(list)).toBe(false);
    expect(tm.takeSnapshot().traces.map((t) => t.size)).toEqual([size]);
    heap.decref(kept);
    expect(tm.getTracedMemory().current).toBe(0);
  });

  it('grows its trace table while another worker allocates lock-free, and the heap stays sound', async () => {
    heap = await create();
    const tm = heap.tracemalloc;
    const crew = new Crew(heap);
    const busy = crew.start('busy', { index: 0 });
    crew.release(1);
    tm.start();
    const blocks: number[] = [];
    // 3000 traces: the table (1024 slots, doubled past half full) grows three times meanwhile.
    for (let i = 0; i < 3000; i++) blocks.push(heap.malloc(24 + (i % 8) * 8));
    const expected = blocks.reduce((sum, _p, i) => sum + 24 + (i % 8) * 8, 0);
    expect(tm.getTracedMemory().current).toBe(expected);
    // The table's raw block, 8192 slots of 16 bytes (its usable size rounds up a little).
    expect(tm.getTracemallocMemory()).toBeGreaterThanOrEqual(8192 * 16);
    expect(tm.getTracemallocMemory()).toBeLessThan(16384 * 16);
    heap.check();
    Atomics.store(crew.words, 2, 2);
    const { rounds, live } = (await busy.result) as { rounds: number; live: number[] };
    await crew.terminate();
    expect(rounds).toBeGreaterThan(0);
    for (const p of blocks) heap.free(p);
    for (const p of live) heap.free(p);
    expect(tm.getTracedMemory().current).toBe(0);
    expect(heap.stats().sizeClasses.reduce((sum, c) => sum + c.blocksInUse, 0)).toBe(0);
  });
});
