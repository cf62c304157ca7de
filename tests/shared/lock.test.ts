// The proof the GIL stands on (REFERENCE.md section 12): every run a fresh process (so the core
// and the lock run cold, in the baseline tiers where a lost register would show), all workers
// released at once from a start barrier, one of them sleeping while it holds the GIL so that the
// others queue up and sleep, and a count of those sleeps: a run in which nobody slept proves
// nothing about the sleeping path and fails.
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const STRESS = fileURLToPath(new URL('./stress.mjs', import.meta.url));
const RUNS = 20;
const OPS = 1_000_000;

interface Run {
  refcount: number;
  expected: number;
  overlapped: number;
  sleeps: number;
  contended: number;
  acquisitions: number;
}

function stress(workers: number, batch: number, concurrency: 'gil' | 'free-threaded' | 'none', baselineOnly: boolean, ops = OPS): Run {
  // --liftoff --no-wasm-tier-up keeps the core in V8's baseline compiler for the whole run.
  const flags = baselineOnly ? ['--liftoff', '--no-wasm-tier-up'] : [];
  const out = execFileSync(process.execPath, [...flags, STRESS, String(workers), String(ops), String(batch), concurrency], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!) as Run;
}

describe('the GIL', () => {
  for (const workers of [2, 4, 8]) {
    for (const batch of [0, 100]) {
      const how = batch ? `in gil.run batches of ${batch}` : 'one call each';
      it(`keeps ${workers} workers x ${OPS} increfs (${how}) exact in each of ${RUNS} fresh processes`, () => {
        const runs: Run[] = [];
        for (let run = 0; run < RUNS; run++) runs.push(stress(workers, batch, 'gil', run % 2 === 1));
        for (const r of runs) {
          expect(r.refcount).toBe(r.expected);
          expect(r.sleeps).toBeGreaterThan(0);
        }
        // The loops ran at the same time: every worker but the last found another still running.
        expect(runs.filter((r) => r.overlapped === workers - 1).length).toBeGreaterThan(RUNS / 2);
      }, 600_000);
    }
  }

  it('without it (concurrency none), loses updates', () => {
    // How many is the machine's business (how often two workers really run at once); that some
    // are lost over enough runs is the point. Stops at the first run that loses one.
    let lost = 0;
    for (let run = 0; run < 40 && lost === 0; run++) {
      const r = stress(2, 0, 'none', false, 4 * OPS);
      expect(r.refcount).toBeLessThanOrEqual(r.expected);
      lost = r.expected - r.refcount;
    }
    expect(lost).toBeGreaterThan(0);
  }, 600_000);
});

describe('the free-threaded heap', () => {
  it(`keeps 8 workers x ${OPS} increfs exact with no lock (atomic adds on ob_ref_shared), in each of 10 fresh processes`, () => {
    const runs: Run[] = [];
    for (let run = 0; run < 10; run++) runs.push(stress(8, 0, 'free-threaded', run % 2 === 1));
    for (const r of runs) {
      expect(r.refcount).toBe(r.expected);
      // Increfs take no lock: the heap mutex is taken only to attach, detach and for worker 0's holds.
      expect(r.acquisitions).toBeLessThan(100);
    }
    expect(runs.filter((r) => r.overlapped === 7).length).toBeGreaterThan(5);
  }, 600_000);
});
