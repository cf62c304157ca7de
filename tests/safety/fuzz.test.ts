// Random mixes of malloc/free/realloc and object calls with stale, foreign and random
// addresses (fuzz.worker.ts), in a worker thread under a watchdog: a hang fails the test
// with the step it hung at instead of hanging vitest. The seed is fixed, so a failure is
// reproducible; FUZZ_SEED=<n> tries another.
import { Worker } from 'node:worker_threads';
import { describe, it, expect } from 'vitest';
import type { FuzzRequest, FuzzResult } from './fuzz.worker.js';

const WORKER = new URL('./fuzz.bootstrap.mjs', import.meta.url);
const SEED = Number(process.env.FUZZ_SEED ?? 20260808);
const RUNS = 40;
const STEPS = 200;

type Verdict = FuzzResult | { ok: false; hang: true; step: number; run: number } | { ok: false; crash: string };

/** Runs the worker; after `timeoutMs` without an answer it is terminated and called hung. */
function watch(request: Omit<FuzzRequest, 'progress'>, timeoutMs: number): Promise<Verdict> {
  const progress = new SharedArrayBuffer(8);
  const worker = new Worker(WORKER, { workerData: { ...request, progress } });
  return new Promise((resolve) => {
    const watchdog = setTimeout(() => {
      const [step, run] = new Int32Array(progress);
      void worker.terminate();
      resolve({ ok: false, hang: true, step, run });
    }, timeoutMs);
    worker.once('message', (result: FuzzResult) => {
      clearTimeout(watchdog);
      void worker.terminate();
      resolve(result);
    });
    worker.once('error', (error) => {
      clearTimeout(watchdog);
      resolve({ ok: false, crash: error.stack ?? String(error) });
    });
  });
}

describe('the fuzzer', () => {
  for (const build of ['release', 'debug'] as const) {
    it(`runs ${RUNS} random programs of ${STEPS} steps (${build} build): no hang, no trap, only typed errors`, async () => {
      const verdict = await watch({ mode: 'fuzz', build, seed: SEED, runs: RUNS, steps: STEPS }, 90_000);
      expect(verdict).toMatchObject({ ok: true });
      expect((verdict as { steps: number }).steps).toBe(RUNS * STEPS);
    });
  }

  it('has a watchdog that fails a worker that never answers', async () => {
    const verdict = await watch({ mode: 'spin', build: 'release', seed: 0, runs: 0, steps: 0 }, 1_000);
    expect(verdict).toEqual({ ok: false, hang: true, step: 1, run: 0 });
  });
});
