// `pymalloc race`: the race the GIL prevents, shown. The same work runs in N workers on one
// shared heap, under concurrency 'gil', 'free-threaded' (biased reference counting and per-thread
// pools, lock-free; the rest under the heap mutex) and 'none' (no lock at all), each run in fresh workers that start
// together at a barrier (protocol.ts), so that their loops really overlap:
//
//   refcount  every worker increfs one shared object `ops` times. Increfs only, no decrefs:
//             each lost update then shows as a count too low by one, and nothing cancels it
//             out (a lost decref would hide a lost incref), nor can a count driven to 0 free
//             the object under the workers' feet and turn the demonstration into a use after
//             free. expected = 1 + workers * ops (the owner's reference and every incref).
//   alloc     every worker churns a window of live blocks (worker.ts), each block tagged with
//             its holder: a block the allocator hands out while another holder has it is
//             found by its tag, or by being live in two workers at the end. expected = the
//             blocks the workers hold at the end, observed = the blocks in use by the heap's
//             statistics; then heap.check() walks every structure and names the first broken
//             invariant (HeapCorruptionError.invariant).
//   price     the GIL's cost: the alloc loop's ns per op (wall time over all workers' ops) on
//             an unshared heap in one worker, on the shared heap with no lock in one worker,
//             and under the GIL and the free-threaded heap's mutex with 1..N workers.
//
// Under 'none' a worker may find the heap broken (a HeapCorruptionError) or get any other
// error: it stops and reports it, the run goes on, and the report names it. Nothing here can
// crash the tool: a worker that hangs is terminated at the run's deadline.

import { Worker } from 'node:worker_threads';

import { Heap } from '../../index.js';
import {
  BARRIER_GO, BARRIER_WORDS, failureOf,
  type RaceTest, type WorkerError, type WorkerFailure, type WorkerReport, type WorkerRequest,
} from './protocol.js';

export type { RaceTest } from './protocol.js';

export type RaceMode = 'gil' | 'free-threaded' | 'none';
/** The modes every race runs, in the order of its rows. */
export const RACE_MODES: readonly RaceMode[] = ['gil', 'free-threaded', 'none'];
/** The price rows' modes: 'unshared' is Heap.create() without sharing, the reference. */
export type PriceMode = 'unshared' | RaceMode;

/** One run of one test under one mode: a row of `pymalloc race --json`'s results. */
export interface RaceResult {
  mode: RaceMode;
  test: RaceTest;
  workers: number;
  opsPerWorker: number;
  /** Which run this row is, from 1 to the number of runs. */
  runs: number;
  /** refcount: 1 + workers * opsPerWorker; alloc: the blocks the workers held at the end. */
  expected: number;
  /** refcount: the object's final refcount; alloc: the blocks in use by heap.stats(). null: the heap refused to say (broken). */
  observed: number | null;
  /** refcount: expected - observed, the increfs lost; alloc: |expected - observed|, blocks the heap's counts and the workers disagree on. */
  lostUpdates: number | null;
  /** Blocks handed out while another holder had them (distinct addresses); 0 for refcount. */
  duplicateBlocks: number;
  /** Whether heap.check() passed at the end of the run. */
  checkPassed: boolean;
  /** Wall time of the overlapping loops over all the ops the workers did. */
  nsPerOp: number;
}

/** The price of the GIL: the alloc loop's ns per op, the median of `runs` runs. */
export interface PriceResult {
  mode: PriceMode;
  workers: number;
  opsPerWorker: number;
  runs: number;
  nsPerOp: number;
  /** Ops per second over all workers. */
  opsPerSecond: number;
}

/** An error a run met: in a worker, or when the heap was read or checked at its end. */
export interface RaceFailure {
  mode: RaceMode;
  test: RaceTest;
  run: number;
  /** 'worker N' (from 1), 'refcount', 'stats', 'check', or 'deadline' (workers terminated). */
  where: string;
  name: string;
  /** The broken invariant, for a HeapCorruptionError. */
  invariant: string | null;
  message: string;
}

