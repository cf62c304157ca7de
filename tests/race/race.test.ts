// `pymalloc race`: the JSON it prints (exact keys), the GIL and the free-threaded heap keeping
// every run exact, and the race showing without a lock. How many updates a run under 'none' loses depends on how often the two
// workers really ran at the same moment (on this shared 2-core machine, some runs lose none), so
// the tests under 'none' run until the race shows, within a bound, and never assume a count.

import { beforeAll, describe, expect, it } from 'vitest';

import { INVARIANTS } from '../../src/heap/errors.js';
import { formatRace, race, raceOnce, type RaceFailure, type RaceResult } from '../../src/tools/race/race.js';
import { pymalloc, type Run } from './helpers.js';

const ROW_KEYS = ['mode', 'test', 'workers', 'opsPerWorker', 'runs', 'expected', 'observed', 'lostUpdates', 'duplicateBlocks', 'checkPassed', 'nsPerOp'];
const PRICE_KEYS = ['mode', 'workers', 'opsPerWorker', 'runs', 'nsPerOp', 'opsPerSecond'];
const FAILURE_KEYS = ['mode', 'test', 'run', 'where', 'name', 'invariant', 'message'];

const WORKERS = 2;
const OPS = 20_000;
const RUNS = 2;

describe('pymalloc race --json', () => {
  let run: Run;
  let document: { results: RaceResult[]; price: Record<string, unknown>[]; failures: RaceFailure[] };

  beforeAll(async () => {
    run = await pymalloc('race', '--workers', String(WORKERS), '--ops', String(OPS), '--runs', String(RUNS), '--json');
    document = JSON.parse(run.stdout);
  });

  it('exits 0 and prints only the document', () => {
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(Object.keys(document)).toEqual(['results', 'price', 'failures']);
  });

  it('has one row per mode, test and run, each with exactly the documented keys', () => {
    for (const row of document.results) expect(Object.keys(row)).toEqual(ROW_KEYS);
    const order = document.results.map((r) => `${r.test}/${r.mode}/${r.runs}`);
    expect(order).toEqual(['refcount', 'alloc'].flatMap((test) => ['gil', 'free-threaded', 'none'].flatMap((mode) => [1, 2].map((n) => `${test}/${mode}/${n}`))));
    for (const row of document.results) {
      expect(row.workers).toBe(WORKERS);
      expect(row.opsPerWorker).toBe(OPS);
      expect(row.nsPerOp).toBeGreaterThan(0);
      if (row.test === 'refcount') {
        // The owner's reference and every incref.
        expect(row.expected).toBe(1 + WORKERS * OPS);
        expect(row.duplicateBlocks).toBe(0);
      }
    }
    for (const failure of document.failures) expect(Object.keys(failure)).toEqual(FAILURE_KEYS);
  });

  it("prices the locks: an unshared heap, a shared one without a lock, then 'gil' and 'free-threaded' with 1 to N workers", () => {
    for (const row of document.price) expect(Object.keys(row)).toEqual(PRICE_KEYS);
    expect(document.price.map((p) => `${p.mode}x${p.workers}`)).toEqual(['unsharedx1', 'nonex1', 'gilx1', 'gilx2', 'free-threadedx1', 'free-threadedx2']);
    for (const p of document.price) {
      expect(p.opsPerWorker).toBe(OPS);
      expect(p.runs).toBe(RUNS);
      expect(p.opsPerSecond as number).toBeCloseTo(1e9 / (p.nsPerOp as number), 6);
    }
  });

  it.each(['gil', 'free-threaded'])("under '%s' every run is exact: no lost update, no block handed out twice, check() passes", (mode) => {
    const exact = document.results.filter((r) => r.mode === mode);
    expect(exact).toHaveLength(2 * RUNS);
    for (const row of exact) {
      expect(row).toMatchObject({ lostUpdates: 0, duplicateBlocks: 0, checkPassed: true });
      expect(row.observed).toBe(row.expected);
    }
    // Every alloc worker holds its whole window at the end, and the heap counts exactly those blocks.
    for (const row of exact.filter((r) => r.test === 'alloc')) expect(row.observed).toBe(WORKERS * 256);
    expect(document.failures.filter((f) => f.mode === mode)).toEqual([]);
  });

  it('prints a table naming every run', async () => {
    const table = await pymalloc('race', '--workers', '1', '--ops', '1000', '--runs', '1', '--no-price');
    expect(table.code).toBe(0);
    const lines = table.stdout.split('\n');
    expect(lines[2]).toMatch(/^test +mode +run +expected +observed +lost updates +duplicate blocks +check +ns\/op$/);
    expect(lines.filter((line) => /^(refcount|alloc) +(gil|free-threaded|none) +1 /.test(line))).toHaveLength(6);
    expect(table.stdout).not.toContain('The price of the GIL');
  });

  it('refuses bad numbers with exit code 2, naming the option', async () => {
    const workers = await pymalloc('race', '--workers', '0');
    expect(workers.code).toBe(2);
    expect(workers.stderr).toContain("option '--workers <n>' argument '0' is invalid. expected an integer from 1 to 64");
    const ops = await pymalloc('race', '--ops', '1.5');
    expect(ops.code).toBe(2);
    expect(ops.stderr).toContain("option '--ops <n>' argument '1.5' is invalid");
  });
});

