// The collector's benchmark: a full collection over N tracked objects with one reference
// each, linked in rings of 10, (a) all still held (one reference per ring) and (b) all
// garbage; objects per second for each, and the same graph in CPython (lists of one item,
// gc.collect()) when python3 is on the machine.
//
//   npx tsx bench/gc.ts [N ...]        (default: 100000 1000000 10000000)

import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { Heap } from '../src/index.js';

const RING = 10;
const sizes = process.argv.slice(2).map(Number);
if (sizes.length === 0) sizes.push(100_000, 1_000_000, 10_000_000);
for (const n of sizes) {
  if (!Number.isInteger(n) || n < RING || n % RING !== 0) throw new RangeError(`N must be a multiple of ${RING}, not ${n}`);
}

interface Result {
  heldSeconds: number;
  garbageSeconds: number;
  found: number;
}

/** Best of three for the held graph (it is unchanged by a collection); one run for the garbage. */
async function wasm(n: number): Promise<Result> {
  const heap = await Heap.create();
  const Link = heap.defineType({ name: 'Link', refSlots: 1, weakrefable: false });
  heap.gc.disable();
  const heads: number[] = [];
  for (let r = 0; r < n / RING; r++) {
    const first = heap.newObject(Link);
    let prev = first;
    for (let i = 1; i < RING; i++) {
      const next = heap.newObject(Link);
      heap.setRef(prev, 0, next);
      heap.decref(next);
      prev = next;
    }
    heap.setRef(prev, 0, first);
    heads.push(first);
  }
  heap.gc.collect();
  let heldSeconds = Infinity;
  for (let run = 0; run < 3; run++) {
    const start = performance.now();
    const found = heap.gc.collect();
    heldSeconds = Math.min(heldSeconds, (performance.now() - start) / 1000);
    if (found !== 0) throw new Error(`held graph: collect() found ${found}`);
  }
  for (const head of heads) heap.decref(head);
  const start = performance.now();
  const found = heap.gc.collect();
  const garbageSeconds = (performance.now() - start) / 1000;
  if (found !== n) throw new Error(`garbage graph: collect() found ${found}, not ${n}`);
  heap.check();
  return { heldSeconds, garbageSeconds, found };
}

const PYTHON = `
import gc, sys, time
n, ring = int(sys.argv[1]), int(sys.argv[2])
gc.disable()
heads = []
for r in range(n // ring):
    first = [None]
    prev = first
    for i in range(ring - 1):
        cur = [None]
        prev[0] = cur
        prev = cur
    prev[0] = first
    heads.append(first)
gc.collect()
held = float('inf')
for run in range(3):
    start = time.perf_counter()
    gc.collect()
    held = min(held, time.perf_counter() - start)
del heads, first, prev, cur
start = time.perf_counter()
found = gc.collect()
print(held, time.perf_counter() - start, found)
`;

function cpython(n: number): Result | null {
  const run = spawnSync('python3', ['-c', PYTHON, String(n), String(RING)], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (run.error || run.status !== 0) return null;
  const [held, garbage, found] = run.stdout.trim().split(/\s+/).map(Number);
  return { heldSeconds: held, garbageSeconds: garbage, found };
}

const version = spawnSync('python3', ['--version'], { encoding: 'utf8' });
const python = version.status === 0 ? version.stdout.trim() : null;
const mops = (n: number, seconds: number) => (n / seconds / 1e6).toFixed(1);
const nsPer = (n: number, seconds: number) => ((seconds * 1e9) / n).toFixed(1);

console.log(`gc.collect() over N objects in rings of ${RING}, one reference each (Node ${process.version}${python ? `, ${python}` : ', no python3'})`);
console.log('M objects/s (ns per object); ratio = pymalloc-wasm / CPython\n');
// V8 runs Wasm through its baseline compiler until a function is hot: one untimed round
// first, so that every size is measured in optimised code (CPython is compiled C throughout).
await wasm(100_000);
const rows: string[][] = [['N', 'case', 'pymalloc-wasm', 'CPython', 'ratio']];
for (const n of sizes) {
  const ours = await wasm(n);
  const theirs = python ? cpython(n) : null;
  for (const [label, key] of [['held', 'heldSeconds'], ['garbage', 'garbageSeconds']] as const) {
    rows.push([
      n.toLocaleString('en-US'),
      label,
      `${mops(n, ours[key])} (${nsPer(n, ours[key])})`,
      theirs ? `${mops(n, theirs[key])} (${nsPer(n, theirs[key])})` : '-',
      theirs ? `${(theirs[key] / ours[key]).toFixed(2)}x` : '-',
    ]);
  }
}
const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
for (const row of rows) console.log(row.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  '));
