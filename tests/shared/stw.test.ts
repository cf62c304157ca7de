// Stop-the-world collection on a free-threaded heap (docs/free-threaded.md, part 5): a worker
// inside lock-free refcount calls is parked for the pause, one outside every call is not waited
// for, a dead attached worker is let go by heap.watch (and without watch the stop gives up with
// an error instead of hanging), finalizers and weakref callbacks run once the world runs again,
// and the pauses are counted exactly. Each proof counts what it proves: frozen header words
// sampled across a pause, parks, other workers' progress seen from inside a finalizer.
// The cross-worker model runs in fresh processes (tests/shared/stw-model.mjs).
import { describe, it, expect, afterEach } from 'vitest';
import { Worker } from 'node:worker_threads';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Heap } from '../../src/index.js';
import { worldOf, STOP_TIMEOUT_MS } from '../../src/heap/shared.js';
import { brcHeader } from './helpers.js';
import { READY, STOP, OPS, MADE } from './stw.worker.js';

const BOOTSTRAP = new URL('./stw.bootstrap.mjs', import.meta.url);
const MODEL = fileURLToPath(new URL('./stw-model.mjs', import.meta.url));

const create = () => Heap.create({ shared: true, concurrency: 'free-threaded' });

/** Test workers on one heap, with their shared words (stw.worker.ts: READY, STOP, OPS). */
class Team {
  readonly words = new Int32Array(new SharedArrayBuffer(16));
  readonly workers: Worker[] = [];
  constructor(readonly heap: Heap) {}

  start(task: string, extra: Record<string, unknown> = {}): { worker: Worker; result: Promise<any> } {
    const worker = new Worker(BOOTSTRAP, { workerData: { task, handle: this.heap.share(), words: this.words.buffer, ...extra } });
    this.workers.push(worker);
    const result = new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    return { worker, result };
  }

  /** Blocks until `count` workers are ready (in a loop, attached, or entered). */
  ready(count: number): void {
    const deadline = Date.now() + 60_000;
    for (let seen; (seen = Atomics.load(this.words, READY)) < count; ) {
      if (Date.now() > deadline) throw new Error(`only ${seen} of ${count} workers got ready`);
      Atomics.wait(this.words, READY, seen, 100);
    }
  }

  /** Blocks until the spinning worker has done `more` operations past what it had done. */
  progress(more: number): void {
    const from = Atomics.load(this.words, OPS);
    const deadline = Date.now() + 30_000;
    while (Atomics.load(this.words, OPS) < from + more) {
      if (Date.now() > deadline) throw new Error('the spinning worker made no progress');
    }
  }

  stop(): void {
    Atomics.store(this.words, STOP, 1);
    Atomics.notify(this.words, STOP);
  }

