// `pymalloc threads`: concurrency 'gil' against 'free-threaded' on the same workloads. Each mode
// gets one shared heap and N workers attached to it for its whole run (worker.ts); the workloads,
// in this order:
//
//   alloc      1..N workers at once, each freeing and mallocing small blocks in a window of its
//              own (heap.free, heap.malloc), after a start barrier; each worker times its own
//              loop, and the rate of a run is all their pairs over the span of their loops.
//   footprint  heap.stats() right after the last alloc run with N workers, every worker still
//              holding its window: blocks and pools in use, arenas, committed memory (and the
//              pools each thread holds, where stats() counts them).
//   refcount   incref + decref pairs on one object: by its owner alone, by one other thread
//              alone, and by all N workers at once (the owner among them). On the free-threaded
//              heap these are the owner's plain and the others' atomic paths of biased
//              reference counting; under the GIL every call takes the lock.
//   collect    gc.collect() in worker 0 of a ring of cyclic garbage beside a ring of live
//              objects, while the other workers are idle, run refcount pairs on a shared object,
//              or run the alloc loop; the pause is gc.getStats()'s where the heap counts pauses,
//              else the collect call's wall time.
//
// Every figure is the median over `runs` runs; counts are checked exactly (the ops the workers
// did, the object's refcount after the traffic, what each collection found, heap.check()).

import { availableParallelism, loadavg } from 'node:os';
import { Worker } from 'node:worker_threads';

import { Heap, type HeapStats } from '../../index.js';
import { integerOption, median, table } from '../race/race.js';
import { threadPoolsOf } from './ft-stats.js';
import { CONTROL_WORDS, MAX_BLOCK, MIN_BLOCK, WINDOW, type Command, type Reply, type ThreadsMode, type WorkerSetup } from './protocol.js';

export type { ThreadsMode } from './protocol.js';

export const THREADS_MODES: readonly ThreadsMode[] = ['gil', 'free-threaded'];
export type RefcountCase = 'owner' | 'non-owner' | 'mixed';
export type Traffic = 'idle' | 'refcount' | 'alloc';

/** Allocation throughput of one mode with `workers` workers at once. */
export interface AllocRow {
  mode: ThreadsMode;
  workers: number;
  opsPerWorker: number;
  /** Malloc + free pairs the workers did in each run, counted by them. */
  ops: number;
  runs: number;
  /** Pairs per second, all workers: the median over runs of their pairs over the span of their loops. */
  opsPerSecond: number;
  /** opsPerSecond over the same mode's with 1 worker. */
  vsOneWorker: number;
  /** Loops running at once, on average over the span (median of the runs): up to workers (side by side); 1 or less: one after another. */
  overlap: number;
}

export interface RefcountRow {
  mode: ThreadsMode;
  case: RefcountCase;
  workers: number;
  opsPerWorker: number;
  /** Incref + decref pairs the workers did in each run, counted by them. */
  ops: number;
  runs: number;
  opsPerSecond: number;
  /** Loops running at once, as AllocRow.overlap. */
  overlap: number;
  /** The object's refcount before the runs and after them: equal when no update was lost. */
  refcountBefore: number;
  refcountAfter: number;
}

export interface CollectionRow {
  mode: ThreadsMode;
  traffic: Traffic;
  /** Workers running the traffic beside the collecting one. */
  otherWorkers: number;
  /** Objects of cyclic garbage, and live objects, in the collected graph. */
  objects: number;
  liveObjects: number;
  /** What gc.collect() returned, the same in every run (the tool checks it): the unreachable objects, the garbage ring. */
  collected: number;
  runs: number;
  /** The pause, median: pauseSource says where it comes from. */
  pauseMs: number;
  pauseSource: 'gc.getStats' | 'call';
  /** The collect call's wall time in the collecting worker, median. */
  callMs: number;
  /** Pairs the traffic workers did from their start to the stop word (stored when the collection returned), median; 0 for idle. */
  trafficOps: number;
}

