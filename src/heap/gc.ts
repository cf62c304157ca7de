import { HeapCorruptionError, InvalidObjectError } from './errors.js';
import type { PauseStats, World } from './shared.js';

/**
 * One generation's line of gc.get_stats(); a free-threaded heap adds its collections' pauses
 * (the world stopped: `pauses`, `pauseSeconds`, `maxPauseSeconds`), counted under the
 * generation the collection was asked for.
 */
export interface GcGenerationStats extends Partial<PauseStats> {
  collections: number;
  collected: number;
  uncollectable: number;
}

/** What gc.callbacks receive with "start" and "stop". */
export interface GcCallbackInfo {
  generation: number;
  collected: number;
  uncollectable: number;
}

export type GcCallback = (phase: 'start' | 'stop', info: GcCallbackInfo) => void;

const NUM_GENERATIONS = 3;
/** gcListObjects' generation for "all three". */
const ALL_GENERATIONS = 3;
const PERMANENT = 3;
const FAILED = -1;

function generationError(generation: unknown): Error {
  if (typeof generation !== 'number') return new TypeError(`generation must be a number, not ${typeof generation}`);
  return new RangeError(`generation must be 0, 1 or 2, not ${generation}`);
}

function thresholdError(name: string, value: unknown): Error {
  if (typeof value !== 'number') return new TypeError(`${name} must be a number, not ${typeof value}`);
  return new RangeError(`${name} must be an integer in [0, 2^32), not ${value}`);
}

/**
 * Python's gc module for one heap. The collector runs in Wasm; this side validates
 * arguments, lists objects, and runs what CPython runs in Python: callbacks and the
 * DEBUG_STATS / DEBUG_COLLECTABLE output.
 */
/** The gc module's exports of assembly/abi/objects.ts, and the IO exports of the core. */
export interface GcExports {
  memory: WebAssembly.Memory;
  ioBuffer(): number;
  ioWords(): number;
  gcCollect(generation: number): number;
  gcSetEnabled(enabled: number): void;
  gcIsEnabled(): number;
  gcGetCount(generation: number): number;
  gcGetThreshold(generation: number): number;
  gcSetThreshold(generation: number, threshold: number): void;
  gcGetDebug(): number;
  gcSetDebug(flags: number): void;
  gcStat(generation: number, field: number): number;
  gcListObjects(generation: number, after: number, referent: number): number;
  gcListReferents(o: number, start: number): number;
  gcIsTracked(o: number): number;
  gcIsFinalized(o: number): number;
  gcFreeze(): void;
  gcUnfreeze(): void;
  gcGenerationSize(generation: number): number;
  gcGarbageCount(): number;
  gcGarbageItems(): number;
  gcClearGarbage(): void;
  /** The free-threaded build's (assembly/abi/threads.ts): the collection's phases. */
  gcCollecting?(): number;
  threadMergeAll?(): void;
  threadReleaseKept?(): void;
  gcCollectStopped?(): number;
  gcCollectRestarted?(finalizersDue: number): number;
  gcCollectResurrected?(): void;
  gcCollectDelete?(generation: number, finalizersDue: number, freed: number): number;
}

type FreeThreadedGcExports = Required<GcExports>;

/**
 * What the gc module needs of the object space that owns it (src/heap/objects.ts): the
 * exports, whether an address is a live object, how to name one, and where a callback's
 * exception goes.
 */
export interface GcHost {
  /** The exports; throws HeapDisposedError naming `operation` after dispose(). */
  exports(operation: string): GcExports;
  isObject(o: number): boolean;
  debugName(o: number): string;
  reportUnraisable(error: unknown, object: number, message: string): void;
  /** A free-threaded heap's stop-the-world: its collections stop the world (src/heap/shared.ts). */
  world?: World;
}

export class GcModule {
  readonly DEBUG_STATS = 1;
  readonly DEBUG_COLLECTABLE = 2;
  readonly DEBUG_UNCOLLECTABLE = 4;
  readonly DEBUG_SAVEALL = 32;
  readonly DEBUG_LEAK = 2 | 4 | 32;
  /** gc.callbacks: called with "start" and "stop" around every collection, automatic ones too. */
  callbacks: GcCallback[] = [];
  /** Where the debug output goes (CPython's sys.stderr). */
  stderr: (text: string) => void = (text) => {
    process.stderr.write(text);
  };
  readonly #space: GcHost;
  #started = 0;

  constructor(space: GcHost) {
    this.#space = space;
  }

  enable(): void {
    this.#space.exports('gc.enable').gcSetEnabled(1);
  }

  disable(): void {
    this.#space.exports('gc.disable').gcSetEnabled(0);
  }

  isEnabled(): boolean {
    return this.#space.exports('gc.isEnabled').gcIsEnabled() !== 0;
  }