  async terminate(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

let teams: Team[] = [];
afterEach(async () => {
  for (const team of teams) {
    team.stop();
    await team.terminate();
  }
  teams = [];
});

function team(heap: Heap): Team {
  const t = new Team(heap);
  teams.push(t);
  return t;
}

/** A cycle of two objects of `type` that nothing else refers to. */
function cycle(heap: Heap, type: ReturnType<Heap['defineType']>): [number, number] {
  const a = heap.newObject(type);
  const b = heap.newObject(type);
  heap.setRef(a, 0, b);
  heap.setRef(b, 0, a);
  heap.decref(a);
  heap.decref(b);
  return [a, b];
}

describe('stop-the-world collection', () => {
  for (const owner of ['the collector', 'the spinning worker itself']) {
    it(`parks a worker spinning on lock-free increfs of an object owned by ${owner}: its words do not move in the pause`, async () => {
      const heap = await create();
      const crew = team(heap);
      const o = owner === 'the collector' ? heap.newList() : 0;
      const spinner = crew.start('spin', { o });
      crew.ready(1);
      const world = worldOf(heap)!;
      const parksBefore = world.counts().parks;
      const samples: { moved: number; frozen: boolean }[] = [];
      let parksAtCollect = 0;
      world.onStopped = () => {
        const before = Atomics.load(crew.words, OPS);
        const header = o ? brcHeader(heap, o) : undefined;
        // The worker parks at its next entry: wait for it (a machine this busy may take a while), then some more.
        for (const deadline = Date.now() + 10_000; world.counts().parks === parksAtCollect && Date.now() < deadline; ) sleep(1);
        sleep(20);
        const after = Atomics.load(crew.words, OPS);
        // The counter is bumped just after each incref's exit: it may move once after the stop.
        samples.push({ moved: after - before, frozen: !header || JSON.stringify(brcHeader(heap, o)) === JSON.stringify(header) });
      };
      const PAUSES = 5;
      for (let i = 0; i < PAUSES; i++) {
        crew.progress(1000);
        parksAtCollect = world.counts().parks;
        heap.gc.collect();
      }
      world.onStopped = undefined;
      crew.progress(1000); // and it runs again after the last pause
      crew.stop();
      const { done, refcount } = await spinner.result;
      expect(samples).toHaveLength(PAUSES);
      for (const s of samples) {
        expect(s.frozen).toBe(true);
        expect(s.moved).toBeLessThanOrEqual(1);
      }
      // It was inside the loop at each pause: each one parked it (at least) once.
      expect(world.counts().parks - parksBefore).toBeGreaterThanOrEqual(PAUSES);
      // Nothing lost: every incref of the worker counted, over the pauses and the merges.
      expect(refcount).toBe(done + 1);
      if (o) expect(heap.refcount(o)).toBe(done + 1);
      expect(heap.gc.getStats()[2].pauses).toBe(PAUSES);
      heap.check();
    }, 60_000);
  }

  it('does not wait for an attached worker that is outside every heap call', async () => {
    const heap = await create();
    const crew = team(heap);
    const idle = crew.start('idle');
    crew.ready(1);
    const world = worldOf(heap)!;
    const before = world.counts();
    const [a] = cycle(heap, heap.defineType({ name: 'Pair', refSlots: 1 }));
    expect(heap.gc.collect()).toBe(2);
    heap.check();
    expect(heap.attachments()).toBe(2);
    expect(world.counts()).toEqual({ ...before, stops: before.stops + 2 });
    expect(heap.isObject(a)).toBe(false);
    crew.stop();
    expect(await idle.result).toEqual({ idle: true });
  }, 60_000);

  it('lets a stop go on when a worker that died attached is released by heap.watch', async () => {
    const heap = await create();
    const crew = team(heap);
    const dead = crew.start('attachedForever');
    crew.ready(1);
    heap.watch(dead.worker);
    const world = worldOf(heap)!;
    const stops = world.counts().stops;
    const collector = crew.start('collect');
    crew.ready(2);
    // The collector is inside its stop, waiting for the attached worker, before it dies.
    const deadline = Date.now() + 30_000;
    while (world.counts().stops === stops) {
      if (Date.now() > deadline) throw new Error('the collector never stopped the world');
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const started = performance.now();
    await dead.worker.terminate();
    expect(await collector.result).toEqual({ found: 0 });
    expect(performance.now() - started).toBeLessThan(STOP_TIMEOUT_MS);
    expect(heap.gc.getStats()[2].pauses).toBe(1);
    heap.check();
  }, 60_000);

  it('gives up a stop with an error, and the heap goes on, when a worker died attached without heap.watch', async () => {
    const heap = await create();
    const crew = team(heap);
    const dead = crew.start('attachedForever');
    crew.ready(1);
    await dead.worker.terminate();
    const o = heap.newList();
    expect(() => heap.gc.collect()).toThrow(/attachment \d+ stayed inside a heap call for 5000 ms/);
    // The world was restarted: lock-free calls and locked ones go on.
    heap.incref(o);
    expect(heap.refcount(o)).toBe(2);
    expect(heap.gc.getStats()[2]).toMatchObject({ collections: 0, pauses: 0 });
    // An automatic collection fails the same way: the allocation that scheduled it returns, and the error is unraisable.
    const reported: string[] = [];
    heap.unraisableHook = (info) => reported.push(`${info.message}: ${(info.error as Error).message}`);
    const threshold = heap.gc.getThreshold()[0];
    const made: number[] = [];
    for (let i = 0; i <= threshold; i++) made.push(heap.newList());
    expect(new Set(made).size).toBe(threshold + 1);
    expect(reported).toEqual([expect.stringMatching(/^Exception ignored in: automatic garbage collection: automatic collection: attachment \d+ stayed inside/)]);
    expect(heap.gc.getStats()[0]).toMatchObject({ collections: 0, pauses: 0 });
  }, 60_000);

  it('runs finalizers and weakref callbacks once the world runs again: they see another worker progress, and may allocate', async () => {
    const heap = await create();
    const crew = team(heap);
    const spinner = crew.start('spin', { o: 0 });
    crew.ready(1);
    const world = worldOf(heap)!;
    const seen: string[] = [];
    const progressed = (what: string) => {
      expect(world.stopped).toBe(false);
      crew.progress(100);
      const l = heap.newList([heap.newInt(seen.length)]);
      heap.decref(l);
      seen.push(what);
    };
    const type = heap.defineType({ name: 'Finalized', refSlots: 1, finalizer: () => progressed('finalizer') });
    const plain = heap.defineType({ name: 'Plain', refSlots: 2 });
    for (let i = 0; i < 3; i++) cycle(heap, type);
    const [p] = cycle(heap, plain);
    const target = heap.newObject(plain);
    const wr = heap.weakref(target, () => progressed('callback'));
    heap.setRef(p, 1, target); // p's cycle keeps target alive; both go in one collection
    heap.decref(target);
    const weakHolder = heap.newList([wr]);
    heap.decref(wr);
    expect(heap.gc.collect()).toBe(3 * 2 + 3);
    expect(seen.filter((s) => s === 'finalizer')).toHaveLength(6);
    expect(seen.filter((s) => s === 'callback')).toHaveLength(1);
    // Finalizers ran: a second pause looked for what they resurrected.
    expect(heap.gc.getStats()[2].pauses).toBe(2);
    heap.decref(weakHolder);
    crew.stop();
    await spinner.result;
    heap.check();
  }, 60_000);

  it("frees what merging another thread's queue drops to 0 after the pause, its finalizer with the world running", async () => {
    const heap = await create();
    const crew = team(heap);
    const world = worldOf(heap)!;
    const finalized: boolean[] = [];
    heap.defineType({ name: 'Queued', finalizer: () => finalized.push(world.stopped) });
    // Owned by the spinning worker, which never takes the mutex, so never merges its queue itself.
    const spinner = crew.start('spin', { o: 0, make: 'Queued' });
    crew.ready(1);
    const x = Atomics.load(crew.words, MADE);
    heap.decref(x); // the last reference, from another thread than its owner's: queued to the owner
    expect(brcHeader(heap, x).shared).toBe(2); // count 0, QUEUED
    expect(finalized).toEqual([]);
    expect(heap.gc.collect()).toBe(0);
    expect(finalized).toEqual([false]);
    expect(heap.isObject(x)).toBe(false);
    crew.stop();
    await spinner.result;
    heap.check();
  }, 60_000);

  it('counts every pause exactly: one per collection, two when finalizers ran, automatic ones under generation 0', async () => {
    const heap = await create();
    const world = worldOf(heap)!;
    const plain = heap.defineType({ name: 'P', refSlots: 1 });
    const finalizing = heap.defineType({ name: 'F', refSlots: 1, finalizer: () => {} });
    heap.gc.disable();
    for (let i = 0; i < 3; i++) {
      cycle(heap, plain);
      expect(heap.gc.collect()).toBe(2);
    }
    cycle(heap, finalizing);
    expect(heap.gc.collect()).toBe(2);
    expect(heap.gc.collect(1)).toBe(0);
    const stops = world.counts().stops;
    heap.check();
    heap.stats();
    expect(world.counts().stops).toBe(stops + 2);
    let stats = heap.gc.getStats();
    expect(stats.map((s) => [s.collections, s.pauses])).toEqual([[0, 0], [1, 1], [4, 5]]);
    expect(stats[2].pauseSeconds).toBeGreaterThan(0);
    expect(stats[2].maxPauseSeconds).toBeLessThanOrEqual(stats[2].pauseSeconds!);
    heap.gc.enable();
    const threshold = heap.gc.getThreshold()[0];
    const collected2 = stats[2].collected;
    for (let i = 0; i < threshold * 3; i++) cycle(heap, plain);
    heap.gc.collect();
    stats = heap.gc.getStats();
    // Two objects a cycle, threshold0 = 700: an automatic collection every 350 cycles or so.
    expect(stats[0].collections).toBeGreaterThanOrEqual(5);
    expect(stats[0].pauses).toBe(stats[0].collections);
    expect(stats[0].collected + stats[2].collected - collected2).toBe(threshold * 3 * 2);
    heap.check();
  }, 60_000);
});

interface ModelRun {
  created: number;
  finalized: number;
  left: number;
  checks: number;
  detaches: number;
  given: number;
  collections: number;
  pauses: number;
  stops: number;
  parks: number;
  attachments: number;
}

describe('the cross-worker model (fresh processes, from dist/)', () => {
  const RUNS = 8;
  it(`frees every object exactly once, with check() passing in every pause, over ${RUNS} runs`, () => {
    const runs: ModelRun[] = [];
    for (let run = 0; run < RUNS; run++) {
      // Half the runs keep the core in V8's baseline compiler (as tests/shared/lock.test.ts does).
      const flags = run % 2 === 1 ? ['--liftoff', '--no-wasm-tier-up'] : [];
      const out = execFileSync(process.execPath, [...flags, MODEL, String(3 + (run % 2)), '20000', String(run + 1)], { encoding: 'utf8' });
      runs.push(JSON.parse(out.trim().split('\n').pop()!) as ModelRun);
    }
    for (const r of runs) {
      expect(r.left).toBe(0);
      expect(r.finalized).toBe(r.created);
      expect(r.created).toBeGreaterThan(10_000);
      // Every stop of the world, by whichever instance, ran check() inside its pause.
      expect(r.checks).toBe(r.stops);
      // Collections' pauses: one each, two after finalizers; the other stops were check()'s own.
      expect(r.pauses).toBeGreaterThanOrEqual(r.collections);
      expect(r.stops).toBeGreaterThan(r.pauses);
      expect(r.detaches).toBeGreaterThan(0);
      expect(r.given).toBeGreaterThan(0);
      expect(r.attachments).toBe(1);
    }
    // Workers were inside lock-free calls when others stopped the world, and parked.
    expect(runs.filter((r) => r.parks > 0).length).toBeGreaterThan(RUNS / 2);
    expect(runs.filter((r) => r.pauses > r.collections).length).toBeGreaterThan(RUNS / 2);
  }, 600_000);
});
