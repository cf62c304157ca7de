// `pymalloc threads`: the JSON it prints (exact keys and order), the counts the workloads fix
// (the pairs the workers did, the shared object's refcount after the traffic, what each
// collection found, the blocks the footprint holds), the table, and the option errors. Small
// iterations keep it quick; no timing is asserted, only that each rate is a positive number.

import { beforeAll, describe, expect, it } from 'vitest';

import { Heap } from '../../src/index.js';
import {
  blocksInUse, footprintOf, formatThreads, threads, type ThreadsReport,
} from '../../src/tools/threads/threads.js';
import { TRAFFIC_BATCH, WINDOW } from '../../src/tools/threads/protocol.js';
import { pymalloc, type Run } from '../race/helpers.js';

const WORKERS = 2;
const ITERATIONS = 3000;
const RUNS = 2;
const OBJECTS = 500;
const MODES = ['gil', 'free-threaded'];

const KEYS = {
  report: ['machine', 'settings', 'alloc', 'refcount', 'collection', 'footprint'],
  machine: ['cores', 'loadAverage', 'node'],
  settings: ['workers', 'iterations', 'runs', 'objects', 'window'],
  alloc: ['mode', 'workers', 'opsPerWorker', 'ops', 'runs', 'opsPerSecond', 'vsOneWorker', 'overlap'],
  refcount: ['mode', 'case', 'workers', 'opsPerWorker', 'ops', 'runs', 'opsPerSecond', 'overlap', 'refcountBefore', 'refcountAfter'],
  collection: ['mode', 'traffic', 'otherWorkers', 'objects', 'liveObjects', 'collected', 'runs', 'pauseMs', 'pauseSource', 'callMs', 'trafficOps'],
  footprint: ['mode', 'workers', 'blocksInUse', 'poolsInUse', 'arenas', 'committedBytes', 'threadPools', 'sharedPools'],
};

