// The tuned preset on the shipped traces of real programs: replay ns/op against mimalloc's and
// fragmentation against dlmalloc's (the most compact peer), in one run (README, "The tuned
// preset"). Run: npx tsx bench/traces.ts [--repeat N]

import { compare, SHIPPED_TRACE_NAMES, TRACE_PREFIX } from '../src/tools/compare/index.js';

const repeatAt = process.argv.indexOf('--repeat');
const repeat = repeatAt > 0 ? Number(process.argv[repeatAt + 1]) : 7;
const allocators = ['pymalloc-tuned', 'pymalloc-3.12', 'pymalloc-3.7', 'mimalloc', 'dlmalloc'];
const comparison = await compare({
  workloads: SHIPPED_TRACE_NAMES.map((name) => `${TRACE_PREFIX}${name}`),
  allocators,
  repeat,
  native: false,
});
const ran = allocators.filter((name) => comparison.results.some((r) => r.allocator === name));
const row = (workload: string, allocator: string) =>
  comparison.results.find((r) => r.workload === workload && r.allocator === allocator && !r.failure);

console.log(`replay of the shipped traces: ns/op (median of ${repeat} runs) and fragmentation (peak footprint / peak live bytes)\n`);
console.log(`${'workload'.padEnd(18)}${ran.map((a) => a.padStart(17)).join('')}   tuned/mimalloc ns  tuned/dlmalloc frag`);
for (const { name: workload } of comparison.workloads) {
  const cells = ran.map((a) => {
    const r = row(workload, a);
    return (r?.nsPerOp ? `${r.nsPerOp.toFixed(1)} ${r.fragmentation?.toFixed(3) ?? 'n/a'}` : 'failed').padStart(17);
  });
  const tuned = row(workload, 'pymalloc-tuned');
  const mimalloc = row(workload, 'mimalloc');
  const dlmalloc = row(workload, 'dlmalloc');
  const speed = tuned?.nsPerOp && mimalloc?.nsPerOp ? (tuned.nsPerOp / mimalloc.nsPerOp).toFixed(2).padStart(17) : ''.padStart(17);
  const frag = tuned?.fragmentation && dlmalloc?.fragmentation ? (tuned.fragmentation / dlmalloc.fragmentation).toFixed(3).padStart(20) : '';
  console.log(`${workload.padEnd(18)}${cells.join('')}   ${speed}  ${frag}`);
}
console.log('\ngoals: tuned/mimalloc ns below 1 (faster), tuned/dlmalloc frag at most 1.05');
