// npm run bench: the throughput suite of src/tools/compare/bench.ts, timed by benchmark.js. Every
// figure is a ratio against a peer measured in the same run; absolute times on a shared
// machine drift.

import Benchmark from 'benchmark';
import { builtAllocators } from '../src/tools/compare/allocators.js';
import { benchCases, opsPerCall, BATCH, DEFAULT_STEPS, LIVE, MAX_SIZE } from '../src/tools/compare/bench.js';

interface Row {
  name: string;
  allocator: string;
  nsPerOp: number;
  rme: number;
}

const OPS = opsPerCall(DEFAULT_STEPS);
const cases = benchCases(DEFAULT_STEPS, builtAllocators().filter((name) => name !== 'bump'));
const suite = new Benchmark.Suite('churn');
const rows: Row[] = [];
for (const { name, allocator, make } of cases) {
  const fn = await make();
  suite.add(`${name} (${allocator})`, fn, {
    maxTime: 3,
    minSamples: 8,
    onComplete(event: Benchmark.Event) {
      const bench = event.target as unknown as Benchmark;
      rows.push({ name, allocator, nsPerOp: (bench.stats.mean * 1e9) / OPS, rme: bench.stats.rme });
    },
  });
}
suite.run({ async: false });

function ratio(base: number, value: number): string {
  return value <= base ? `${(base / value).toFixed(2)}x faster` : `${(value / base).toFixed(2)}x slower`;
}

function print(title: string, selected: Row[], reference: Row): void {
  console.log(`\n${title}\n  ${'case'.padEnd(44)} ${'ns/op'.padStart(7)}    ±%   vs ${reference.name} (${reference.allocator})`);
  for (const r of selected) {
    console.log(
      `  ${`${r.name} (${r.allocator})`.padEnd(44)} ${r.nsPerOp.toFixed(1).padStart(7)} ${r.rme.toFixed(1).padStart(5)}   ` +
        ratio(reference.nsPerOp, r.nsPerOp),
    );
  }
}

const find = (name: string, allocator: string) => rows.find((r) => r.name === name && r.allocator === allocator)!;
console.log(`small-object churn: ${LIVE} live blocks, sizes uniform in 1..${MAX_SIZE}, ${DEFAULT_STEPS} steps per call`);
console.log(`(${OPS} operations per call: fill, steps of free + malloc, drain)`);
const inWasm = rows.filter((r) => r.name === 'churn in Wasm');
print('In Wasm: the same driver loop over each allocator', inWasm, find('churn in Wasm', 'tlsf'));
const pymalloc = find('churn in Wasm', 'pymalloc-3.12');
print('Through the host API (cpython-3.12)', [pymalloc, ...rows.filter((r) => r.name !== 'churn in Wasm' && r.allocator === 'pymalloc-3.12')], pymalloc);
const bareLoop = find('JS loop, bare exports', 'pymalloc-3.12').nsPerOp;
const apiLoop = find('JS loop, Heap API', 'pymalloc-3.12').nsPerOp;
const bare = find('bare JS->Wasm call', 'pymalloc-3.12').nsPerOp;
console.log(
  `\n  the Heap API adds ${(apiLoop - bareLoop).toFixed(1)} ns per operation to the same JS loop calling ` +
    `the core's exports directly;\n  one bare JS->Wasm call costs ${bare.toFixed(1)} ns (goal: the API adds no more than that)`,
);

// The throughput goals of the tuned preset and the specialised builds (README, "The tuned preset").
const churn = (allocator: string) => rows.find((r) => r.name === 'churn in Wasm' && r.allocator === allocator);
const goals: [string, string, string][] = [
  ['pymalloc-tuned', 'mimalloc', 'faster'],
  ['pymalloc-3.12', 'mimalloc', 'within 1.3x'],
  ['pymalloc-3.7', 'mimalloc', 'within 1.3x'],
  ['pymalloc-3.12', 'tlsf', '2x faster'],
  ['pymalloc-3.7', 'tlsf', '2x faster'],
  ['pymalloc-3.12', 'dlmalloc', '2x faster'],
  ['pymalloc-3.7', 'dlmalloc', '2x faster'],
];
console.log('\nChurn in Wasm against the goals');
for (const [ours, peer, goal] of goals) {
  const a = churn(ours);
  const b = churn(peer);
  if (!a || !b) continue;
  console.log(`  ${ours.padEnd(15)} vs ${peer.padEnd(9)} ${ratio(b.nsPerOp, a.nsPerOp).padEnd(13)} (goal: ${goal})`);
}
const tunedWasm = churn('pymalloc-tuned');
if (tunedWasm) {
  print('Through the host API (tuned)', [tunedWasm, ...rows.filter((r) => r.name !== 'churn in Wasm' && r.allocator === 'pymalloc-tuned')], tunedWasm);
}
