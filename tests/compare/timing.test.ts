// The timed runs: how many, their spread, the time in memory.grow kept apart, the progress they
// report. No timed assertion: only how the figures relate to each other.

import { describe, expect, it } from 'vitest';

import { builtAllocators } from '../../src/tools/compare/allocators.js';
import { replay } from '../../src/tools/compare/replay.js';
import { resolveWorkload } from '../../src/tools/compare/workloads.js';

const built = builtAllocators();

describe('the timed runs', () => {
  it('give a median inside the spread of exactly `repeat` runs, with memory.grow timed apart', async () => {
    const workload = resolveWorkload('ramp', { scale: 0.05 });
    for (const allocator of built) {
      const result = await replay(allocator, workload, { repeat: 3 });
      expect(result.timedRuns, allocator).toBe(3);
      expect(result.nsPerOpMin!, allocator).toBeGreaterThan(0);
      expect(result.nsPerOpMin!, allocator).toBeLessThanOrEqual(result.nsPerOp!);
      expect(result.nsPerOp!, allocator).toBeLessThanOrEqual(result.nsPerOpMax!);
      // Time in the ops that grew memory is part of each run's time.
      expect(result.growNsPerOp!, allocator).toBeLessThanOrEqual(result.nsPerOpMax!);
      expect(result.growNsPerOp! > 0, allocator).toBe(result.grows.timing! > 0);
      // Every allocator here is deterministic: the timed runs grew where the warm-up did.
      expect(result.growNsIsLowerBound, allocator).toBeUndefined();
      expect(result.grows.footprint, allocator).toBeGreaterThan(0);
    }
  }, 60_000);

  it('report progress over the footprint pass, the warm-up and every timed run', async () => {
    const workload = resolveWorkload('lifo', { scale: 0.01 });
    const seen: [number, number][] = [];
    const result = await replay('bump', workload, { repeat: 2, onProgress: (done, total) => seen.push([done, total]) });
    const total = 4 * result.ops;
    expect(seen.every(([, t]) => t === total)).toBe(true);
    expect(seen.at(-1)).toEqual([total, total]);
    expect(seen.every(([done], i) => i === 0 || done >= seen[i - 1][0])).toBe(true);
  });

  it('are skipped with timing off, and refuse a repeat that is not a positive integer', async () => {
    const workload = resolveWorkload('lifo', { scale: 0.01 });
    const result = await replay('bump', workload, { timing: false });
    expect([result.nsPerOp, result.nsPerOpMin, result.nsPerOpMax, result.growNsPerOp, result.grows.timing]).toEqual([null, null, null, null, null]);
    await expect(replay('bump', workload, { repeat: 0 })).rejects.toThrow(/options.repeat must be a positive integer, got 0/);
  });
});
