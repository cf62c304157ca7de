// npx tsx bench/threads.ts (after npm run build): what biased reference counting costs a
// refcount operation, against the GIL heap's in the same run (issue 11's goal: the owner's
// incref+decref within 1.2x of the GIL build's).
// 1. One thread, timed by benchmark.js: the owner is the instance that made the object; the other
//    thread is a second instance attached in the same worker, so that its operations take the
//    shared (atomic) path without another worker competing for the cores. Each lock-free call
//    enters and leaves the world (the stop-the-world protocol, src/heap/shared.ts) unless the
//    thread holds the heap mutex (gil.run), where no stop can come: the gil.run rows compare
//    like with like, a thread running many operations at once, as a CPython thread does attached.
// 2. Two workers at once on one object (this machine has two cores), each timing its own loop
//    after a start barrier; the median over RUNS of the slower worker's rate.
// 3. A collection's pause: the same graph on the gil and the free-threaded heap (below).
// 4. Allocation throughput (per-thread pools): one worker, then two, on each heap (below).

import Benchmark from 'benchmark';
import { Worker } from 'node:worker_threads';
import { Heap } from '../src/index.js';

const PAIRS = 1000;

interface Case {
  name: string;
  heap: Heap;
  o: number;
  /** The loop runs inside one gil.run: the GIL is taken once, as bytecode runs under it. */
  batched?: boolean;
}

async function object(heap: Heap): Promise<number> {
  const o = heap.newList();
  heap.incref(o); // so that no decref below frees it
  return o;
}

const plain = await Heap.create();
const gil = await Heap.create({ shared: true });
const ft = await Heap.create({ shared: true, concurrency: 'free-threaded' });
const other = await Heap.attach(ft.share());
const shared = await object(ft);
const cases: Case[] = [
  { name: 'not shared', heap: plain, o: await object(plain) },
  { name: 'gil, each call taking it', heap: gil, o: await object(gil) },
  { name: 'gil, held across the loop (gil.run)', heap: gil, o: await object(gil), batched: true },
  { name: 'free-threaded, owner (ob_ref_local)', heap: ft, o: await object(ft) },
  { name: 'free-threaded, owner, in gil.run (no world entry)', heap: ft, o: await object(ft), batched: true },
  { name: 'free-threaded, other thread (ob_ref_shared)', heap: other, o: shared },
];

const rows: { name: string; ns: number; rme: number }[] = [];
const suite = new Benchmark.Suite('refcount');
for (const { name, heap, o, batched } of cases) {
  const loop = () => {
    for (let i = 0; i < PAIRS; i++) {
      heap.incref(o);
      heap.decref(o);
    }
  };
  suite.add(name, batched ? () => heap.gil.run(loop) : loop, {
    maxTime: 2,
    minSamples: 10,
    onComplete(event: Benchmark.Event) {
      const bench = event.target as unknown as Benchmark;
      rows.push({ name, ns: (bench.stats.mean * 1e9) / PAIRS, rme: bench.stats.rme });
    },
  });
}
suite.run({ async: false });

const reference = rows.find((r) => r.name.startsWith('gil, held'))!;
console.log(`\nincref + decref of one object, ns per pair (vs ${reference.name})`);
for (const r of rows) {
  console.log(`  ${r.name.padEnd(46)} ${r.ns.toFixed(1).padStart(7)}  ±${r.rme.toFixed(1).padStart(4)}%  ${(r.ns / reference.ns).toFixed(2)}x`);
}
for (const c of cases) if (c.heap.refcount(c.o) !== 2) throw new Error(`${c.name}: refcount ${c.heap.refcount(c.o)}, not 2`);

// ───── 2. two workers ─────

