// The workload names and seeds a new user gave (issue 8): seed 0, lists with trace paths
// holding commas, names given twice, and what the importer mended shown beside the table.

import { describe, expect, it } from 'vitest';

import { planComparison, type Comparison } from '../../src/tools/compare/compare.js';
import { UsageError } from '../../src/tools/compare/errors.js';
import { formatSummary, importNote, renderReport } from '../../src/tools/compare/report.js';
import { parseWorkloadList, resolveWorkload, SYNTHETIC_WORKLOADS, type Workload } from '../../src/tools/compare/workloads.js';

async function collect(workload: Workload): Promise<number[]> {
  const all: number[] = [];
  for await (const chunk of workload.chunks()) all.push(...chunk);
  return all;
}

describe('seeds', () => {
  it('seed 0 is a seed of its own, not seed 1 again (xorshift32 used to map 0 to 1)', async () => {
    for (const name of SYNTHETIC_WORKLOADS) {
      const zero = await collect(resolveWorkload(name, { scale: 0.01, seed: 0 }));
      const one = await collect(resolveWorkload(name, { scale: 0.01, seed: 1 }));
      expect(zero, name).not.toEqual(one);
      expect(await collect(resolveWorkload(name, { scale: 0.01, seed: 0 })), name).toEqual(zero);
    }
  });

  it('the largest seed differs from its neighbour and from seed 0', async () => {
    const top = await collect(resolveWorkload('uniform', { scale: 0.01, seed: 2 ** 32 - 1 }));
    expect(top).not.toEqual(await collect(resolveWorkload('uniform', { scale: 0.01, seed: 2 ** 32 - 2 })));
    expect(top).not.toEqual(await collect(resolveWorkload('uniform', { scale: 0.01, seed: 0 })));
    expect(() => resolveWorkload('uniform', { seed: 2 ** 32 })).toThrow(RangeError);
  });
});

describe('parseWorkloadList', () => {
  it.each([
    ['ramp,peak', ['ramp', 'peak']],
    [' ramp , peak ', ['ramp', 'peak']],
    ['trace:a,b.trace', ['trace:a,b.trace']],
    ['trace:a,b.trace,ramp', ['trace:a,b.trace', 'ramp']],
    ['ramp,trace:x,y,z.gz,trace:w.trace,plateau', ['ramp', 'trace:x,y,z.gz', 'trace:w.trace', 'plateau']],
    ['trace:dir with space/a, b.trace', ['trace:dir with space/a, b.trace']],
    ['trace:a,,b', ['trace:a,,b']],
    ['ramp,,peak', ['ramp', 'peak']],
    ['spike,ramp', ['spike', 'ramp']], // an unknown name stays an entry, to be refused by name
  ])('%j -> %j', (list, expected) => {
    expect(parseWorkloadList(list)).toEqual(expected);
  });
});

describe('planComparison', () => {
  it('refuses a workload or an allocator named twice, naming it', () => {
    expect(() => planComparison({ workloads: ['ramp', 'peak', 'ramp'] })).toThrow(UsageError);
    expect(() => planComparison({ workloads: ['ramp', 'peak', 'ramp'] })).toThrow('workload "ramp" is given twice: name each workload once');
    expect(() => planComparison({ workloads: ['ramp'], allocators: ['tlsf', 'bump', 'tlsf'] })).toThrow('allocator "tlsf" is given twice');
    // The comma stays in the path, and a missing trace is found before anything runs.
    expect(() => planComparison({ workloads: ['ramp', 'trace:a,b.trace'] })).toThrow('trace file not found: a,b.trace');
  });
});

describe('import notes', () => {
  const comparison: Comparison = {
    settings: { workloads: [], allocators: [], seed: 0, scale: 1, repeat: 1, native: false },
    workloads: [
      { name: 'ramp', description: 'a ramp', ops: 10, appendedFrees: 0 },
      { name: 'trace:clean.trace', description: 'the trace clean.trace', ops: 4, appendedFrees: 0, skippedFrees: 0, impliedFrees: 0 },
      { name: 'trace:old.mtrace', description: 'the trace old.mtrace', ops: 6, appendedFrees: 0, skippedFrees: 3, impliedFrees: 1 },
      { name: 'trace:half.mtrace', description: 'the trace half.mtrace', ops: 6, appendedFrees: 0, skippedFrees: 2, impliedFrees: 0 },
    ],
    results: [],
    native: [],
    skipped: [],
  };

  it('are printed under the table for each trace the importer mended, and only those', () => {
    const lines = formatSummary(comparison).split('\n');
    // The notes, not the matrices' rows (which start with the workload's label too).
    expect(lines.filter((line) => line.startsWith('trace:') && line.includes(': '))).toEqual([
      'trace:old.mtrace: 3 frees of blocks allocated before tracing began skipped, 1 untraced free implied (an address allocated again while live)',
      'trace:half.mtrace: 2 frees of blocks allocated before tracing began skipped',
    ]);
    expect(importNote(comparison.workloads[0]!)).toBeUndefined();
    expect(importNote(comparison.workloads[1]!)).toBeUndefined();
  });

  it('are on the report page beside the workload', () => {
    const page = renderReport(comparison);
    expect(page).toContain('the trace old.mtrace; 6 ops, then 0 frees appended for the blocks still live. The importer mended the trace: 3 frees of blocks allocated before tracing began skipped, 1 untraced free implied (an address allocated again while live).');
    expect(page).toContain('the trace clean.trace; 4 ops, then 0 frees appended for the blocks still live.</p>');
  });
});
