import { Worker } from 'node:worker_threads';
import type { Heap } from '../../src/index.js';

const BOOTSTRAP = new URL('./worker.bootstrap.mjs', import.meta.url);

/** A shared heap's test workers and their start barrier (tests/shared/worker.ts). */
export class Crew {
  readonly barrier = new SharedArrayBuffer(16);
  readonly words = new Int32Array(this.barrier);
  readonly workers: Worker[] = [];
  readonly #heap: Heap;

  constructor(heap: Heap) {
    this.#heap = heap;
  }

  /** Starts a worker on `task`; resolves with what the task returns. */
  start(task: string, extra: Record<string, unknown> = {}): { worker: Worker; result: Promise<any> } {
    const index = this.workers.length;
    const worker = new Worker(BOOTSTRAP, { workerData: { task, handle: this.#heap.share(), barrier: this.barrier, index, ...extra } });
    this.workers.push(worker);
    const result = new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`worker ${index} (${task}) exited with ${code} before answering`)));
    });
    return { worker, result };
  }

  /** Waits until `count` workers have attached, then releases them all at once. */
  release(count: number): void {
    const deadline = Date.now() + 60_000;
    for (let seen; (seen = Atomics.load(this.words, 0)) < count; ) {
      if (Date.now() > deadline) throw new Error(`only ${seen} of ${count} workers reached the start barrier`);
      Atomics.wait(this.words, 0, seen, 100);
    }
    Atomics.store(this.words, 1, 1);
    Atomics.notify(this.words, 1);
  }

  async terminate(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** The biased-refcount words of a free-threaded heap's object (docs/free-threaded.md, the header). */
export interface BrcHeader {
  tid: number;
  /** ob_flags, ob_mutex and ob_gc_bits, as one word. */
  flags: number;
  shared: number;
  local: number;
}

export function brcHeader(heap: Heap, o: number): BrcHeader {
  const words = new Int32Array(heap.memory.buffer);
  return { tid: words[(o - 16) >> 2] >>> 0, flags: words[(o - 12) >> 2], shared: words[(o - 8) >> 2], local: words[o >> 2] >>> 0 };
}