const WORKER_PAIRS = 1_000_000;
const RUNS = 5;
/** The worker: the built package (workers do not run TypeScript), a barrier, a timed loop. */
const WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
import(workerData.dist).then(async ({ Heap }) => {
  const heap = await Heap.attach(workerData.handle);
  const o = workerData.own ? heap.newList() : workerData.o;
  const go = new Int32Array(workerData.barrier);
  Atomics.add(go, 0, 1);
  while (Atomics.load(go, 1) === 0) Atomics.wait(go, 1, 0, 10);
  const start = performance.now();
  for (let i = 0; i < workerData.pairs; i++) {
    heap.incref(o);
    heap.decref(o);
  }
  const seconds = (performance.now() - start) / 1e3;
  if (workerData.own) heap.decref(o);
  heap.detach();
  parentPort.postMessage(seconds);
});
`;
const DIST = new URL('../dist/index.js', import.meta.url).href;

/** Pairs per second of the slower of two workers, each on `o` (or on an object of its own). */
async function twoWorkers(heap: Heap, o: number, own: boolean): Promise<number> {
  const barrier = new Int32Array(new SharedArrayBuffer(8));
  const done = [0, 1].map(() => new Promise<number>((resolve, reject) => {
    const worker = new Worker(WORKER, { eval: true, workerData: { dist: DIST, handle: heap.share(), o, own, barrier: barrier.buffer, pairs: WORKER_PAIRS } });
    worker.once('message', resolve);
    worker.once('error', reject);
  }));
  while (Atomics.load(barrier, 0) < 2) await new Promise((resolve) => setTimeout(resolve, 1));
  Atomics.store(barrier, 1, 1);
  Atomics.notify(barrier, 1);
  const seconds = Math.max(...(await Promise.all(done)));
  return WORKER_PAIRS / seconds;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1];
const twoCases: { name: string; heap: Heap; o: number; own: boolean }[] = [
  { name: 'gil, one object shared by both', heap: gil, o: cases[1].o, own: false },
  { name: 'gil, an object each', heap: gil, o: 0, own: true },
  { name: 'free-threaded, one object shared by both', heap: ft, o: shared, own: false },
  { name: 'free-threaded, an object each (its owner)', heap: ft, o: 0, own: true },
];
const rates = new Map<string, number[]>(twoCases.map((c) => [c.name, []]));
for (let run = 0; run < RUNS; run++) {
  for (const c of twoCases) rates.get(c.name)!.push(await twoWorkers(c.heap, c.o, c.own));
}
const gilShared = median(rates.get(twoCases[0].name)!);
console.log(`\ntwo workers at once, ${WORKER_PAIRS} incref + decref pairs each: M pairs/s per worker (median of ${RUNS}; vs ${twoCases[0].name})`);
for (const c of twoCases) {
  const rate = median(rates.get(c.name)!);
  console.log(`  ${c.name.padEnd(46)} ${(rate / 1e6).toFixed(2).padStart(7)}  ${(rate / gilShared).toFixed(2)}x`);
}

// ───── 3. a collection's pause ─────
// The same graph on the gil and the free-threaded heap: LIVE lists held from one root, and
// GARBAGE two-list cycles made afresh before each collection; meanwhile a worker runs incref +
// decref traffic on an object of its own, so that the free-threaded collection really has to
// stop it (and the gil one to take the GIL from it). On the gil heap the pause is the whole
// gc.collect() (nothing else runs while it holds the GIL); on the free-threaded heap it is the
// time the world was stopped (gc.getStats()'s pauseSeconds: the merge of the queues and the
// search for the unreachable; breaking the cycles runs after the restart). Medians of REPEATS.

const LIVE = 20_000;
const GARBAGE = 5_000;
const REPEATS = 15;
const TRAFFIC = `
const { workerData } = require('node:worker_threads');
import(workerData.dist).then(async ({ Heap }) => {
  const heap = await Heap.attach(workerData.handle);
  const o = heap.newList();
  const flags = new Int32Array(workerData.flags);
  Atomics.store(flags, 0, 1);
  Atomics.notify(flags, 0);
  while (Atomics.load(flags, 1) === 0) {
    for (let i = 0; i < 100; i++) {
      heap.incref(o);
      heap.decref(o);
    }
  }
  heap.decref(o);
  heap.detach();
  process.exit(0);
});
`;

interface Pause {
  pause: number;
  collect: number;
}

async function collectionPauses(heap: Heap): Promise<Pause[]> {
  heap.gc.disable();
  const root = heap.newList();
  for (let i = 0; i < LIVE; i++) {
    const l = heap.newList();
    heap.listAppend(root, l);
    heap.decref(l);
  }
  const flags = new Int32Array(new SharedArrayBuffer(8));
  const worker = new Worker(TRAFFIC, { eval: true, workerData: { dist: DIST, handle: heap.share(), flags: flags.buffer } });
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  while (Atomics.load(flags, 0) === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  const free = heap.gil.concurrency === 'free-threaded';
  const pauses: Pause[] = [];
  for (let r = 0; r < REPEATS; r++) {
    for (let i = 0; i < GARBAGE; i++) {
      const a = heap.newList();
      const b = heap.newList([a]);
      heap.listAppend(a, b);
      heap.decref(a);
      heap.decref(b);
    }
    const stopped = heap.gc.getStats()[2].pauseSeconds ?? 0;
    const start = performance.now();
    const found = heap.gc.collect();
    const collect = (performance.now() - start) / 1e3;
    if (found !== GARBAGE * 2) throw new Error(`${heap.gil.concurrency}: collected ${found}, not ${GARBAGE * 2}`);
    pauses.push({ pause: free ? heap.gc.getStats()[2].pauseSeconds! - stopped : collect, collect });
  }
  Atomics.store(flags, 1, 1);
  await exited;
  heap.decref(root);
  return pauses;
}

const gilPauses = await collectionPauses(await Heap.create({ shared: true }));
const ftPauses = await collectionPauses(await Heap.create({ shared: true, concurrency: 'free-threaded' }));
const ms = (seconds: number) => (seconds * 1e3).toFixed(2).padStart(7);
const gilPause = median(gilPauses.map((p) => p.pause));
console.log(`\na collection's pause: ${LIVE} live lists, ${GARBAGE} two-list cycles, a worker running incref + decref meanwhile (ms, median of ${REPEATS}; vs gil)`);
console.log(`  ${'gil: gc.collect() holding the GIL'.padEnd(46)} ${ms(gilPause)}  1.00x`);
for (const [name, key] of [['free-threaded: the world stopped', 'pause'], ['free-threaded: the whole gc.collect()', 'collect']] as const) {
  const value = median(ftPauses.map((p) => p[key]));
  console.log(`  ${name.padEnd(46)} ${ms(value)}  ${(value / gilPause).toFixed(2)}x`);
}