export interface FootprintRow {
  mode: ThreadsMode;
  workers: number;
  /** Blocks the alloc workload holds (workers x the window), counted by heap.stats(). */
  blocksInUse: number;
  /** Pools in use over every size class, the arenas attached, committed memory: heap.stats(). */
  poolsInUse: number;
  arenas: number;
  committedBytes: number;
  /** Pools the threads own, summed, and used pools no thread owns, where stats() counts pools per thread; else null. */
  threadPools: number | null;
  sharedPools: number | null;
}

/**
 * What `pymalloc threads --json` prints. Every section lists its 'gil' rows first, then its
 * 'free-threaded' rows in the same order, so that row i of one mode pairs with row i of the other.
 */
export interface ThreadsReport {
  /** os.availableParallelism(), the 1-minute load average at the start, process.version. */
  machine: { cores: number; loadAverage: number; node: string };
  /** The options as resolved; window is the live blocks each allocating worker keeps. */
  settings: { workers: number; iterations: number; runs: number; objects: number; window: number };
  /** 1..workers workers, in that order. */
  alloc: AllocRow[];
  /** owner, non-owner, mixed. */
  refcount: RefcountRow[];
  /** idle, then (with 2 workers or more) refcount and alloc traffic. */
  collection: CollectionRow[];
  /** One row per mode. */
  footprint: FootprintRow[];
}

export interface ThreadsOptions {
  /** Workers per mode. @default the cores, from 2 to 8 */
  workers?: number;
  /** Pairs per worker and run of the alloc and refcount loops. @default 500000 (quick: 20000) */
  iterations?: number;
  /** Runs of each measurement; figures are their medians. @default 5 (quick: 1) */
  runs?: number;
  /** Objects of cyclic garbage in the collected graph, and as many live ones. @default 50000 (quick: 2000) */
  objects?: number;
  /** Smaller defaults, for a look in a few seconds. @default false */
  quick?: boolean;
  onProgress?: (label: string, done: number, total: number) => void;
}

export const MAX_WORKERS = 64;
export const MIN_ITERATIONS = 100;
export const MAX_ITERATIONS = 10_000_000;
export const MAX_RUNS = 25;
export const MAX_OBJECTS = 1_000_000;
export const THREADS_DEFAULTS = { iterations: 500_000, runs: 5, objects: 50_000 } as const;
export const QUICK_DEFAULTS = { iterations: 20_000, runs: 1, objects: 2_000 } as const;
/** Far more than N windows and the collected graph need. */
const MAX_MEMORY = 512 * 2 ** 20;
/** A command not answered by then means a worker hangs: the mode's workers are terminated. */
const COMMAND_DEADLINE_MS = 120_000;
/** Untimed pairs each worker runs first, for V8 to compile its loops. */
const WARM_UP_ITERATIONS = 20_000;

/** The default number of workers: one per core, at least 2 (to meet contention) and at most 8 (to stay quick). */
export function defaultWorkers(): number {
  return Math.min(8, Math.max(2, availableParallelism()));
}

function resolveOptions(options: ThreadsOptions): ThreadsReport['settings'] {
  const quick = options.quick ?? false;
  if (typeof quick !== 'boolean') throw new TypeError('options.quick must be a boolean');
  const defaults = quick ? QUICK_DEFAULTS : THREADS_DEFAULTS;
  return {
    workers: integerOption('workers', options.workers, defaultWorkers(), 1, MAX_WORKERS),
    iterations: integerOption('iterations', options.iterations, defaults.iterations, MIN_ITERATIONS, MAX_ITERATIONS),
    runs: integerOption('runs', options.runs, defaults.runs, 1, MAX_RUNS),
    objects: integerOption('objects', options.objects, defaults.objects, 1, MAX_OBJECTS),
    window: WINDOW,
  };
}

/** The worker: worker.js from dist, or from source (tsx, vitest) through tsx's loader. */
const WORKER = new URL(import.meta.url.endsWith('.ts') ? './worker.bootstrap.mjs' : './worker.js', import.meta.url);

