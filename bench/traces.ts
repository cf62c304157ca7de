// The tuned preset on the shipped traces of real programs: replay ns/op against mimalloc's and
// fragmentation against dlmalloc's (the most compact peer), in one run (README, "The tuned
// preset"). The comparison runs three times over and each cell keeps its fastest median, so
// that a busy stretch of a shared machine, which a comparison's sequential replays feel one
// allocator at a time, weighs less. Run: npx tsx bench/traces.ts [--repeat N]

import { compare, SHIPPED_TRACE_NAMES, TRACE_PREFIX } from '../src/tools/compare/index.js';

const repeatAt = process.argv.indexOf('--repeat');
const repeat = repeatAt > 0 ? Number(process.argv[repeatAt + 1]) : 7;
const allocators = ['pymalloc-tuned', 'pymalloc-3.12', 'pymalloc-3.7', 'mimalloc', 'dlmalloc'];
const ROUNDS = 3;
const rounds: Awaited<ReturnType<typeof compare>>[] = [];
for (let round = 0; round < ROUNDS; round++) {
  rounds.push(await compare({ workloads: SHIPPED_TRACE_NAMES.map((name) => `${TRACE_PREFIX}${name}`), allocators, repeat, native: false }));
}
const comparison = rounds[0];
const ran = allocators.filter((name) => comparison.results.some((r) => r.allocator === name));
/** The cell's row of the first round (fragmentation is exact), with the fastest median of all rounds. */
const row = (workload: string, allocator: string) => {
  const rows = rounds.map((c) => c.results.find((r) => r.workload === workload && r.allocator === allocator && !r.failure));
  if (rows.some((r) => r === undefined)) return undefined;
  return { ...rows[0]!, nsPerOp: Math.min(...rows.map((r) => r!.nsPerOp ?? Infinity)) };
};

console.log(`replay of the shipped traces: ns/op (the fastest of ${ROUNDS} medians of ${repeat} runs) and fragmentation (peak footprint / peak live bytes)\n`);
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
