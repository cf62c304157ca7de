// The collection pauses of every worker, counted in one SharedArrayBuffer: gc.callbacks are JS
// functions, so each worker times the collections its own instance runs (registerHeapMetrics'
// gc_pause_seconds would see only the main thread's, and the main thread collects nothing), and
// the main thread reads the counts at each scrape.
//
//   Int32 words   per generation, PAUSE_BUCKETS.length counts: counts[i] took at most PAUSE_BUCKETS[i] s
//   BigInt64      after them    per generation, the sum of its pauses in nanoseconds; then the longest of all

import type { BucketCounts } from '../../src/tools/metrics/index.js';

export const PAUSE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1, Infinity];
const GENERATIONS = 3;
const COUNTS = GENERATIONS * PAUSE_BUCKETS.length;
const SUMS = Math.ceil((COUNTS * 4) / 8) * 8;
const LONGEST = GENERATIONS;

export class PauseCounts {
  readonly buffer: SharedArrayBuffer;
  readonly #counts: Int32Array;
  readonly #ns: BigInt64Array;

  constructor(buffer = new SharedArrayBuffer(SUMS + 8 * (GENERATIONS + 1))) {
    this.buffer = buffer;
    this.#counts = new Int32Array(buffer, 0, COUNTS);
    this.#ns = new BigInt64Array(buffer, SUMS, GENERATIONS + 1);
  }

  record(generation: number, seconds: number): void {
    Atomics.add(this.#counts, generation * PAUSE_BUCKETS.length + PAUSE_BUCKETS.findIndex((b) => seconds <= b), 1);
    const ns = BigInt(Math.round(seconds * 1e9));
    Atomics.add(this.#ns, generation, ns);
    for (let max = Atomics.load(this.#ns, LONGEST); ns > max; max = Atomics.load(this.#ns, LONGEST)) {
      if (Atomics.compareExchange(this.#ns, LONGEST, max, ns) === max) break;
    }
  }

  /** One series per generation. */
  read(): BucketCounts[] {
    return Array.from({ length: GENERATIONS }, (_, g) => ({
      labels: { generation: String(g) },
      le: PAUSE_BUCKETS,
      counts: PAUSE_BUCKETS.map((_b, i) => Atomics.load(this.#counts, g * PAUSE_BUCKETS.length + i)),
      sum: Number(Atomics.load(this.#ns, g)) / 1e9,
    }));
  }

  get longestSeconds(): number {
    return Number(Atomics.load(this.#ns, LONGEST)) / 1e9;
  }
}
