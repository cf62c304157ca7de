// npm run bench: the throughput suite. Every figure is a ratio against a peer measured in the
// same run; absolute times on a shared machine drift.

import Benchmark from 'benchmark';
import { Heap } from 'pymalloc-wasm';
import { builtAllocators } from '../src/compare/allocators.js';
import {
  LIVE, STEPS, BATCH, OPS_PER_CALL, wasmChurn, hostChurn, batchedChurn, bareCall, bareExports,
} from './churn.js';

interface Row {
  name: string;
  nsPerOp: number;
  rme: number;
}

/** Runs one benchmark.js suite of functions that each perform OPS_PER_CALL operations. */
function run(title: string, cases: [string, () => unknown][]): Row[] {
  const suite = new Benchmark.Suite(title);
  for (const [name, fn] of cases) suite.add(name, fn, { maxTime: 3, minSamples: 8 });
  const rows: Row[] = [];
  suite.on('cycle', (event: Benchmark.Event) => {
    const bench = event.target as unknown as Benchmark;
    rows.push({ name: String(bench.name), nsPerOp: (bench.stats.mean * 1e9) / OPS_PER_CALL, rme: bench.stats.rme });
  });
  suite.run({ async: false });
  return rows;
}

function print(title: string, rows: Row[], reference: string): void {
  const base = rows.find((r) => r.name === reference)!.nsPerOp;
  console.log(`\n${title}`);
  console.log('  name                     ns/op    ±%    vs ' + reference);
  for (const r of rows) {
    const ratio = base / r.nsPerOp;
    console.log(
      `  ${r.name.padEnd(22)} ${r.nsPerOp.toFixed(1).padStart(7)} ${r.rme.toFixed(1).padStart(5)}   ` +
        `${ratio >= 1 ? ratio.toFixed(2) + 'x faster' : (1 / ratio).toFixed(2) + 'x slower'}`,
    );
  }
}

console.log(`small-object churn: ${LIVE} live blocks, sizes uniform in 1..512, ${STEPS} steps per call`);
console.log(`(${OPS_PER_CALL} operations per call: fill, steps of free + malloc, drain)`);

const allocators = builtAllocators().filter((name) => name !== 'bump');
const inWasm = run('in Wasm', await Promise.all(allocators.map(async (name) => [name, await wasmChurn(name)] as [string, () => unknown])));
print('In Wasm (the same driver loop over each allocator)', inWasm, 'tlsf');

const heap = await Heap.create({ preset: 'cpython-3.12' });
const host = run('host API', [
  ['pymalloc-3.12 in Wasm', await wasmChurn('pymalloc-3.12')],
  ['JS loop, bare exports', hostChurn(bareExports())],
  ['JS loop, Heap API', hostChurn(heap)],
  [`Heap API, batches ${BATCH}`, batchedChurn(heap)],
  ['bare JS->Wasm call', bareCall()],
]);
print('Through the host API (cpython-3.12)', host, 'pymalloc-3.12 in Wasm');
const [, bareLoop, apiLoop, , bare] = host.map((r) => r.nsPerOp);
console.log(
  `\n  the Heap API adds ${(apiLoop - bareLoop).toFixed(1)} ns per operation to the same JS loop ` +
    `calling the core's exports directly;\n  one bare JS->Wasm call costs ${bare.toFixed(1)} ns ` +
    `(goal: the API adds no more than that)`,
);
heap.check();
