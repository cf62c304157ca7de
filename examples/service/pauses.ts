// The collection pauses of every worker, counted in one SharedArrayBuffer: gc.callbacks are JS
// functions, so each worker times the collections its own instance runs (registerHeapMetrics'
// gc_pause_seconds would see only the main thread's, and the main thread collects nothing), and
// the main thread reads the counts at each scrape.
//
//   Int32 words   [0, BUCKETS)  collections by pause: counts[i] took at most PAUSE_BUCKETS[i] s
//   BigInt64      after them    the sum of all pauses in nanoseconds, then the longest

import type { BucketCounts } from '../../src/tools/metrics/index.js';

export const PAUSE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1, Infinity];
const SUMS = Math.ceil((PAUSE_BUCKETS.length * 4) / 8) * 8;

export class PauseCounts {
  readonly buffer: SharedArrayBuffer;
  readonly #counts: Int32Array;
  readonly #ns: BigInt64Array;

  constructor(buffer = new SharedArrayBuffer(SUMS + 16)) {
    this.buffer = buffer;
    this.#counts = new Int32Array(buffer, 0, PAUSE_BUCKETS.length);
    this.#ns = new BigInt64Array(buffer, SUMS, 2);
  }

  record(seconds: number): void {
    Atomics.add(this.#counts, PAUSE_BUCKETS.findIndex((b) => seconds <= b), 1);
    const ns = BigInt(Math.round(seconds * 1e9));
    Atomics.add(this.#ns, 0, ns);
    for (let max = Atomics.load(this.#ns, 1); ns > max; max = Atomics.load(this.#ns, 1)) {
      if (Atomics.compareExchange(this.#ns, 1, max, ns) === max) break;
    }
  }

  read(): BucketCounts & { maxSeconds: number } {
    return {
      le: PAUSE_BUCKETS,
      counts: Array.from(this.#counts, (_, i) => Atomics.load(this.#counts, i)),
      sum: Number(Atomics.load(this.#ns, 0)) / 1e9,
      maxSeconds: Number(Atomics.load(this.#ns, 1)) / 1e9,
    };
  }
}
