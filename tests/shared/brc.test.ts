// Biased reference counting under random traffic (tests/shared/brc-stress.mjs): every run a fresh
// process, workers released together, shared counts driven through 0 and below so that decrefs
// are queued, merged at safe points and at detach, and owners detach while others still hold
// their objects; each object in a cycle that only a collection frees, and in some runs the
// creator collecting all along. Each run must end with every count exact, no object collected
// while referenced, each freed once its last outside reference is gone and its cycle collected,
// and no block left over. A run in which no object was ever queued and merged proves nothing
// about the slow path, and one in which no collection overlapped the traffic nothing about the
// collector: both fail.
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const STRESS = fileURLToPath(new URL('./brc-stress.mjs', import.meta.url));

interface Run {
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

function stress(workers: number, ops: number, build: 'release' | 'debug', collect: boolean, seed: number, baselineOnly: boolean): Run {
  // --liftoff --no-wasm-tier-up keeps the core in V8's baseline compiler for the whole run.
  const flags = baselineOnly ? ['--liftoff', '--no-wasm-tier-up'] : [];
  const out = execFileSync(process.execPath, [...flags, STRESS, String(workers), String(ops), build, String(seed), collect ? '1' : '0'], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!) as Run;
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
      const results: Run[] = [];
      for (let run = 0; run < runs; run++) results.push(stress(workers, ops, build, collect, run + 1, run % 2 === 1));
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
