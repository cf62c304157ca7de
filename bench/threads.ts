// npx tsx bench/threads.ts: what biased reference counting costs a refcount operation, timed by
// benchmark.js in one run against the GIL heap's (issue 11's goal: the owner's incref+decref
// within 1.2x of the GIL build's). One thread: the owner is the instance that made the object;
// the other thread is a second instance attached in the same worker, so that its operations
// take the shared (atomic) path without another worker competing for the cores.

import Benchmark from 'benchmark';
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
