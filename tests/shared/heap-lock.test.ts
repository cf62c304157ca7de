// A worker terminated while it holds a free-threaded heap's heap lock (the core's, around the raw
// allocator and the arenas: memory/lock.ts) would leave every other thread waiting on it for
// good. heap.watch(worker) takes the lock over from the dead thread, checks the heap with the
// world stopped and releases it. The worker here allocates large blocks in a loop, so that a
// terminate() often lands inside the lock; the test goes on until enough have.
import { describe, it, expect } from 'vitest';
import { Heap, HeapCorruptionError } from '../../src/index.js';
import { Crew } from './helpers.js';

const MiB = 2 ** 20;
const ATTEMPTS = 60;
const WANTED = 3;

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe("a free-threaded heap's heap lock", () => {
  it('is taken back from a worker terminated holding it, and the heap goes on', async () => {
    let recovered = 0;
    const outcomes = { sound: 0, broken: 0 };
    let attempts = 0;
    for (; attempts < ATTEMPTS && recovered < WANTED; attempts++) {
      const heap = await Heap.create({ shared: true, concurrency: 'free-threaded', maxMemory: 64 * MiB });
      const crew = new Crew(heap);
      const { worker, result } = crew.start('large');
      result.catch(() => {});
      heap.watch(worker);
      crew.release(1);
      while (Atomics.load(crew.words, 3) < 1000) await pause(1);
      await worker.terminate();
      await pause(5);
      recovered += heap.gil.stats().world!.heapLockRecoveries;
      // Whatever the worker was doing, the heap goes on: sound, or (left half changed, found by
      // the recovery's check) refused by every call as broken. Never hung.
      let sound = true;
      try {
        const p = heap.malloc(5000);
        const q = heap.malloc(64);
        heap.free(p);
        heap.free(q);
        heap.check();
      } catch (error) {
        expect(error).toBeInstanceOf(HeapCorruptionError);
        expect(() => heap.malloc(64)).toThrow(HeapCorruptionError);
        sound = false;
      }
      if (sound) expect(heap.attachments()).toBe(1);
      outcomes[sound ? 'sound' : 'broken']++;
      heap.dispose();
    }
    expect(recovered).toBeGreaterThanOrEqual(WANTED);
    expect(outcomes.sound + outcomes.broken).toBe(attempts);
  }, 120_000);
});
