// What tracemalloc costs a Heap API call: ns per heap.malloc(size) + heap.free(p) from JS, with
// tracing off, on with a tag (withTag: one frame, no stack), and on taking the JS stack
// (start(1) and start(8)). It measures the built library (dist/, as users run it: tsx would
// compile src/ differently) and, given a path to another build (say the dist of the commit before
// tracemalloc), that build's Heap first, as the "before" of the off figure. The cases run
// interleaved, one round each in turn; medians of 15 rounds.
//
//   npm run build:js && npx tsx bench/tracemalloc.ts [path/to/other/dist/index.js]
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import type { Heap as HeapType } from '../src/index.js';

const BLOCKS = 20000;
const ROUNDS = 15;

interface HeapLike {
  malloc(size: number): number;
  free(address: number): void;
}

// Sizes uniform in 1..128 from a fixed linear congruential sequence: the same for every case.
const sizes = new Uint32Array(BLOCKS);
let x = 12345;
for (let i = 0; i < BLOCKS; i++) sizes[i] = 1 + ((x = (x * 1103515245 + 12345) >>> 0) >>> 16) % 128;
const addresses = new Uint32Array(BLOCKS);

/**
 * A round loop of its own for each case: one shared loop would see every Heap class at its
 * heap.malloc call, and V8 inlines the first it saw (which biased the first case by 25%).
 */
function roundFor(heap: HeapLike): () => number {
  const loop = new Function('heap', 'sizes', 'addresses', 'now', `
    const start = now();
    for (let i = 0; i < sizes.length; i++) addresses[i] = heap.malloc(sizes[i]);
    for (let i = 0; i < sizes.length; i++) heap.free(addresses[i]);
    return Number(now() - start) / sizes.length;`) as (h: HeapLike, s: Uint32Array, a: Uint32Array, now: () => bigint) => number;
  return () => loop(heap, sizes, addresses, process.hrtime.bigint);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** Runs the cases interleaved (two uncounted warm-up rounds) and prints their medians against `base`. */
function measure(title: string, cases: [string, () => number][], base: string): void {
  const times: number[][] = cases.map(() => []);
  for (let r = 0; r < ROUNDS + 2; r++) {
    cases.forEach(([, run], i) => { const t = run(); if (r >= 2) times[i].push(t); });
  }
  const baseTime = median(times[cases.findIndex(([label]) => label === base)]);
  console.log(title);
  cases.forEach(([label], i) => {
    const m = median(times[i]);
    console.log(`  ${label.padEnd(12)} ${m.toFixed(1).padStart(8)} ns   ${(m / baseTime).toFixed(3)}x ${base}`);
  });
}

const { Heap } = (await import(new URL('../dist/index.js', import.meta.url).href)) as { Heap: typeof HeapType };
const off = await Heap.create();
const before = process.argv[2];
// Phase 1, one heap per library: with one heap, V8 calls the core's malloc directly from
// Heap.malloc; a second heap of the same class (phase 2) makes that call polymorphic.
if (before) {
  const module = (await import(pathToFileURL(resolve(before)).href)) as { Heap: { create(): Promise<HeapLike> } };
  const old = await module.Heap.create();
  measure(`heap.malloc(1..128) + heap.free, ${BLOCKS} blocks a round, median of ${ROUNDS} rounds, one heap per library`, [
    ['before', roundFor(old)],
    ['off', roundFor(off)],
  ], 'before');
}
const tagged = await Heap.create();
tagged.tracemalloc.start(1);
const taggedRound = roundFor(tagged);
const cases: [string, () => number][] = [
  ['off', roundFor(off)],
  ['on, tag', () => tagged.tracemalloc.withTag('bench', taggedRound)],
];
for (const nframe of [1, 8]) {
  const stacked = await Heap.create();
  stacked.tracemalloc.start(nframe);
  cases.push([`on, stack ${nframe}`, roundFor(stacked)]);
}
measure(`the same, tracing on in ${cases.length - 1} other heaps`, cases, 'off');
