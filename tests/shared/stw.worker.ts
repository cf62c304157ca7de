// One worker of the stop-the-world tests (tests/shared/stw.test.ts): attaches to the heap it is
// handed, says so in words[READY], and runs one task. The test imports the word indexes only.

import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Heap, type SharedHeapHandle } from '../../src/index.js';
import { worldOf } from '../../src/heap/shared.js';

/** Int32 words of the test's SharedArrayBuffer. */
export const READY = 0;
export const STOP = 1;
/** Lock-free operations done so far (spin). */
export const OPS = 2;
/** The object spin made with `make` and handed over (its reference goes to the test). */
export const MADE = 3;

interface Task {
  task: string;
  handle: SharedHeapHandle;
  words: SharedArrayBuffer;
  [key: string]: unknown;
}

async function run(data: Task): Promise<unknown> {
  const heap = await Heap.attach(data.handle);
  const words = new Int32Array(data.words);

  function ready(): void {
    Atomics.add(words, READY, 1);
    Atomics.notify(words, READY);
  }

  function untilStopped(): void {
    while (Atomics.load(words, STOP) === 0) Atomics.wait(words, STOP, 0, 50);
  }

  const tasks: Record<string, () => unknown> = {
    /**
     * Increfs data.o (or an object of its own) lock-free until told to stop: how many. With
     * `make`, first makes an object of that type and hands its reference over in words[MADE].
     */
    spin() {
      if (data.make) Atomics.store(words, MADE, heap.newObject(heap.defineType({ name: data.make as string, finalizer: () => {} })));
      const o = (data.o as number) || heap.newList();
      ready();
      let done = 0;
      while (Atomics.load(words, STOP) === 0) {
        heap.incref(o);
        done++;
        Atomics.store(words, OPS, done);
      }
      const refcount = heap.refcount(o);
      return { done, refcount };
    },

    /** Attached, outside every heap call, until told to stop. */
    idle() {
      ready();
      untilStopped();
      heap.detach();
      return { idle: true };
    },

    /** Enters the world and never leaves it, as a worker terminated inside an incref would. */
    attachedForever() {
      worldOf(heap)!.enter();
      ready();
      for (;;) Atomics.wait(words, STOP, 0, 50);
    },

    /** One gc.collect(): what it found, or the message of what it threw. */
    collect() {
      ready();
      try {
        return { found: heap.gc.collect() };
      } catch (error) {
        return { error: (error as Error).message };
      }
    },
  };
  return tasks[data.task]();
}

if (!isMainThread) parentPort!.postMessage(await run(workerData as Task));