/** A mode's workers, one command at a time each. */
class Pool {
  readonly #threads: Worker[];
  readonly #pending: ({ resolve: (reply: Reply) => void; reject: (error: Error) => void } | undefined)[];
  readonly #mode: ThreadsMode;

  private constructor(heap: Heap, mode: ThreadsMode, count: number) {
    this.#mode = mode;
    this.#pending = new Array(count).fill(undefined);
    this.#threads = Array.from({ length: count }, (_, index) => {
      const thread = new Worker(WORKER, { workerData: { handle: heap.share(), index } satisfies WorkerSetup });
      heap.watch(thread);
      const settle = (outcome: Reply | Error) => {
        const pending = this.#pending[index];
        this.#pending[index] = undefined;
        if (outcome instanceof Error) pending?.reject(outcome);
        else if (outcome.type === 'failed') pending?.reject(new Error(`${mode}, worker ${index + 1}: ${outcome.name}: ${outcome.message}`));
        else pending?.resolve(outcome);
      };
      thread.on('message', settle);
      thread.on('error', (error: Error) => settle(new Error(`${mode}, worker ${index + 1}: ${error.message}`)));
      thread.on('exit', (code) => settle(new Error(`${mode}, worker ${index + 1} exited (code ${code}) before it answered`)));
      return thread;
    });
  }

  /** Starts `count` workers on `heap` and waits until each has attached. */
  static async start(heap: Heap, mode: ThreadsMode, count: number): Promise<Pool> {
    const pool = new Pool(heap, mode, count);
    await Promise.all(pool.#threads.map((_, index) => pool.#reply(index)));
    return pool;
  }

  #reply(index: number): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.#mode}, worker ${index + 1}: no answer after ${COMMAND_DEADLINE_MS / 1000} s`)), COMMAND_DEADLINE_MS);
      this.#pending[index] = {
        resolve: (reply) => { clearTimeout(timer); resolve(reply); },
        reject: (error) => { clearTimeout(timer); reject(error); },
      };
    });
  }

  send<T extends Reply['type']>(index: number, command: Command, expect: T): Promise<Extract<Reply, { type: T }>> {
    const reply = this.#reply(index);
    this.#threads[index].postMessage(command);
    return reply.then((r) => {
      if (r.type !== expect) throw new Error(`${this.#mode}, worker ${index + 1}: answered ${r.type} to ${command.type}`);
      return r as Extract<Reply, { type: T }>;
    });
  }

  /** The same command to workers 0..count-1 at once (a fresh control block each time `make` makes one). */
  all<T extends Reply['type']>(count: number, make: (index: number) => Command, expect: T): Promise<Extract<Reply, { type: T }>[]> {
    return Promise.all(Array.from({ length: count }, (_, index) => this.send(index, make(index), expect)));
  }

  /** Every worker exits cleanly (detaching), or is terminated. */
  async close(): Promise<void> {
    try {
      await this.all(this.#threads.length, () => ({ type: 'exit' }), 'exited');
    } finally {
      await Promise.all(this.#threads.map((thread) => thread.terminate()));
    }
  }

  async terminate(): Promise<void> {
    await Promise.all(this.#threads.map((thread) => thread.terminate()));
  }
}

function control(): SharedArrayBuffer {
  return new SharedArrayBuffer(CONTROL_WORDS * 4);
}

export function blocksInUse(stats: HeapStats): number {
  return stats.sizeClasses.reduce((sum, c) => sum + c.blocksInUse, 0);
}

type Timed = Extract<Reply, { type: 'timed' }>;

/**
 * Pairs per second of one run: every worker's count over the span from the first loop's start
 * to the last one's end. (A sum of each worker's own rate would overcount a lock that lets one
 * worker run its whole loop while the other waits.)
 */
function rate(replies: readonly Timed[]): number {
  return (replies.reduce((sum, r) => sum + r.ops, 0) * 1000) / span(replies);
}

function span(replies: readonly Timed[]): number {
  return Math.max(...replies.map((r) => r.end)) - Math.min(...replies.map((r) => r.start));
}

/**
 * How many loops ran at once on average over the span: the workers' loop times summed, over the
 * span. N when all N loops ran side by side from start to end; 1 or less when they ran one after
 * another (a lock that one worker kept while the others slept, or a machine that gave them one core).
 */
function overlap(replies: readonly Timed[]): number {
  return replies.reduce((sum, r) => sum + (r.end - r.start), 0) / span(replies);
}

/** The ops of a run, the same in every run: the workers count them, and each runs them all. */
function opsOf(runs: readonly (readonly { ops: number }[])[]): number {
  const counts = runs.map((replies) => replies.reduce((sum, r) => sum + r.ops, 0));
  if (counts.some((n) => n !== counts[0])) throw new Error(`the workers did ${counts.join(', ')} ops in the runs, not the same every run`);
  return counts[0];
}

/** The footprint row of `stats`: blocks in use over those of `baseBlocks` (what the heap held before the workload). */
export function footprintOf(mode: ThreadsMode, workers: number, stats: HeapStats, baseBlocks: number): FootprintRow {
  return {
    mode, workers, blocksInUse: blocksInUse(stats) - baseBlocks, poolsInUse: stats.sizeClasses.reduce((sum, c) => sum + c.pools, 0),
    arenas: stats.arenas.current, committedBytes: stats.memory.committedBytes, threadPools: null, sharedPools: null, ...threadPoolsOf(stats),
  };
}

interface ModeResult {
  alloc: AllocRow[];
  refcount: RefcountRow[];
  collection: CollectionRow[];
  footprint: FootprintRow;
}

/** The steps of one mode, for the progress bar. */
function stepsOf(settings: ThreadsReport['settings']): number {
  return settings.runs * (settings.workers + 3 + (settings.workers > 1 ? 3 : 1));
}

type Step = (label: string) => void;

/** Allocation throughput with 1..N workers, and the footprint with all N holding their windows. */
async function allocPhase(heap: Heap, pool: Pool, mode: ThreadsMode, settings: ThreadsReport['settings'], step: Step): Promise<{ alloc: AllocRow[]; footprint: FootprintRow }> {
  const { workers, iterations, runs } = settings;
  const base = blocksInUse(heap.stats());
  const warmUp = control();
  await pool.all(workers, () => ({ type: 'alloc', iterations: WARM_UP_ITERATIONS, control: warmUp, parties: workers }), 'timed');
  const alloc: AllocRow[] = [];
  for (let count = 1; count <= workers; count++) {
    const samples: Timed[][] = [];
    for (let run = 0; run < runs; run++) {
      step(`${mode} alloc x${count}`);
      const shared = control();
      samples.push(await pool.all(count, () => ({ type: 'alloc', iterations, control: shared, parties: count }), 'timed'));
    }
    const opsPerSecond = median(samples.map(rate));
    alloc.push({
      mode, workers: count, opsPerWorker: iterations, ops: opsOf(samples), runs, opsPerSecond,
      vsOneWorker: opsPerSecond / (alloc[0]?.opsPerSecond ?? opsPerSecond), overlap: median(samples.map(overlap)),
    });
  }
  const footprint = footprintOf(mode, workers, heap.stats(), base);
  await pool.all(workers, () => ({ type: 'release' }), 'released');
  return { alloc, footprint };
}

/**
 * Refcount pairs by the owner of an object (worker 0 made it), by a worker that is not its owner
 * (on an object the main thread made), and by all N workers on worker 0's object.
 */
async function refcountPhase(heap: Heap, pool: Pool, mode: ThreadsMode, owned: number, settings: ThreadsReport['settings'], step: Step): Promise<RefcountRow[]> {
  const { workers, iterations, runs } = settings;
  const cases: { case: RefcountCase; object: number; workers: number }[] = [
    { case: 'owner', object: owned, workers: 1 },
    { case: 'non-owner', object: heap.newList(), workers: 1 },
    { case: 'mixed', object: owned, workers },
  ];
  await pool.all(workers, () => ({ type: 'refcount', object: owned, iterations: WARM_UP_ITERATIONS, control: control(), parties: 1 }), 'timed');
  const rows: RefcountRow[] = [];
  for (const c of cases) {
    const refcountBefore = heap.refcount(c.object);
    const samples: Timed[][] = [];
    for (let run = 0; run < runs; run++) {
      step(`${mode} refcount ${c.case}`);
      const shared = control();
      samples.push(await pool.all(c.workers, () => ({ type: 'refcount', object: c.object, iterations, control: shared, parties: c.workers }), 'timed'));
    }
    rows.push({
      mode, case: c.case, workers: c.workers, opsPerWorker: iterations, ops: opsOf(samples), runs,
      opsPerSecond: median(samples.map(rate)), overlap: median(samples.map(overlap)), refcountBefore, refcountAfter: heap.refcount(c.object),
    });
  }
  return rows;
}

/** A collection's pause beside idle workers, then (with 2 workers or more) beside refcount and alloc traffic. */
async function collectionPhase(pool: Pool, mode: ThreadsMode, owned: number, settings: ThreadsReport['settings'], step: Step): Promise<CollectionRow[]> {
  const { workers, runs, objects } = settings;
  const traffics: Traffic[] = workers > 1 ? ['idle', 'refcount', 'alloc'] : ['idle'];
  await collectOnce(pool, mode, 'idle', 1, Math.min(objects, 1000), owned);
  const rows: CollectionRow[] = [];
  for (const traffic of traffics) {
    const parties = traffic === 'idle' ? 1 : workers;
    const samples: Awaited<ReturnType<typeof collectOnce>>[] = [];
    for (let run = 0; run < runs; run++) {
      step(`${mode} collect, ${traffic}`);
      samples.push(await collectOnce(pool, mode, traffic, parties, objects, owned));
    }
    const counted = samples.every((s) => s.statsPauseMs !== null);
    rows.push({
      mode, traffic, otherWorkers: parties - 1, objects, liveObjects: objects, collected: objects, runs,
      pauseMs: median(samples.map((s) => (counted ? s.statsPauseMs! : s.callMs))), pauseSource: counted ? 'gc.getStats' : 'call',
      callMs: median(samples.map((s) => s.callMs)), trafficOps: median(samples.map((s) => s.trafficOps)),
    });
  }
  return rows;
}

/** Every workload of one mode on one heap and one set of workers; heap.check() at the end. */
async function runMode(mode: ThreadsMode, settings: ThreadsReport['settings'], step: Step): Promise<ModeResult> {
  const heap = await Heap.create({ shared: true, concurrency: mode, maxMemory: MAX_MEMORY });
  // Collections only when asked for: the collect workload measures one on a known graph.
  heap.gc.disable();
  let pool: Pool | undefined;
  try {
    pool = await Pool.start(heap, mode, settings.workers);
    const { alloc, footprint } = await allocPhase(heap, pool, mode, settings, step);
    const owned = (await pool.send(0, { type: 'own' }, 'owned')).object;
    const refcount = await refcountPhase(heap, pool, mode, owned, settings, step);
    const collection = await collectionPhase(pool, mode, owned, settings, step);
    const closing = pool;
    pool = undefined;
    await closing.close();
    heap.check();
    return { alloc, refcount, collection, footprint };
  } finally {
    await pool?.terminate();
    heap.dispose();
  }
}

/** One collection in worker 0, the traffic in workers 1..parties-1. */
async function collectOnce(pool: Pool, mode: ThreadsMode, traffic: Traffic, parties: number, objects: number, object: number) {
  const shared = control();
  const kind = traffic === 'alloc' ? 'alloc' : 'refcount';
  const [collected, ...others] = await Promise.all([
    pool.send(0, { type: 'collect', garbage: objects, live: objects, control: shared, parties }, 'collected'),
    ...Array.from({ length: parties - 1 }, (_, i) => pool.send(i + 1, { type: 'traffic', kind, object, control: shared, parties }, 'trafficked')),
  ]);
  if (collected.collected !== objects) throw new Error(`${mode}: gc.collect() found ${collected.collected} unreachable objects, not the ${objects} of the garbage ring`);
  return { ...collected, trafficOps: others.reduce((sum, r) => sum + (r as { ops: number }).ops, 0) };
}

/** Every workload under 'gil', then under 'free-threaded'. */
export async function threads(options: ThreadsOptions = {}): Promise<ThreadsReport> {
  const settings = resolveOptions(options);
  const total = THREADS_MODES.length * stepsOf(settings);
  let done = 0;
  const step = (label: string) => options.onProgress?.(label, done++, total);
  const report: ThreadsReport = {
    machine: { cores: availableParallelism(), loadAverage: loadavg()[0], node: process.version },
    settings, alloc: [], refcount: [], collection: [], footprint: [],
  };
  for (const mode of THREADS_MODES) {
    const result = await runMode(mode, settings, step);
    report.alloc.push(...result.alloc);
    report.refcount.push(...result.refcount);
    report.collection.push(...result.collection);
    report.footprint.push(result.footprint);
  }
  options.onProgress?.('threads', total, total);
  return report;
}

// ---- the terminal table --------------------------------------------------------------------------

const mops = (opsPerSecond: number) => (opsPerSecond / 1e6).toFixed(2);
const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}x` : '-');
const count = (n: number) => n.toLocaleString('en-US');
const atOnce = (gil: { overlap: number }, ft: { overlap: number }) => `${gil.overlap.toFixed(2)}, ${ft.overlap.toFixed(2)}`;

/** Rows of both modes side by side: the key of each, and the gil row with its free-threaded peer. */
function pairsOf<T extends { mode: ThreadsMode }>(rows: readonly T[], key: (row: T) => string): [T, T][] {
  const ft = new Map(rows.filter((r) => r.mode === 'free-threaded').map((r) => [key(r), r]));
  return rows.filter((r) => r.mode === 'gil').flatMap((gil) => {
    const peer = ft.get(key(gil));
    return peer === undefined ? [] : [[gil, peer] as [T, T]];
  });
}

const REFCOUNT_CASES: Record<RefcountCase, (workers: number) => string> = {
  owner: () => 'owner only',
  'non-owner': () => 'non-owner only',
  mixed: (workers) => (workers === 1 ? 'mixed (1 worker: the owner only)' : `mixed: the owner and ${workers - 1} non-owner${workers === 2 ? '' : 's'}`),
};
const TRAFFICS: Record<Traffic, string> = { idle: 'are idle', refcount: 'run refcount pairs', alloc: 'run the alloc loop' };

/** The report as printed on a terminal: the four workloads, 'gil' and 'free-threaded' side by side. */
export function formatThreads(report: ThreadsReport): string {
  const { machine, settings } = report;
  const { workers, iterations, runs, objects } = settings;
  const out = [
    `pymalloc threads: concurrency 'gil' against 'free-threaded', ${workers} worker${workers === 1 ? '' : 's'} on one shared heap per mode`,
    `this machine: ${machine.cores} cores (load average ${machine.loadAverage.toFixed(2)}), Node ${machine.node}; ${count(iterations)} pairs per worker and run, medians of ${runs} run${runs === 1 ? '' : 's'}`,
  ];
  if (workers > machine.cores) out.push(`more workers than cores: the figures with more than ${machine.cores} workers measure contention, not parallelism`);

  out.push('', `allocation: each worker frees and mallocs blocks of ${MIN_BLOCK}-${MAX_BLOCK} bytes in a window of ${settings.window} (M pairs/s, all workers)`);
  out.push(...table(
    ['workers', 'gil', 'vs 1 worker', 'free-threaded', 'vs 1 worker', 'ft / gil', 'at once (gil, ft)'],
    pairsOf(report.alloc, (r) => String(r.workers)).map(([gil, ft]) => [
      String(gil.workers), mops(gil.opsPerSecond), ratio(gil.vsOneWorker, 1), mops(ft.opsPerSecond), ratio(ft.vsOneWorker, 1), ratio(ft.opsPerSecond, gil.opsPerSecond),
      atOnce(gil, ft),
    ]),
    0,
  ));

  out.push('', 'refcount traffic to one object: incref + decref pairs (M pairs/s, all workers)');
  out.push(...table(
    ['case', 'workers', 'gil', 'free-threaded', 'ft / gil', 'at once (gil, ft)', 'refcount kept'],
    pairsOf(report.refcount, (r) => r.case).map(([gil, ft]) => [
      REFCOUNT_CASES[gil.case](gil.workers), String(gil.workers), mops(gil.opsPerSecond), mops(ft.opsPerSecond), ratio(ft.opsPerSecond, gil.opsPerSecond),
      atOnce(gil, ft), gil.refcountAfter === gil.refcountBefore && ft.refcountAfter === ft.refcountBefore ? 'yes' : 'NO',
    ]),
    1,
  ));
  out.push('at once: loops running side by side on average over the run (1 or less: one after another; a lock kept by one worker, or one core for all)');

  out.push('', `a collection's pause: gc.collect() of ${count(objects)} objects of cyclic garbage beside ${count(objects)} live ones, in worker 1 (ms)`);
  const collections = pairsOf(report.collection, (r) => r.traffic);
  out.push(...table(
    ['while the other workers', 'workers', 'gil', 'free-threaded', 'ft / gil', 'collect call (gil, ft)', 'found'],
    collections.map(([gil, ft]) => [
      TRAFFICS[gil.traffic], String(gil.otherWorkers + 1), gil.pauseMs.toFixed(2), ft.pauseMs.toFixed(2), ratio(ft.pauseMs, gil.pauseMs),
      `${gil.callMs.toFixed(2)}, ${ft.callMs.toFixed(2)}`, count(gil.collected),
    ]),
    1,
  ));
  const counted = THREADS_MODES.filter((mode) => report.collection.some((r) => r.mode === mode && r.pauseSource === 'gc.getStats'));
  out.push(counted.length > 0
    ? `pause: the world stopped, as gc.getStats() counts it (${counted.join(', ')}); else the collect call's wall time in the collecting worker`
    : "pause: the collect call's wall time in the collecting worker (no heap here counts its pauses in gc.getStats())");

  out.push('', `memory footprint after the allocation workload (${workers} worker${workers === 1 ? '' : 's'}, each holding ${settings.window} blocks): heap.stats()`);
  const [gil, ft] = pairsOf(report.footprint, () => 'all')[0];
  const row = (label: string, a: number | null, b: number | null): string[] => [
    label, a === null ? 'n/a' : count(a), b === null ? 'n/a' : count(b), a === null || b === null ? '-' : `${b - a >= 0 ? '+' : ''}${count(b - a)}`,
  ];
  out.push(...table(
    ['', 'gil', 'free-threaded', 'ft - gil'],
    [
      row('blocks in use', gil.blocksInUse, ft.blocksInUse),
      row('pools in use', gil.poolsInUse, ft.poolsInUse),
      row('pools owned by threads', gil.threadPools, ft.threadPools),
      row('pools no thread owns', gil.sharedPools, ft.sharedPools),
      row('arenas', gil.arenas, ft.arenas),
      row('committed bytes', gil.committedBytes, ft.committedBytes),
    ],
    1,
  ));
  if (ft.threadPools === null) out.push('pools owned by threads: n/a, the heap keeps no per-thread pools (stats() counts none)');
  return out.join('\n');
}