export interface RaceReport {
  settings: { workers: number; ops: number; runs: number; seed: number };
  results: RaceResult[];
  price: PriceResult[];
  failures: RaceFailure[];
}

export interface RaceOptions {
  /** Workers running at once. @default 2 */
  workers?: number;
  /** Ops per worker and run: increfs, or mallocs and frees. @default 500000 */
  ops?: number;
  /** Runs of each test under each mode, each in fresh workers. @default 3 */
  runs?: number;
  /** Seed of the alloc loops' sizes and slots. @default 1 */
  seed?: number;
  /** Whether to measure the price of the GIL. @default true */
  price?: boolean;
  /** Called before each run. */
  onProgress?: (label: string, done: number, total: number) => void;
}

export const RACE_DEFAULTS = { workers: 2, ops: 500_000, runs: 3, seed: 1, price: true } as const;
/** Bounds of the options: a run must end in seconds, and a heap has 256 attachments. */
export const MAX_WORKERS = 64;
export const MAX_OPS = 100_000_000;
export const MAX_RUNS = 100;
export const MIN_OPS = 1000;
/**
 * The most increfs one object can take in a run: the free-threaded shared count holds
 * count << 2 in an i32, and the default build's count turns immortal at 0x3fffffff.
 */
export const MAX_INCREFS = 2 ** 29 - 1;
/** The shared heap's maximum: far more than a window of blocks per worker needs. */
const MAX_MEMORY = 256 * 2 ** 20;
/** A run whose workers are not done by then is stopped: per million ops per worker, and at least. */
const DEADLINE_MS_PER_MILLION_OPS = 20_000;
const MIN_DEADLINE_MS = 10_000;

export function integerOption(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new TypeError(`options.${name} must be an integer`);
  if (value < min || value > max) throw new RangeError(`options.${name} must be from ${min} to ${max}, not ${value}`);
  return value;
}

function resolveOptions(options: RaceOptions): RaceReport['settings'] & { price: boolean } {
  const price = options.price ?? RACE_DEFAULTS.price;
  if (typeof price !== 'boolean') throw new TypeError('options.price must be a boolean');
  const workers = integerOption('workers', options.workers, RACE_DEFAULTS.workers, 1, MAX_WORKERS);
  const ops = integerOption('ops', options.ops, RACE_DEFAULTS.ops, MIN_OPS, MAX_OPS);
  if (workers * ops > MAX_INCREFS) {
    throw new RangeError(`options.workers x options.ops must be at most ${MAX_INCREFS} (the increfs one object can count), not ${workers * ops}`);
  }
  return {
    workers, ops,
    runs: integerOption('runs', options.runs, RACE_DEFAULTS.runs, 1, MAX_RUNS),
    seed: integerOption('seed', options.seed, RACE_DEFAULTS.seed, 0, 0xffff_ffff),
    price,
  };
}

/** The worker: worker.js from dist, or from source (tsx, vitest) through tsx's loader (worker.bootstrap.mjs). */
const WORKER = new URL(import.meta.url.endsWith('.ts') ? './worker.bootstrap.mjs' : './worker.js', import.meta.url);

/** What one set of workers did: their reports (or why there is none) and the wall time of their loops. */
interface Overlap {
  reports: (WorkerReport | undefined)[];
  failures: { worker: number; failure: WorkerFailure }[];
  /** Wall time from the first loop's start to the last one's end, in ms. */
  wallMs: number;
  ops: number;
  timedOut: boolean;
}