describe("under concurrency 'none'", () => {
  /** Runs raceOnce until `found` holds for a run, at most `bound` runs; the results seen. */
  async function until(test: 'refcount' | 'alloc', ops: number, bound: number, found: (r: RaceResult) => boolean) {
    const seen: { result: RaceResult; failures: RaceFailure[] }[] = [];
    for (let run = 1; run <= bound && !seen.some((s) => found(s.result)); run++) seen.push(await raceOnce('none', test, run, { workers: 2, ops }));
    return seen;
  }

  it('loses increfs: over enough runs at least one update is lost, and never one too many', async () => {
    const seen = await until('refcount', 1_000_000, 30, (r) => (r.lostUpdates ?? 0) > 0);
    expect(seen.some((s) => (s.result.lostUpdates ?? 0) > 0)).toBe(true);
    for (const { result, failures } of seen) {
      // Increfs only: a lost update can only make the count lower, never higher.
      expect(result.observed!).toBeLessThanOrEqual(result.expected);
      expect(result.lostUpdates).toBe(result.expected - result.observed!);
      expect(failures).toEqual([]);
    }
  });

  it('breaks the heap, and check() names the broken invariant; the run still ends with a row', async () => {
    const seen = await until('alloc', 500_000, 30, (r) => !r.checkPassed);
    const broken = seen.find((s) => !s.result.checkPassed);
    expect(broken).toBeDefined();
    const check = broken!.failures.find((f) => f.where === 'check')!;
    expect(check.name).toBe('HeapCorruptionError');
    expect(INVARIANTS).toContain(check.invariant);
    // The table says which invariant broke.
    const table = formatRace({ settings: { workers: 2, ops: 500_000, runs: 1, seed: 1 }, results: [broken!.result], price: [], failures: broken!.failures });
    const named = table.split('\n').find((line) => line.includes(`, HeapCorruptionError (invariant: ${check.invariant}): met by `));
    expect(named).toMatch(/^  alloc none run \d+, .*: met by (.+, )?check$/);
    expect(table).toMatch(/alloc +none +\d+ .* FAILED /);
    // A worker stops at its first error and says what it was.
    for (const f of broken!.failures.filter((x) => x.where.startsWith('worker'))) {
      expect(f.message.length).toBeGreaterThan(0);
      if (f.name === 'HeapCorruptionError') expect(INVARIANTS).toContain(f.invariant);
    }
  });
});

describe("under concurrency 'free-threaded'", () => {
  // 4 workers on 2 cores: the atomic increfs of the non-owners really contend, and the mutex is
  // handed between more workers than can run at once.
  it('counts every incref of 4 workers at once: the atomic adds to the shared count lose none', async () => {
    const { result, failures } = await raceOnce('free-threaded', 'refcount', 1, { workers: 4, ops: 250_000 });
    expect(result).toMatchObject({ expected: 1 + 4 * 250_000, observed: 1 + 4 * 250_000, lostUpdates: 0, checkPassed: true });
    expect(failures).toEqual([]);
  });

  it('keeps the per-thread pools exact without a lock: every block counted once, none handed out twice, check() clean', async () => {
    const { result, failures } = await raceOnce('free-threaded', 'alloc', 1, { workers: 4, ops: 100_000 });
    expect(result).toMatchObject({ expected: 4 * 256, observed: 4 * 256, lostUpdates: 0, duplicateBlocks: 0, checkPassed: true });
    expect(failures).toEqual([]);
  });
});

describe('pymalloc race on a heap it breaks', () => {
  it("exits 0, and every check that failed names its invariant", async () => {
    const run = await pymalloc('race', '--workers', '2', '--ops', '500000', '--runs', '4', '--no-price', '--json');
    expect(run.code).toBe(0);
    const { results, failures } = JSON.parse(run.stdout) as { results: RaceResult[]; failures: RaceFailure[] };
    for (const row of results.filter((r) => !r.checkPassed)) {
      expect(row.mode).toBe('none');
      const check = failures.find((f) => f.mode === row.mode && f.test === row.test && f.run === row.runs && f.where === 'check');
      expect(check).toBeDefined();
      if (check!.name === 'HeapCorruptionError') expect(INVARIANTS).toContain(check!.invariant);
    }
    for (const f of failures) {
      expect(f.mode).toBe('none');
      if (f.name === 'HeapCorruptionError') expect(INVARIANTS).toContain(f.invariant);
    }
  });
});

describe('race() options', () => {
  it('refuses bad options with a TypeError or RangeError naming the option', async () => {
    await expect(race({ workers: 0 })).rejects.toThrow(new RangeError('options.workers must be from 1 to 64, not 0'));
    await expect(race({ ops: 2.5 })).rejects.toThrow(new TypeError('options.ops must be an integer'));
    await expect(race({ runs: 101 })).rejects.toThrow(new RangeError('options.runs must be from 1 to 100, not 101'));
    await expect(race({ price: 'yes' as unknown as boolean })).rejects.toThrow(new TypeError('options.price must be a boolean'));
    await expect(raceOnce('both' as 'gil', 'refcount', 1)).rejects.toThrow(new RangeError("mode must be 'gil', 'free-threaded' or 'none', not both"));
    // The free-threaded shared count holds count << 2 in an i32: 2^29 - 1 increfs at most.
    await expect(race({ workers: 64, ops: 10_000_000 })).rejects.toThrow(
      new RangeError('options.workers x options.ops must be at most 536870911 (the increfs one object can count), not 640000000'),
    );
  });
});
