// The proof the GIL stands on (REFERENCE.md section 12): every run a fresh process (so the core
// and the lock run cold, in the baseline tiers where a lost register would show), all workers
// released at once from a start barrier, one of them sleeping while it holds the GIL so that the
// others queue up and sleep, and a count of those sleeps: a run in which nobody slept proves
// nothing about the sleeping path and fails.
//
// The free-threaded heap's stress runs here too, in one file so that no two stress tests compete
// for the machine's two cores at once (vitest runs files in parallel). Biased reference counting
// under random traffic (tests/shared/brc-stress.mjs): shared counts driven through 0 and below so
// that decrefs are queued, merged at safe points and at detach, and owners detach while others
// still hold their objects; each object in a cycle that only a collection frees, and in some runs
// the creator collecting all along. Each run must end with every count exact, no object collected
// while referenced, each freed once its last outside reference is gone and its cycle collected,
// and no block left over. A run in which no object was ever queued and merged proves nothing
// about the slow path, and one in which no collection overlapped the traffic nothing about the
// collector: both fail.
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

/** Runs a stress script in a fresh process: the JSON of its last line of output. */
function fresh<T>(script: string, args: (string | number)[], baselineOnly: boolean): T {
  // --liftoff --no-wasm-tier-up keeps the core in V8's baseline compiler for the whole run.
  const flags = baselineOnly ? ['--liftoff', '--no-wasm-tier-up'] : [];
  const out = execFileSync(process.execPath, [...flags, script, ...args.map(String)], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!) as T;
}

function stress(workers: number, batch: number, concurrency: 'gil' | 'free-threaded' | 'none', baselineOnly: boolean, ops = OPS): Run {
  return fresh<Run>(STRESS, [workers, ops, batch, concurrency], baselineOnly);
}

describe('the GIL', () => {
  for (const workers of [2, 4, 8]) {
    for (const batch of [0, 100]) {
      const how = batch ? `in gil.run batches of ${batch}` : 'one call each';
      it(`keeps ${workers} workers x ${OPS} increfs (${how}) exact in each of ${RUNS} fresh processes`, () => {
        const runs: Run[] = [];
        for (let run = 0; run < RUNS; run++) runs.push(stress(workers, batch, 'gil', run % 2 === 1));
        for (const r of runs) expect(r.refcount).toBe(r.expected);
        // The loops ran at the same time: every worker but the last found another still running;
        // and worker 0's holds made the others sleep. Both in most runs, not all: on a loaded
        // machine a run can go on one core, a worker starting after another's holds are over.
        expect(runs.filter((r) => r.overlapped === workers - 1).length).toBeGreaterThan(RUNS / 2);
        expect(runs.filter((r) => r.sleeps > 0).length).toBeGreaterThan(RUNS / 2);
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

const BRC_STRESS = fileURLToPath(new URL('./brc-stress.mjs', import.meta.url));

interface BrcRun {
  objects: number;
  mismatches: number;
  merged: number;
  freedEarly: number;
  survived: number;
  cycles: number;
  collections: number;
  collected: number;
  leakedBlocks: number;
  overlapped: number;
  steps: number;
}

function brcStress(workers: number, ops: number, build: 'release' | 'debug', collect: boolean, seed: number, baselineOnly: boolean): BrcRun {
  return fresh<BrcRun>(BRC_STRESS, [workers, ops, build, seed, collect ? 1 : 0], baselineOnly);
}

describe('biased reference counting across workers', () => {
  const cases = [
    { workers: 2, ops: 200_000, build: 'release', collect: false, runs: 6 },
    { workers: 4, ops: 200_000, build: 'release', collect: false, runs: 16 },
    { workers: 4, ops: 200_000, build: 'release', collect: true, runs: 8 },
    { workers: 4, ops: 50_000, build: 'debug', collect: true, runs: 4 },
  ] as const;
  for (const { workers, ops, build, collect, runs } of cases) {
    const collecting = collect ? ', gc.collect() all along' : '';
    it(`keeps every count exact and frees each object once: ${workers} workers x ${ops} random increfs and decrefs (${build} build${collecting}), ${runs} fresh processes`, () => {
      const results: BrcRun[] = [];
      for (let run = 0; run < runs; run++) results.push(brcStress(workers, ops, build, collect, run + 1, run % 2 === 1));
      for (const r of results) {
        expect(r.steps).toBe(workers * ops);
        expect(r.mismatches).toBe(0);
        expect(r.freedEarly).toBe(0);
        expect(r.survived).toBe(0);
        expect(r.leakedBlocks).toBe(0);
        expect(r.merged).toBeGreaterThan(0);
        expect(r.collected).toBe(0);
        expect(r.cycles).toBe(2 * r.objects);
        if (collect) expect(r.collections).toBeGreaterThan(0);
      }
      // The loops ran at the same time: in most runs every worker but the last found another still running.
      expect(results.filter((r) => r.overlapped === workers - 1).length).toBeGreaterThan(runs / 2);
    }, 600_000);
  }
});