/** Starts `workers` workers on `heap` (or each on its own unshared heap), releases them together, and collects what they report. */
async function overlap(heap: Heap | undefined, workers: number, base: Omit<WorkerRequest, 'index' | 'barrier' | 'handle'>, deadlineMs: number): Promise<Overlap> {
  const barrier = new SharedArrayBuffer(BARRIER_WORDS * 4);
  const gate = new Int32Array(barrier);
  const handle = heap?.share();
  const reports: (WorkerReport | undefined)[] = new Array(workers).fill(undefined);
  const failures: Overlap['failures'] = [];
  // Workers that are ready, or gone: the loops start once every worker is one or the other.
  const settled = new Set<number>();
  let timedOut = false;
  const threads = Array.from({ length: workers }, (_, index) => new Worker(WORKER, { workerData: { ...base, handle, index, barrier } satisfies WorkerRequest }));
  const settle = (index: number) => {
    settled.add(index);
    if (settled.size === workers) Atomics.store(gate, BARRIER_GO, 1);
  };
  await new Promise<void>((resolve) => {
    let exited = 0;
    const timer = setTimeout(() => {
      timedOut = true;
      for (const thread of threads) void thread.terminate();
    }, deadlineMs);
    threads.forEach((thread, index) => {
      heap?.watch(thread);
      thread.on('message', (message: WorkerReport | WorkerError | { type: 'ready' }) => {
        if (message.type === 'ready') {
          settle(index);
        } else if (message.type === 'done') {
          reports[index] = message;
          if (message.failure) failures.push({ worker: index, failure: message.failure });
        } else {
          failures.push({ worker: index, failure: message.failure });
        }
      });
      thread.on('error', (error: Error) => failures.push({ worker: index, failure: { name: error.name, message: error.message } }));
      thread.on('exit', () => {
        settle(index);
        if (++exited === workers) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  });
  const done = reports.filter((r): r is WorkerReport => r !== undefined);
  const start = Math.min(...done.map((r) => r.start));
  const end = Math.max(...done.map((r) => r.end));
  return { reports, failures, wallMs: done.length > 0 ? end - start : 0, ops: done.reduce((sum, r) => sum + r.ops, 0), timedOut };
}

/** Blocks in use in pymalloc's size classes (every request of the alloc loop is small). */
function blocksInUse(heap: Heap): number {
  return heap.stats().sizeClasses.reduce((sum, c) => sum + c.blocksInUse, 0);
}

/** Addresses found tagged by another holder, or live in two workers (or twice in one) at the end. */
function duplicateBlocks(reports: readonly (WorkerReport | undefined)[]): number {
  const seen = new Set<number>();
  const twice = new Set<number>();
  for (const report of reports) {
    if (report === undefined) continue;
    for (const address of report.foreign) twice.add(address);
    for (const address of report.live) {
      if (seen.has(address)) twice.add(address);
      seen.add(address);
    }
  }
  return twice.size;
}

interface RunSpec {
  mode: RaceMode;
  test: RaceTest;
  run: number;
}

/**
 * One run of `test` under `mode` in fresh workers (options as race()'s; `run` numbers the run
 * and varies the seed): its row, and what it met. race() is made of these.
 */
export async function raceOnce(mode: RaceMode, test: RaceTest, run: number, options: RaceOptions = {}): Promise<{ result: RaceResult; failures: RaceFailure[] }> {
  if (!RACE_MODES.includes(mode)) throw new RangeError(`mode must be 'gil', 'free-threaded' or 'none', not ${String(mode)}`);
  if (test !== 'refcount' && test !== 'alloc') throw new RangeError(`test must be 'refcount' or 'alloc', not ${String(test)}`);
  if (!Number.isSafeInteger(run) || run < 1) throw new RangeError(`run must be a positive integer, not ${String(run)}`);
  const failures: RaceFailure[] = [];
  const result = await raceRun({ mode, test, run }, resolveOptions(options), failures);
  return { result, failures };
}

async function raceRun(spec: RunSpec, settings: RaceReport['settings'], failures: RaceFailure[]): Promise<RaceResult> {
  const { mode, test, run } = spec;
  const { workers, ops } = settings;
  const fail = (where: string, error: { name: string; message: string; invariant?: string | null }) =>
    failures.push({ mode, test, run, where, name: error.name, invariant: error.invariant ?? null, message: error.message });
  const heap = await Heap.create({ shared: true, concurrency: mode, maxMemory: MAX_MEMORY });
  try {
    const object = test === 'refcount' ? heap.newList() : undefined;
    const baseline = test === 'alloc' ? blocksInUse(heap) : 0;
    const seed = (settings.seed + run * 7919) >>> 0;
    const result = await overlap(heap, workers, { test, ops, seed, object, batch: 1 }, deadlineMs(ops));
    for (const { worker, failure } of result.failures) fail(`worker ${worker + 1}`, failure);
    if (result.timedOut) fail('deadline', { name: 'Error', message: `the workers were not done after ${deadlineMs(ops) / 1000} s and were terminated` });
    const expected = test === 'refcount' ? 1 + workers * ops : result.reports.reduce((sum, r) => sum + (r?.live.length ?? 0), 0);
    let observed: number | null = null;
    try {
      observed = test === 'refcount' ? heap.refcount(object!) : blocksInUse(heap) - baseline;
    } catch (error) {
      fail(test === 'refcount' ? 'refcount' : 'stats', failureOf(error));
    }
    let checkPassed = true;
    try {
      heap.check();
    } catch (error) {
      checkPassed = false;
      fail('check', failureOf(error));
    }
    const lostUpdates = observed === null ? null : test === 'refcount' ? expected - observed : Math.abs(expected - observed);
    return {
      mode, test, workers, opsPerWorker: ops, runs: run, expected, observed, lostUpdates,
      duplicateBlocks: test === 'alloc' ? duplicateBlocks(result.reports) : 0,
      checkPassed, nsPerOp: nsPerOp(result),
    };
  } finally {
    heap.dispose();
  }
}

function deadlineMs(ops: number): number {
  return Math.max(MIN_DEADLINE_MS, (ops / 1e6) * DEADLINE_MS_PER_MILLION_OPS);
}

function nsPerOp(result: Overlap): number {
  return result.ops > 0 ? (result.wallMs * 1e6) / result.ops : NaN;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * The alloc loop's ns per op, the median over `runs` sets of fresh workers, for one mode and
 * number of workers ('unshared': every worker on its own unshared heap). `batch` > 1 runs that
 * many steps under one gil.run.
 */
export async function measureThroughput(mode: PriceMode, workers: number, ops: number, runs: number, seed: number = RACE_DEFAULTS.seed, batch = 1): Promise<PriceResult> {
  const samples: number[] = [];
  for (let run = 1; run <= runs; run++) {
    const heap = mode === 'unshared' ? undefined : await Heap.create({ shared: true, concurrency: mode, maxMemory: MAX_MEMORY });
    try {
      const result = await overlap(heap, workers, { test: 'alloc', ops, seed: (seed + run) >>> 0, object: undefined, batch }, deadlineMs(ops));
      const failure = result.failures[0];
      if (failure !== undefined) throw new Error(`${mode} with ${workers} workers: worker ${failure.worker + 1}: ${failure.failure.message}`);
      if (result.timedOut) throw new Error(`${mode} with ${workers} workers: not done after ${deadlineMs(ops) / 1000} s`);
      samples.push(nsPerOp(result));
    } finally {
      heap?.dispose();
    }
  }
  const ns = median(samples);
  return { mode, workers, opsPerWorker: ops, runs, nsPerOp: ns, opsPerSecond: 1e9 / ns };
}

/** Every run of both tests under every mode, then (unless options.price is false) the price of the locks. */
export async function race(options: RaceOptions = {}): Promise<RaceReport> {
  const { price: withPrice, ...settings } = resolveOptions(options);
  const specs: RunSpec[] = [];
  for (const test of ['refcount', 'alloc'] as const) {
    for (const mode of RACE_MODES) for (let run = 1; run <= settings.runs; run++) specs.push({ mode, test, run });
  }
  const locked = (mode: PriceMode) => Array.from({ length: settings.workers }, (_, i) => [mode, i + 1] as [PriceMode, number]);
  const prices: [PriceMode, number][] = withPrice ? [['unshared', 1], ['none', 1], ...locked('gil'), ...locked('free-threaded')] : [];
  const total = specs.length + prices.length;
  const failures: RaceFailure[] = [];
  const results: RaceResult[] = [];
  for (const [i, spec] of specs.entries()) {
    options.onProgress?.(`race ${spec.test} ${spec.mode}`, i, total);
    results.push(await raceRun(spec, settings, failures));
  }
  const price: PriceResult[] = [];
  for (const [i, [mode, workers]] of prices.entries()) {
    options.onProgress?.(`price ${mode} x${workers}`, specs.length + i, total);
    price.push(await measureThroughput(mode, workers, settings.ops, settings.runs, settings.seed));
  }
  options.onProgress?.('race', total, total);
  return { settings, results, price, failures };
}

// ---- the terminal table --------------------------------------------------------------------------

export function table(head: readonly string[], rows: readonly string[][], left: number): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i < left ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

const shown = (value: number | null) => (value === null ? '-' : value.toLocaleString('en-US'));

/**
 * The failures of each run, one line per error, with every place that met it: once an instance
 * finds the heap broken, every other refuses it with the same invariant, so one corruption is
 * met by every worker and by the stats and the check after them.
 */
function groupFailures(failures: readonly RaceFailure[]): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const f of failures) {
    const error = f.invariant !== null ? `${f.name} (invariant: ${f.invariant})` : `${f.name}: ${f.message}`;
    const what = `${f.test} ${f.mode} run ${f.run}, ${error}`;
    groups.set(what, [...(groups.get(what) ?? []), f.where]);
  }
  return groups;
}

/** The report as printed on a terminal: the runs, the price of the GIL, then every failure by name. */
export function formatRace(report: RaceReport): string {
  const { workers, ops, runs } = report.settings;
  const out = [`${workers} workers x ${ops.toLocaleString('en-US')} ops, ${runs} runs of each test under each mode, each in fresh workers released together`, ''];
  out.push(...table(
    ['test', 'mode', 'run', 'expected', 'observed', 'lost updates', 'duplicate blocks', 'check', 'ns/op'],
    report.results.map((r) => [
      r.test, r.mode, String(r.runs), shown(r.expected), shown(r.observed), shown(r.lostUpdates),
      r.test === 'alloc' ? shown(r.duplicateBlocks) : '-', r.checkPassed ? 'passed' : 'FAILED', r.nsPerOp.toFixed(1),
    ]),
    2,
  ));
  out.push('', 'refcount: expected = 1 + workers x increfs, observed = the final refcount; lost updates = expected - observed.');
  out.push('alloc: expected = blocks the workers hold at the end, observed = blocks in use by heap.stats(); lost updates =');
  out.push('the difference; duplicate blocks = blocks handed out while another holder had them. ns/op: wall time over all ops.');
  out.push("free-threaded: no lock for either test: the workers' increfs are atomic adds to the shared count (biased");
  out.push('reference counting), and each worker mallocs and frees in pools of its own. Exact, as under the GIL.');
  if (report.price.length > 0) {
    const reference = report.price.find((p) => p.mode === 'unshared');
    out.push('', "The price of the GIL: the alloc loop (malloc and free calls), median of the runs ('free-threaded': each worker in its own pools)");
    out.push(...table(
      ['heap', 'workers', 'ns/op', 'M ops/s', 'vs unshared'],
      report.price.map((p) => [
        p.mode === 'unshared' ? 'unshared' : p.mode === 'none' ? "shared, 'none' (no lock)" : `shared, '${p.mode}'`,
        String(p.workers), p.nsPerOp.toFixed(1), (p.opsPerSecond / 1e6).toFixed(2),
        reference ? `x${(p.nsPerOp / reference.nsPerOp).toFixed(2)}` : '-',
      ]),
      1,
    ));
  }
  if (report.failures.length > 0) {
    out.push('', 'What the runs met (a worker stops at its first error; the run goes on):');
    for (const [what, places] of groupFailures(report.failures)) out.push(`  ${what}: met by ${places.join(', ')}`);
  }
  return out.join('\n');
}

/** What `pymalloc race --json` prints. */
export function raceDocument(report: RaceReport): { results: RaceResult[]; price: PriceResult[]; failures: RaceFailure[] } {
  return { results: report.results, price: report.price, failures: report.failures };
}
