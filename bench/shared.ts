// The price of the GIL (npm run bench): in one run, timed by benchmark.js,
//   the floor    a bare lock + unlock of a mutex in shared memory, in JS with Atomics: the
//                GIL's own algorithm (src/heap/shared.ts: compare-and-swap 0 -> 1, then
//                subtract 1, and wake a sleeper if there was one), with nothing around it;
//   per call     heap.malloc + heap.free on a shared 'gil' heap against the same on an unshared
//                heap: the difference per call is what the GIL costs uncontended (goal: within
//                1.3x of the floor); a shared 'none' heap (no lock) shows what sharing alone costs;
//   gil.run      batches of 100 calls under one acquisition, per call against the unshared heap
//                (goal: within 1.1x);
// (each case in a process of its own: see CASES), and, timed by pymalloc race's workers (the alloc loop, median of 5 runs in fresh workers),
//   contention   2 workers on one 'gil' heap against 1: throughput over all workers.
//
//   npx tsx bench/shared.ts

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Benchmark from 'benchmark';
import { Heap } from '../src/index.js';
import { measureThroughput } from '../src/tools/race/race.js';

/** Calls per timed function: benchmark.js's own overhead per call would swamp one lock. */
const REPEAT = 1000;
/** Calls under one gil.run. */
const BATCH = 100;
const SIZE = 16;
const MAX_MEMORY = 64 * 2 ** 20;

interface Row {
  name: string;
  /** ns per lock + unlock, or per malloc or free call. */
  ns: number;
  rme: number;
}

/**
 * The uncontended cases. Each is timed in a process of its own: Heap's methods are one code
 * for every heap, so a process that has called both a shared and an unshared heap runs both
 * through polymorphic call sites (the last case measures what that costs the unshared heap).
 */
const CASES: Record<string, { title: string; calls: number; make: () => Promise<() => void> }> = {
  floor: {
    title: 'floor: lock + unlock (JS, Atomics)',
    calls: REPEAT,
    make: async () => {
      const word = new Int32Array(new SharedArrayBuffer(4));
      return () => {
        for (let i = 0; i < REPEAT; i++) {
          if (Atomics.compareExchange(word, 0, 0, 1) !== 0) throw new Error('the floor mutex is never contended');
          if (Atomics.sub(word, 0, 1) !== 1) {
            Atomics.store(word, 0, 0);
            Atomics.notify(word, 0, 1);
          }
        }
      };
    },
  },
  unshared: { title: 'unshared heap: malloc + free', calls: 2 * REPEAT, make: async () => pairs(await Heap.create()) },
  none: { title: "shared 'none' heap: malloc + free", calls: 2 * REPEAT, make: async () => pairs(await Heap.create({ shared: true, concurrency: 'none', maxMemory: MAX_MEMORY })) },
  gil: { title: "shared 'gil' heap: malloc + free", calls: 2 * REPEAT, make: async () => pairs(await Heap.create({ shared: true, maxMemory: MAX_MEMORY })) },
  batched: { title: `shared 'gil' heap: gil.run of ${BATCH} calls`, calls: 2 * REPEAT, make: async () => batched(await Heap.create({ shared: true, maxMemory: MAX_MEMORY })) },
  mixed: {
    title: 'unshared heap, a shared one used too',
    calls: 2 * REPEAT,
    make: async () => {
      // Not through pairs(): its call sites would see both heaps, and only the library's should.
      const shared = await Heap.create({ shared: true, maxMemory: MAX_MEMORY });
      for (let i = 0; i < 10 * REPEAT; i++) shared.free(shared.malloc(SIZE));
      return pairs(await Heap.create());
    },
  },
};

/** REPEAT malloc + free pairs: 2 * REPEAT calls. */
function pairs(heap: Heap): () => void {
  return () => {
    for (let i = 0; i < REPEAT; i++) heap.free(heap.malloc(SIZE));
  };
}

/** The same calls, BATCH of them under each gil.run (each finds the GIL held and passes through). */
function batched(heap: Heap): () => void {
  return () => {
    for (let i = 0; i < REPEAT; i += BATCH / 2) {
      heap.gil.run(() => {
        for (let j = 0; j < BATCH / 2; j++) heap.free(heap.malloc(SIZE));
      });
    }
  };
}

/** Times one case (in this process) and prints its row as JSON. */
async function timeCase(key: string): Promise<void> {
  const { title, calls, make } = CASES[key];
  const fn = await make();
  fn();
  const bench = new Benchmark(title, fn, { maxTime: 2, minSamples: 10 });
  bench.run({ async: false });
  console.log(JSON.stringify({ name: title, ns: (bench.stats.mean * 1e9) / calls, rme: bench.stats.rme } satisfies Row));
}

const only = process.argv[2];
if (only !== undefined) {
  await timeCase(only);
  process.exit(0);
}

const rows = Object.keys(CASES).map((key): Row => {
  const run = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), key], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`case ${key} failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as Row;
});
const ns = (key: string) => rows.find((r) => r.name === CASES[key].title)!.ns;
console.log(`\nThe GIL, uncontended (ns per lock + unlock, or per malloc or free call; ${REPEAT} per timed call, each case in its own process; Node ${process.version})`);
for (const r of rows) console.log(`  ${r.name.padEnd(44)} ${r.ns.toFixed(2).padStart(7)} ns  ±${r.rme.toFixed(1)}%`);
const floor = ns('floor');
const base = ns('unshared');
const perCall = ns('gil') - base;
console.log(`\n  the GIL per call: ${perCall.toFixed(2)} ns over the unshared heap = ${(perCall / floor).toFixed(2)}x the floor (goal: within 1.3x)`);
console.log(`    of which sharing without a lock ('none'): ${(ns('none') - base).toFixed(2)} ns; the lock itself ('gil' - 'none'): ${(ns('gil') - ns('none')).toFixed(2)} ns = ${((ns('gil') - ns('none')) / floor).toFixed(2)}x the floor`);
console.log(`  gil.run of ${BATCH} calls: ${(ns('batched') / base).toFixed(3)}x the unshared heap per call (goal: within 1.1x)`);
console.log(`  the unshared heap in a process that also used a shared one: ${(ns('mixed') / base).toFixed(3)}x the unshared heap alone`);

const OPS = 500_000;
const RUNS = 5;
const one = await measureThroughput('gil', 1, OPS, RUNS);
const two = await measureThroughput('gil', 2, OPS, RUNS);
const twoBatched = await measureThroughput('gil', 2, OPS, RUNS, 1, BATCH / 2);
const alone = await measureThroughput('unshared', 1, OPS, RUNS);
const mops = (p: { opsPerSecond: number }) => (p.opsPerSecond / 1e6).toFixed(2);
console.log(`\nContention: the alloc loop of pymalloc race (${OPS} malloc and free calls per worker, median of ${RUNS} runs in fresh workers)`);
console.log(`  unshared heap, 1 worker:          ${mops(alone)} M ops/s`);
console.log(`  'gil', 1 worker:                  ${mops(one)} M ops/s`);
console.log(`  'gil', 2 workers:                 ${mops(two)} M ops/s over both = ${(two.opsPerSecond / one.opsPerSecond).toFixed(2)}x 1 worker`);
console.log(`  'gil', 2 workers, gil.run of ${BATCH}: ${mops(twoBatched)} M ops/s over both = ${(twoBatched.opsPerSecond / one.opsPerSecond).toFixed(2)}x 1 worker`);