describe('pymalloc threads --json', () => {
  let run: Run;
  let report: ThreadsReport;

  beforeAll(async () => {
    run = await pymalloc('threads', '--workers', String(WORKERS), '--iterations', String(ITERATIONS), '--runs', String(RUNS), '--objects', String(OBJECTS), '--json');
    report = JSON.parse(run.stdout);
  });

  it('exits 0 and prints only the document, with exactly the documented keys', () => {
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(Object.keys(report)).toEqual(KEYS.report);
    expect(Object.keys(report.machine)).toEqual(KEYS.machine);
    expect(report.machine.node).toBe(process.version);
    expect(Number.isInteger(report.machine.cores) && report.machine.cores >= 1).toBe(true);
    expect(report.settings).toEqual({ workers: WORKERS, iterations: ITERATIONS, runs: RUNS, objects: OBJECTS, window: WINDOW });
    for (const section of ['alloc', 'refcount', 'collection', 'footprint'] as const) {
      for (const row of report[section]) expect(Object.keys(row)).toEqual(KEYS[section]);
    }
  });

  it('allocation: 1 to N workers per mode, each run exactly workers x iterations pairs', () => {
    expect(report.alloc.map((r) => `${r.mode}x${r.workers}`)).toEqual(MODES.flatMap((m) => [`${m}x1`, `${m}x2`]));
    for (const row of report.alloc) {
      expect(row).toMatchObject({ opsPerWorker: ITERATIONS, ops: row.workers * ITERATIONS, runs: RUNS });
      expect(row.opsPerSecond).toBeGreaterThan(0);
      const one = report.alloc.find((r) => r.mode === row.mode && r.workers === 1)!;
      expect(row.vsOneWorker).toBeCloseTo(row.opsPerSecond / one.opsPerSecond, 9);
      // One loop spans itself; N loops are at most N at once (below 1 when one started after another ended).
      if (row.workers === 1) expect(row.overlap).toBe(1);
      else expect(row.overlap).toBeLessThanOrEqual(row.workers + 1e-9);
      expect(row.overlap).toBeGreaterThan(0);
    }
  });

  it('refcount: owner, non-owner and mixed per mode, every pair counted and the object left at its count', () => {
    expect(report.refcount.map((r) => `${r.mode}/${r.case}/${r.workers}`)).toEqual(
      MODES.flatMap((m) => [`${m}/owner/1`, `${m}/non-owner/1`, `${m}/mixed/${WORKERS}`]),
    );
    for (const row of report.refcount) {
      expect(row).toMatchObject({ opsPerWorker: ITERATIONS, ops: row.workers * ITERATIONS, runs: RUNS });
      // One reference, its maker's; every incref undone by its decref, none lost on either path.
      expect(row.refcountBefore).toBe(1);
      expect(row.refcountAfter).toBe(1);
      expect(row.opsPerSecond).toBeGreaterThan(0);
    }
  });

  it('collection: every run finds exactly the garbage ring, beside idle workers, refcount traffic and alloc traffic', () => {
    expect(report.collection.map((r) => `${r.mode}/${r.traffic}/${r.otherWorkers}`)).toEqual(
      MODES.flatMap((m) => [`${m}/idle/0`, `${m}/refcount/1`, `${m}/alloc/1`]),
    );
    for (const row of report.collection) {
      expect(row).toMatchObject({ objects: OBJECTS, liveObjects: OBJECTS, collected: OBJECTS, runs: RUNS });
      expect(row.callMs).toBeGreaterThan(0);
      if (row.pauseSource === 'call') expect(row.pauseMs).toBe(row.callMs);
      else expect(row.pauseSource).toBe('gc.getStats');
      // The collection starts only once every traffic worker has run a whole batch.
      if (row.traffic === 'idle') expect(row.trafficOps).toBe(0);
      else expect(row.trafficOps).toBeGreaterThanOrEqual(TRAFFIC_BATCH);
    }
  });

  it('footprint: after the alloc workload every worker holds its window, and the heap counts exactly those blocks', () => {
    expect(report.footprint.map((r) => r.mode)).toEqual(MODES);
    for (const row of report.footprint) {
      expect(row.workers).toBe(WORKERS);
      expect(row.blocksInUse).toBe(WORKERS * WINDOW);
      expect(row.arenas).toBeGreaterThanOrEqual(1);
      // The default preset: 16 KiB pools in 1 MiB arenas, memory in 64 KiB pages.
      expect(row.poolsInUse).toBeGreaterThanOrEqual(1);
      expect(row.poolsInUse).toBeLessThanOrEqual(row.arenas * 64);
      expect(row.committedBytes % 65536).toBe(0);
      expect(row.committedBytes).toBeGreaterThanOrEqual(row.arenas * 2 ** 20);
      // Where the heap keeps per-thread pools, every used pool is a thread's or no thread's.
      if (row.threadPools !== null) expect(row.threadPools + row.sharedPools!).toBe(row.poolsInUse);
      else expect(row.sharedPools).toBeNull();
    }
  });

  it('prints the tables from the same document: the core count, both modes, n/a for what the heap does not count', () => {
    const text = formatThreads(report);
    const lines = text.split('\n');
    expect(lines[1]).toMatch(new RegExp(`^this machine: ${report.machine.cores} cores \\(load average [\\d.]+\\), Node ${process.version}; 3,000 pairs per worker and run, medians of 2 runs$`));
    expect(text).toMatch(/^workers +gil +vs 1 worker +free-threaded +vs 1 worker +ft \/ gil +at once \(gil, ft\)$/m);
    expect(text).toMatch(/^ +1 +[\d.]+ +1\.00x +[\d.]+ +1\.00x +[\d.]+x +1\.00, 1\.00$/m);
    expect(text).toMatch(/^mixed: the owner and 1 non-owner +2 +[\d.]+ +[\d.]+ +[\d.]+x +[\d.]+, [\d.]+ +yes$/m);
    expect(text).toMatch(/^run the alloc loop +2 +[\d.]+ +[\d.]+ +[\d.]+x +[\d.]+, [\d.]+ +500$/m);
    expect(text).toMatch(/^blocks in use +512 +512 +\+0$/m);
    const pools = lines.find((line) => line.startsWith('pools owned by threads '))!;
    if (report.footprint.every((r) => r.threadPools === null)) expect(pools).toMatch(/ n\/a +n\/a +-$/);
    // More workers than cores is said, since it measures contention.
    expect(text).not.toContain('more workers than cores');
    expect(formatThreads({ ...report, machine: { ...report.machine, cores: 1 } })).toContain('more workers than cores: the figures with more than 1 workers measure contention');
  });
});