// ───── 4. allocation throughput: one worker, then two ─────
// Each worker mallocs and frees small blocks through heap.malloc/heap.free (a window of WINDOW
// blocks of sizes 16..256, allocated then freed, over and over) after a start barrier, timing its
// own loop (after WARM_UP untimed pairs); the throughput of a run is the sum of the workers'
// rates; the median over RUNS. On the free-threaded heap each worker allocates from its own
// pools, without the heap mutex (issue 11's goal: two workers at least 1.7x one); the GIL heap
// serializes them. The peer: the same workers running a loop of plain JS arithmetic, which no
// heap limits: what two workers can get from the machine at that moment (2.0x on two idle cores).

const ALLOC_PAIRS = 4_000_000;
/** Pairs each worker runs before the barrier, untimed, so that the timed loop runs tiered-up code. */
const WARM_UP = 200_000;
const WINDOW = 64;
const ALLOC_WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
import(workerData.dist).then(async ({ Heap }) => {
  const heap = await Heap.attach(workerData.handle);
  const go = new Int32Array(workerData.barrier);
  const window = new Array(workerData.window);
  const loop = (pairs) => {
    for (let done = 0; done < pairs; done += window.length) {
      for (let i = 0; i < window.length; i++) window[i] = heap.malloc(16 + ((i * 40) & 240));
      for (let i = 0; i < window.length; i++) heap.free(window[i]);
    }
  };
  const plain = (pairs) => {
    let x = 0;
    for (let i = 0; i < pairs * 40; i++) x = (x * 31 + i) | 0;
    window[0] = x;
  };
  (workerData.plain ? plain : loop)(workerData.warmUp);
  Atomics.add(go, 0, 1);
  while (Atomics.load(go, 1) === 0) Atomics.wait(go, 1, 0, 10);
  const start = performance.now();
  (workerData.plain ? plain : loop)(workerData.pairs);
  const seconds = (performance.now() - start) / 1e3;
  heap.detach();
  parentPort.postMessage(seconds);
});
`;

/** malloc+free pairs per second of `workers` workers together on `heap` (or the plain loop's rate in the same unit). */
async function allocating(heap: Heap, workers: number, plain: boolean): Promise<number> {
  const barrier = new Int32Array(new SharedArrayBuffer(8));
  const done = Array.from({ length: workers }, () => new Promise<number>((resolve, reject) => {
    const worker = new Worker(ALLOC_WORKER, { eval: true, workerData: { dist: DIST, handle: heap.share(), barrier: barrier.buffer, pairs: ALLOC_PAIRS, warmUp: WARM_UP, window: WINDOW, plain } });
    worker.once('message', resolve);
    worker.once('error', reject);
  }));
  while (Atomics.load(barrier, 0) < workers) await new Promise((resolve) => setTimeout(resolve, 1));
  Atomics.store(barrier, 1, 1);
  Atomics.notify(barrier, 1);
  const seconds = await Promise.all(done);
  return seconds.reduce((sum, s) => sum + ALLOC_PAIRS / s, 0);
}

const allocHeaps = [
  { name: 'plain JS (peer)', heap: ft, plain: true },
  { name: 'gil', heap: gil, plain: false },
  { name: 'free-threaded', heap: ft, plain: false },
];
const allocRates = new Map<string, number[]>();
for (let run = 0; run < RUNS; run++) {
  for (const { name, heap, plain } of allocHeaps) {
    for (const workers of [1, 2]) {
      const key = `${name} ${workers}`;
      allocRates.set(key, [...(allocRates.get(key) ?? []), await allocating(heap, workers, plain)]);
    }
  }
}
console.log(`\nallocation throughput, ${ALLOC_PAIRS} malloc + free pairs per worker (heap.malloc/heap.free, sizes 16..256): M pairs/s of all workers together (median of ${RUNS})`);
for (const { name } of allocHeaps) {
  const one = median(allocRates.get(`${name} 1`)!);
  const two = median(allocRates.get(`${name} 2`)!);
  console.log(`  ${name.padEnd(16)} 1 worker ${(one / 1e6).toFixed(2).padStart(6)}   2 workers ${(two / 1e6).toFixed(2).padStart(6)}   2w/1w ${(two / one).toFixed(2)}x`);
}