  /**
   * Collects `generation` and every younger one; returns the number of unreachable objects
   * found (CPython's gc.collect()). 0 when called while a collection runs (from a finalizer).
   */
  collect(generation = 2): number {
    if (!Number.isInteger(generation) || generation < 0 || generation >= NUM_GENERATIONS) {
      throw generationError(generation);
    }
    const ex = this.#space.exports('gc.collect');
    const world = this.#space.world;
    if (world) return this.#collectStoppingTheWorld(world, ex as FreeThreadedGcExports, generation, 'gc.collect');
    return ex.gcCollect(generation) >>> 0;
  }

  /**
   * A free-threaded heap's automatic collection, once the call that scheduled it ends (counted
   * under generation 0, as 3.13t does). What it throws, but a broken heap, is unraisable: the
   * call it ends has done its work and returns.
   */
  collectScheduled(): void {
    const ex = this.#space.exports('gc.collect') as FreeThreadedGcExports;
    try {
      this.#collectStoppingTheWorld(this.#space.world!, ex, 0, 'automatic collection');
    } catch (error) {
      if (error instanceof HeapCorruptionError) throw error;
      this.#space.reportUnraisable(error, 0, 'Exception ignored in: automatic garbage collection');
    }
  }

  /**
   * gc_free_threading.c's collection: callbacks told (world running); the world stopped;
   * every queue merged and the unreachable set found over the whole heap, weakrefs to it
   * cleared; the world restarted; what the merge left at 0 freed, weakref callbacks and
   * finalizers run; the world stopped again to see what they resurrected (only when finalizers
   * ran); the cycles broken with the world running; callbacks told.
   */
  #collectStoppingTheWorld(world: World, ex: FreeThreadedGcExports, generation: number, operation: string): number {
    if (ex.gcCollecting() !== 0) return 0;
    this.onEvent(0, generation, 0, 0);
    world.stop(operation);
    let finalizersDue: number;
    try {
      ex.threadMergeAll();
      finalizersDue = ex.gcCollectStopped();
    } finally {
      world.restart(generation);
    }
    ex.threadReleaseKept();
    const freed = ex.gcCollectRestarted(finalizersDue);
    if (finalizersDue) {
      world.stop(operation);
      try {
        ex.gcCollectResurrected();
      } finally {
        world.restart(generation);
      }
    }
    const found = ex.gcCollectDelete(generation, finalizersDue, freed) >>> 0;
    this.onEvent(1, generation, found, 0);
    return found;
  }

  /** [count0, count1, count2]: see the counting rules in assembly/gc/collector.ts. */
  getCount(): [number, number, number] {
    const ex = this.#space.exports('gc.getCount');
    return [ex.gcGetCount(0) >>> 0, ex.gcGetCount(1) >>> 0, ex.gcGetCount(2) >>> 0];
  }

  getThreshold(): [number, number, number] {
    const ex = this.#space.exports('gc.getThreshold');
    return [ex.gcGetThreshold(0) >>> 0, ex.gcGetThreshold(1) >>> 0, ex.gcGetThreshold(2) >>> 0];
  }

  /** Sets the thresholds given; threshold0 = 0 turns automatic collection off. */
  setThreshold(threshold0: number, threshold1?: number, threshold2?: number): void {
    const values = [threshold0, threshold1, threshold2];
    values.forEach((value, g) => {
      if (value !== undefined && (typeof value !== 'number' || value >>> 0 !== value)) throw thresholdError(`threshold${g}`, value);
    });
    const ex = this.#space.exports('gc.setThreshold');
    values.forEach((value, g) => {
      if (value !== undefined) ex.gcSetThreshold(g, value);
    });
  }

  getDebug(): number {
    return this.#space.exports('gc.getDebug').gcGetDebug() >>> 0;
  }

  setDebug(flags: number): void {
    if (typeof flags !== 'number' || flags >>> 0 !== flags) throw thresholdError('flags', flags);
    this.#space.exports('gc.setDebug').gcSetDebug(flags);
  }

  getStats(): GcGenerationStats[] {
    const ex = this.#space.exports('gc.getStats');
    const world = this.#space.world;
    return [0, 1, 2].map((g) => ({
      collections: ex.gcStat(g, 0) >>> 0,
      collected: ex.gcStat(g, 1) >>> 0,
      uncollectable: ex.gcStat(g, 2) >>> 0,
      ...world?.pauses(g),
    }));
  }

  /** The tracked objects of a generation, or of all three (not the permanent one). */
  getObjects(generation?: number): number[] {
    if (generation !== undefined && (!Number.isInteger(generation) || generation < 0 || generation >= NUM_GENERATIONS)) {
      throw generationError(generation);
    }
    return this.#list('gc.getObjects', generation ?? ALL_GENERATIONS, 0);
  }

  /** The tracked objects (generations 0 to 2) that refer to any of `objects`. */
  getReferrers(...objects: number[]): number[] {
    const found = new Set<number>();
    for (const o of objects) {
      this.#object('gc.getReferrers', o);
      for (const referrer of this.#list('gc.getReferrers', ALL_GENERATIONS, o)) found.add(referrer);
    }
    return [...found];
  }

  /** The objects that `objects` refer to (only objects with a GC header have referents). */
  getReferents(...objects: number[]): number[] {
    const ex = this.#space.exports('gc.getReferents');
    const result: number[] = [];
    for (const o of objects) {
      this.#object('gc.getReferents', o);
      for (let start = 0; ; ) {
        const n = ex.gcListReferents(o, start);
        if (n === FAILED) throw new InvalidObjectError('gc.getReferents', o);
        const io = this.#io(ex);
        for (let i = 0; i < n; i++) if (io[i] !== 0) result.push(io[i]);
        if (n < io.length) break;
        start += n;
      }
    }
    return result;
  }

  isTracked(o: number): boolean {
    this.#object('gc.isTracked', o);
    const tracked = this.#space.exports('gc.isTracked').gcIsTracked(o);
    if (tracked === FAILED) throw new InvalidObjectError('gc.isTracked', o);
    return tracked === 1;
  }

  /** Whether the object's finalizer has run (PEP 442). */
  isFinalized(o: number): boolean {
    this.#object('gc.isFinalized', o);
    const finalized = this.#space.exports('gc.isFinalized').gcIsFinalized(o);
    if (finalized === FAILED) throw new InvalidObjectError('gc.isFinalized', o);
    return finalized === 1;
  }

  /** Moves every tracked object to the permanent generation, out of reach of collections. */
  freeze(): void {
    this.#space.exports('gc.freeze').gcFreeze();
  }

  /** Moves the permanent generation back into the oldest one. */
  unfreeze(): void {
    this.#space.exports('gc.unfreeze').gcUnfreeze();
  }

  getFreezeCount(): number {
    return this.#space.exports('gc.getFreezeCount').gcGenerationSize(PERMANENT) >>> 0;
  }

  /** gc.garbage: the objects DEBUG_SAVEALL kept (a copy; the heap holds a reference to each). */
  get garbage(): number[] {
    const ex = this.#space.exports('gc.garbage');
    const count = ex.gcGarbageCount() >>> 0;
    if (count === 0) return [];
    const items = ex.gcGarbageItems() >>> 0;
    return Array.from(new Uint32Array(ex.memory.buffer, items, count));
  }

  /** Empties gc.garbage, releasing its references (del gc.garbage[:]). */
  clearGarbage(): void {
    this.#space.exports('gc.clearGarbage').gcClearGarbage();
  }

  // ───────────── called from Wasm ─────────────

  /** A collection starts (phase 0) or stops (phase 1): debug output and callbacks, in CPython's order. */
  onEvent(phase: number, generation: number, collected: number, uncollectable: number): void {
    const debug = (this.getDebug() & this.DEBUG_STATS) !== 0;
    if (phase === 0) {
      this.#runCallbacks('start', { generation, collected: 0, uncollectable: 0 });
      if (debug) {
        const ex = this.#space.exports('gc.collect');
        const sizes = [0, 1, 2].map((g) => ex.gcGenerationSize(g) >>> 0);
        this.stderr(
          `gc: collecting generation ${generation}...\n` +
            `gc: objects in each generation: ${sizes.join(' ')}\n` +
            `gc: objects in permanent generation: ${ex.gcGenerationSize(PERMANENT) >>> 0}\n`,
        );
        this.#started = performance.now();
      }
      return;
    }
    if (debug) {
      const elapsed = (performance.now() - this.#started) / 1000;
      this.stderr(`gc: done, ${collected + uncollectable} unreachable, ${uncollectable} uncollectable, ${elapsed.toFixed(4)}s elapsed\n`);
    }
    this.#runCallbacks('stop', { generation, collected, uncollectable });
  }

  /** DEBUG_COLLECTABLE: one line per unreachable object found. */
  onDebugObject(o: number): void {
    this.stderr(`gc: collectable ${this.#space.debugName(o)}\n`);
  }

  #runCallbacks(phase: 'start' | 'stop', info: GcCallbackInfo): void {
    for (const callback of [...this.callbacks]) {
      try {
        callback(phase, { ...info });
      } catch (error) {
        if (error instanceof HeapCorruptionError) throw error;
        this.#space.reportUnraisable(error, 0, `Exception ignored in: <gc callback ${callback.name || 'anonymous'}>`);
      }
    }
  }

  // ───────────── helpers ─────────────

  #object(operation: string, o: unknown): asserts o is number {
    this.#space.exports(operation);
    if (typeof o !== 'number' || o >>> 0 !== o || !this.#space.isObject(o)) {
      throw new InvalidObjectError(operation, typeof o === 'number' ? o : 0);
    }
  }

  #io(ex: GcExports): Uint32Array {
    return new Uint32Array(ex.memory.buffer, ex.ioBuffer() >>> 0, ex.ioWords());
  }

  /** Lists generation(s) `generation`, or only the objects referring to `referent`, batch by batch. */
  #list(operation: string, generation: number, referent: number): number[] {
    const ex = this.#space.exports(operation);
    const result: number[] = [];
    for (let after = 0; ; ) {
      const n = ex.gcListObjects(generation, after, referent);
      const io = this.#io(ex);
      for (let i = 0; i < n; i++) result.push(io[i]);
      if (n < io.length) return result;
      after = io[n - 1];
    }
  }
}