describe('pymalloc threads with one worker', () => {
  it('runs the owner alone for mixed, and collects beside no traffic', async () => {
    const report = await threads({ workers: 1, iterations: 1000, runs: 1, objects: 100 });
    expect(report.alloc.map((r) => r.ops)).toEqual([1000, 1000]);
    expect(report.refcount.map((r) => `${r.case}/${r.workers}`)).toEqual(['owner/1', 'non-owner/1', 'mixed/1', 'owner/1', 'non-owner/1', 'mixed/1']);
    expect(report.collection.map((r) => `${r.mode}/${r.traffic}/${r.collected}`)).toEqual(['gil/idle/100', 'free-threaded/idle/100']);
    expect(report.footprint.map((r) => r.blocksInUse)).toEqual([WINDOW, WINDOW]);
    const text = formatThreads(report);
    expect(text).toContain('mixed (1 worker: the owner only)');
    expect(text).not.toContain('run refcount pairs');
  });
});

describe('the footprint row', () => {
  it('is heap.stats(): pools in use over the size classes, arenas, committed bytes, blocks over a baseline', async () => {
    const heap = await Heap.create({ shared: true, concurrency: 'free-threaded' });
    try {
      const base = blocksInUse(heap.stats());
      // A pool of 16-byte blocks holds (poolSize - poolOverhead) / 16 of them (1022 in the default preset): one more takes a second pool.
      const perPool = (heap.config.poolSize - heap.config.poolOverhead) / 16;
      const blocks = Array.from({ length: perPool }, () => heap.malloc(16));
      expect(heap.stats().sizeClasses.find((c) => c.size === 16)!.pools).toBe(1);
      blocks.push(heap.malloc(16));
      const stats = heap.stats();
      const row = footprintOf('free-threaded', 1, stats, base);
      expect(row).toEqual({
        mode: 'free-threaded', workers: 1, blocksInUse: perPool + 1,
        poolsInUse: stats.sizeClasses.reduce((sum, c) => sum + c.pools, 0),
        arenas: stats.arenas.current, committedBytes: stats.memory.committedBytes,
        threadPools: row.threadPools, sharedPools: row.sharedPools,
      });
      expect(stats.sizeClasses.find((c) => c.size === 16)!.pools).toBe(2);
      heap.freeMany(blocks);
      expect(footprintOf('free-threaded', 1, heap.stats(), base).blocksInUse).toBe(0);
    } finally {
      heap.dispose();
    }
  });
});

describe('pymalloc threads options', () => {
  it.each([
    ['--workers', '0', 'expected an integer from 1 to 64'],
    ['--workers', '65', 'expected an integer from 1 to 64'],
    ['--workers', '1.5', 'expected an integer from 1 to 64'],
    ['--iterations', '10', 'expected an integer from 100 to 10000000'],
    ['--runs', '0', 'expected an integer from 1 to 25'],
    ['--objects', 'many', 'expected an integer from 1 to 1000000'],
  ])('refuses %s %s with exit code 2, naming the option and its bounds', async (option, value, bounds) => {
    const run = await pymalloc('threads', option, value);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`option '${option} <n>' argument '${value}' is invalid. ${bounds}`);
    expect(run.stdout).toBe('');
  });

  it('threads() refuses bad options with a TypeError or RangeError naming the option', async () => {
    await expect(threads({ workers: 0 })).rejects.toThrow(new RangeError('options.workers must be from 1 to 64, not 0'));
    await expect(threads({ iterations: 2.5 })).rejects.toThrow(new TypeError('options.iterations must be an integer'));
    await expect(threads({ runs: 26 })).rejects.toThrow(new RangeError('options.runs must be from 1 to 25, not 26'));
    await expect(threads({ objects: 0 })).rejects.toThrow(new RangeError('options.objects must be from 1 to 1000000, not 0'));
    await expect(threads({ quick: 'yes' as unknown as boolean })).rejects.toThrow(new TypeError('options.quick must be a boolean'));
  });
});
