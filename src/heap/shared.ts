// One heap in a shared WebAssembly.Memory, used by several instances (one per worker), and the
// GIL that keeps them from running inside it at once.
//
// Everything the instances must agree on lives in the heap's linear memory: the allocator and
// collector state in the heap header (assembly/memory/header.ts), and, in the shared-state
// region the core reserves for the host and never touches, the GIL, its statistics and the
// table of attachments, laid out here:
//
// ╒══════════════════ Shared state (core export sharedState(), 2048 bytes) ══════════════════╕
//  i32 words
//   +0    LOCK        0 free, 1 held, 2 held and someone may be asleep on it
//   +4    HOLDER      the attachment holding the GIL, 0 when free
//   +8    LAST        the attachment that held it last (a new holder is a handoff)
//   +12   MAGIC       MAGIC once the owner has set the region up
//   +16   LAYOUT      LAYOUT_VERSION
//   +20   STATUS      LIVE, or DISPOSED once an instance disposed the heap
//   +24   MODE        1 'gil', 2 'none', 3 'free-threaded'
//   +28   BROKEN      the INVARIANTS code an instance found broken (BROKEN_UNKNOWN: a trap
//                     without one), 0 while the heap is sound
//   +32   BROKEN_AT   the address that invariant was about
//   +36   RECOVERED   GILs taken back from attachments whose worker exited holding one
//   +40   STOP        'free-threaded': the attachment stopping the world, 0 while it runs
//   +44   STOPS       times the world was stopped
//   +48   PARKS       times a thread parked at a stopped world's entry
//   +52   LOCK_RECOVERED  'free-threaded': heap locks (the core's, memory/lock.ts) taken back
//                     from threads whose worker exited holding one
//  f64 words, written only by the GIL's holder
//   +64   acquisitions, contended acquisitions, handoffs, sleeps, total wait (ns), longest wait (ns)
//   +112  wait histogram: contended acquisitions by wait, WAIT_BUCKETS upper bounds
//   +176  'free-threaded': the collections' pauses, per generation: count, total (ns), longest (ns)
//  i32 words
//   +256  ATTACHMENTS slots: the worker's threadId + 1 while attached, 0 when free; an
//         attachment's id is its slot + 1
// ╘═══════════════════════════════════════════════════════════════════════════════════════════╛
//
// The lock is Drepper's "futex mutex #3" (REFERENCE.md section 12, where it passed 20/20 runs):
// lock is compare-and-swap 0 -> 1, then a short spin re-reading the word, then swap in 2 and
// sleep while the old value was not 0; unlock subtracts 1 and, if the old value was not 1,
// stores 0 and wakes one sleeper. It runs in JS, so the sleep is Atomics.wait in the host: Node
// 20's baseline Wasm compiler loses registers across a memory.atomic.wait32 inside Wasm.
//
// Holding is per instance and re-entrant: `depth` counts the calls of this instance inside the
// GIL (gil.run, a finalizer calling back into the heap), and only the outermost one takes and
// releases the word, so a nested call costs two additions.

import { HeapCorruptionError, HeapDisposedError, INVARIANTS } from './errors.js';

const LOCK = 0;
const HOLDER = 1;
const LAST = 2;
const MAGIC_WORD = 3;
const LAYOUT_WORD = 4;
const STATUS = 5;
const MODE = 6;
const BROKEN = 7;
const BROKEN_AT = 8;
const RECOVERED = 9;
const STOP = 10;
const STOPS = 11;
const PARKS = 12;
const LOCK_RECOVERED = 13;
const STATS_F64 = 8;
const ACQUISITIONS = STATS_F64;
const CONTENDED = STATS_F64 + 1;
const HANDOFFS = STATS_F64 + 2;
const SLEEPS = STATS_F64 + 3;
const WAIT_NS = STATS_F64 + 4;
const MAX_WAIT_NS = STATS_F64 + 5;
const HISTOGRAM = STATS_F64 + 6;
/** After the histogram (WAIT_BUCKETS.length words, declared below). */
const PAUSES = HISTOGRAM + 8;
const F64_WORDS = PAUSES + 9;
const ATTACHMENTS = 64;
/** Slots of the attachment table: the most instances a heap can have at once. */
export const MAX_ATTACHMENTS = 256;
const STATE_BYTES = (ATTACHMENTS + MAX_ATTACHMENTS) * 4;

const MAGIC = 0x504d_5957;
/** Changes whenever this layout does: an instance refuses a heap laid out by another. */
const LAYOUT_VERSION = 3;
const DISPOSED = 1;
/** BROKEN's value for a trap that named no invariant. */
const BROKEN_UNKNOWN = -1;
/** Upper bounds, in seconds, of the wait histogram's buckets (the last is +Inf). */
export const WAIT_BUCKETS = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, Infinity] as const;
/** Times the lock word is re-read before sleeping: about a microsecond on this machine. */
const SPIN = 100;

/** How the instances of a shared heap keep out of each other's way (HeapOptions.concurrency). */
export type Concurrency = 'gil' | 'free-threaded' | 'none';
const MODES: Record<Concurrency, number> = { gil: 1, none: 2, 'free-threaded': 3 };

/** What gil.stats() returns: counted since the heap was created, over every instance. */
export interface GilStats {
  /** Times an instance took the GIL (outermost calls and gil.run; nested calls do not count). */
  acquisitions: number;
  /** Acquisitions that found it held and had to spin or sleep. */
  contended: number;
  /** Acquisitions by another instance than the one that held it last. */
  handoffs: number;
  /** Times a waiting instance went to sleep in Atomics.wait. */
  sleeps: number;
  /** Time spent waiting, over all contended acquisitions, and the longest single wait. */
  waitSeconds: number;
  maxWaitSeconds: number;
  /** Contended acquisitions by wait: counts[i] waited at most le[i] seconds (and more than le[i - 1]). */
  waitHistogram: { le: number[]; counts: number[] };
  /** GILs taken back from workers that exited holding one (Heap#watch). */
  recoveries: number;
  /** This instance's part of acquisitions, contended and waitSeconds. */
  thisInstance: { acquisitions: number; contended: number; waitSeconds: number };
  /**
   * 'free-threaded' only: times the world was stopped (collections and whole-heap readers), times a
   * thread parked for it, and heap locks Heap#watch took back from workers that died holding one.
   */
  world?: { stops: number; parks: number; heapLockRecoveries: number };
}

/** The structured-cloneable handle `heap.share()` returns and `Heap.attach` takes. */
export interface SharedHeapHandle {
  kind: 'pymalloc-wasm/shared-heap';
  /** The package version that made the heap: the layout of its memory and exports. */
  version: string;
  build: 'release' | 'debug';
  concurrency: Concurrency;
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** The resolved configuration (HeapConfig). */
  config: unknown;
}

/** The shared state as one instance sees it. */
export class SharedState {
  readonly #words: Int32Array;
  readonly #f64: Float64Array;

  constructor(memory: WebAssembly.Memory, address: number, bytes: number) {
    if (STATE_BYTES > bytes) throw new Error(`the shared state needs ${STATE_BYTES} bytes, the core reserves ${bytes}`);
    // The region lies below the arenas, so views made now never need to grow.
    this.#words = new Int32Array(memory.buffer, address, STATE_BYTES >> 2);
    this.#f64 = new Float64Array(memory.buffer, address, F64_WORDS);
  }

  get words(): Int32Array { return this.#words; }
  get f64(): Float64Array { return this.#f64; }

  /** Sets the region up in a new heap (the owner, before any other instance exists). */
  create(concurrency: Concurrency): void {
    this.#words.fill(0); // the statistics' f64 words too: they lie inside
    this.#words[MODE] = MODES[concurrency];
    this.#words[LAYOUT_WORD] = LAYOUT_VERSION;
    Atomics.store(this.#words, MAGIC_WORD, MAGIC);
  }

  /** Why an instance cannot attach to this memory, or undefined. */
  refusal(concurrency: Concurrency): string | undefined {
    if (Atomics.load(this.#words, MAGIC_WORD) !== MAGIC) return 'the memory holds no shared heap';
    if (this.#words[LAYOUT_WORD] !== LAYOUT_VERSION) {
      return `its shared state has layout ${this.#words[LAYOUT_WORD]}, this version reads layout ${LAYOUT_VERSION}`;
    }
    if (this.#words[MODE] !== MODES[concurrency]) return `the handle says concurrency '${concurrency}', the heap runs another`;
    if (Atomics.load(this.#words, STATUS) === DISPOSED) return 'the heap has been disposed';
    return undefined;
  }

  /** Takes a free slot for the calling thread: the attachment id, or 0 when all are taken. */
  attach(threadId: number): number {
    for (let slot = 0; slot < MAX_ATTACHMENTS; slot++) {
      if (Atomics.compareExchange(this.#words, ATTACHMENTS + slot, 0, threadId + 1) === 0) return slot + 1;
    }
    return 0;
  }

  detach(id: number): void {
    Atomics.store(this.#words, ATTACHMENTS + id - 1, 0);
  }

  /** The attachments of the thread, still attached. */
  slotsOf(threadId: number): number[] {
    const ids: number[] = [];
    for (let slot = 0; slot < MAX_ATTACHMENTS; slot++) if (Atomics.load(this.#words, ATTACHMENTS + slot) === threadId + 1) ids.push(slot + 1);
    return ids;
  }

  /** The attachments of the thread, detached: used once it has exited. */
  releaseThread(threadId: number): number[] {
    const ids: number[] = [];
    for (let slot = 0; slot < MAX_ATTACHMENTS; slot++) {
      if (Atomics.compareExchange(this.#words, ATTACHMENTS + slot, threadId + 1, 0) === threadId + 1) ids.push(slot + 1);
    }
    return ids;
  }

  /** Attachments in use. */
  attachments(): number {
    let count = 0;
    for (let slot = 0; slot < MAX_ATTACHMENTS; slot++) if (Atomics.load(this.#words, ATTACHMENTS + slot) !== 0) count++;
    return count;
  }

  /** The attachment holding the lock, 0 when it is free. */
  get holder(): number { return Atomics.load(this.#words, HOLDER); }

  get disposed(): boolean { return Atomics.load(this.#words, STATUS) === DISPOSED; }
  markDisposed(): void { Atomics.store(this.#words, STATUS, DISPOSED); }

  /** Records that an instance found the heap broken, so that every other refuses it too. */
  markBroken(code: number, address: number): void {
    if (Atomics.compareExchange(this.#words, BROKEN, 0, code || BROKEN_UNKNOWN) === 0) {
      Atomics.store(this.#words, BROKEN_AT, address | 0);
    }
  }

  /** The error an instance that did not see the heap break throws for `operation`, or undefined. */
  brokenError(operation: string): HeapCorruptionError | undefined {
    const code = Atomics.load(this.#words, BROKEN);
    if (code === 0) return undefined;
    const invariant = code === BROKEN_UNKNOWN ? 'a trap inside the core, in another instance of the shared heap' : INVARIANTS[code] ?? `invariant ${code}`;
    return new HeapCorruptionError(invariant, Atomics.load(this.#words, BROKEN_AT) >>> 0, operation);
  }

  /** A nonzero STATUS or BROKEN: the one test an entry makes before doing its work. */
  get refusing(): boolean { return (this.#words[STATUS] | this.#words[BROKEN]) !== 0; }

  stats(local: GilStats['thisInstance']): GilStats {
    const f = this.#f64;
    return {
      acquisitions: f[ACQUISITIONS],
      contended: f[CONTENDED],
      handoffs: f[HANDOFFS],
      sleeps: f[SLEEPS],
      waitSeconds: f[WAIT_NS] / 1e9,
      maxWaitSeconds: f[MAX_WAIT_NS] / 1e9,
      waitHistogram: { le: [...WAIT_BUCKETS], counts: Array.from(f.subarray(HISTOGRAM, HISTOGRAM + WAIT_BUCKETS.length)) },
      recoveries: Atomics.load(this.#words, RECOVERED),
      thisInstance: { ...local },
    };
  }
}

/** gil.run's argument, refused with a TypeError unless it is a function. */
function runnable<T>(fn: () => T): () => T {
  if (typeof fn !== 'function') throw new TypeError(`gil.run needs a function, not ${fn === null ? 'null' : typeof fn}`);
  return fn;
}

/** What entering the heap checks, and what it throws when the heap is gone or broken. */
function refusal(state: SharedState, operation: string): Error {
  return state.brokenError(operation) ?? new HeapDisposedError(operation);
}

/**
 * The lock every entry into a shared heap goes through. For 'gil' it is the GIL; for 'none' it
 * takes nothing (the race is the point) and only refuses calls into a disposed or broken heap.
 */
export interface HeapLock {
  readonly concurrency: Concurrency;
  enter(operation: string): void;
  exit(): void;
  /** Runs fn with the lock held across all its calls into the heap, re-entrantly; returns its result. */
  run<T>(fn: () => T): T;
  stats(): GilStats;
  /** Whether this instance holds the lock now. */
  readonly held: boolean;
}

/** The GIL of one instance: its attachment id, its depth, and its own counts. */
export class Gil implements HeapLock {
  readonly concurrency: Concurrency = 'gil';
  readonly #state: SharedState;
  readonly #w: Int32Array;
  readonly #f: Float64Array;
  readonly #id: number;
  #depth = 0;
  readonly #local = { acquisitions: 0, contended: 0, waitSeconds: 0 };

  constructor(state: SharedState, id: number) {
    this.#state = state;
    this.#w = state.words;
    this.#f = state.f64;
    this.#id = id;
  }

  get held(): boolean { return this.#depth > 0; }
  /** Calls of this instance inside the lock now (1: the outermost only). */
  protected get depth(): number { return this.#depth; }

  enter(operation: string): void {
    if (this.#depth++ !== 0) return;
    const w = this.#w;
    if (Atomics.compareExchange(w, LOCK, 0, 1) !== 0) this.#wait();
    const f = this.#f;
    f[ACQUISITIONS]++;
    this.#local.acquisitions++;
    const last = w[LAST];
    if (last !== this.#id) {
      if (last !== 0) f[HANDOFFS]++;
      w[LAST] = this.#id;
    }
    w[HOLDER] = this.#id;
    if (this.#state.refusing) {
      this.exit();
      throw refusal(this.#state, operation);
    }
    this.entered(operation);
  }

  /** What an outermost acquisition does once the GIL is held (HeapMutex's safe point); nothing here. */
  protected entered(_operation: string): void {}

  exit(): void {
    if (--this.#depth !== 0) return;
    const w = this.#w;
    w[HOLDER] = 0;
    if (Atomics.sub(w, LOCK, 1) !== 1) {
      Atomics.store(w, LOCK, 0);
      Atomics.notify(w, LOCK, 1);
    }
  }

  run<T>(fn: () => T): T {
    runnable(fn);
    this.enter('gil.run');
    try {
      return fn();
    } finally {
      this.exit();
    }
  }

  stats(): GilStats {
    return this.#state.stats(this.#local);
  }

  /** The contended path: spin a little, then sleep until the holder wakes us. */
  #wait(): void {
    const w = this.#w;
    const start = performance.now();
    let sleeps = 0;
    let acquired = false;
    for (let i = 0; i < SPIN && !acquired; i++) {
      acquired = Atomics.load(w, LOCK) === 0 && Atomics.compareExchange(w, LOCK, 0, 1) === 0;
    }
    if (!acquired) {
      while (Atomics.exchange(w, LOCK, 2) !== 0) {
        Atomics.wait(w, LOCK, 2);
        sleeps++;
      }
    }
    const waitNs = (performance.now() - start) * 1e6;
    const f = this.#f;
    f[CONTENDED]++;
    f[SLEEPS] += sleeps;
    f[WAIT_NS] += waitNs;
    if (waitNs > f[MAX_WAIT_NS]) f[MAX_WAIT_NS] = waitNs;
    let bucket = 0;
    while (waitNs > WAIT_BUCKETS[bucket] * 1e9) bucket++;
    f[HISTOGRAM + bucket]++;
    this.#local.contended++;
    this.#local.waitSeconds += waitNs / 1e9;
  }

  /**
   * Takes the GIL over from attachment `dead`, whose worker exited holding it (its thread runs
   * no more, so nothing else can release it): this instance holds it afterwards, at depth 1.
   * False if `dead` no longer holds it.
   */
  takeOver(dead: number): boolean {
    if (this.#depth !== 0 || Atomics.compareExchange(this.#w, HOLDER, dead, this.#id) !== dead) return false;
    this.#depth = 1;
    this.#w[LAST] = this.#id;
    Atomics.add(this.#w, RECOVERED, 1);
    return true;
  }
}

/** A thread's state word (ThreadState +16 in the core, docs/free-threaded.md): outside the heap, or inside a lock-free call. */
const DETACHED = 0;
const ATTACHED = 1;
/** How long a stop waits for one thread before it gives up: a live thread leaves a lock-free call within microseconds. */
export const STOP_TIMEOUT_MS = 5_000;
/** A stop's sleeps while a thread is still attached: short, so that an attachment released meanwhile is seen. */
const STOP_SLICE_MS = 1;
/** How long a stop re-reads a thread's word before it sleeps: longer than a lock-free call, so a plain exit is seen. */
const STOP_SPIN_MS = 0.02;
/**
 * x86 keeps stores in order (TSO): there a plain store is already a release store, and exit
 * needs no more (an xchg costs ~10 ns here, most of what entering and leaving costs). Elsewhere
 * (arm64) exit's store is an Atomics.store, a store-release there.
 */
const ORDERED_STORES = process.arch === 'x64' || process.arch === 'ia32';

/** A collection's pauses, as gc.getStats() adds them on a free-threaded heap. */
export interface PauseStats {
  pauses: number;
  pauseSeconds: number;
  maxPauseSeconds: number;
}

/**
 * Stop-the-world for one instance of a free-threaded heap (docs/free-threaded.md, part 5).
 *
 * Every lock-free call runs between enter() and exit(): enter stores ATTACHED in this thread's
 * state word and then reads STOP, both sequentially consistent, while a stopper stores STOP and
 * then reads every state word; so either the thread sees the request and parks, or the stopper
 * sees it attached and waits for its exit (Dekker's order). A thread outside the heap is
 * DETACHED and never waited for; one waiting for the heap mutex is outside too (a decref that
 * needs the mutex exits first), and one holding it can only be the stopper itself, which never
 * parks. Only the holder of the heap mutex stops the world: so there is one stopper, and no
 * locked call is in flight while it holds the world.
 */
export class World {
  readonly #state: SharedState;
  readonly #words: Int32Array;
  readonly #id: number;
  /**
   * Whether this instance holds the heap mutex (set by HeapMutex on its outermost acquisition and
   * release). While it does, no other instance can stop the world, since a stop needs the mutex:
   * its lock-free calls then skip the entry and exit (a loop inside gil.run pays neither fence).
   */
  mutexHeld = false;
  /** The whole memory, as Int32 words: the state words lie in the core's thread table. */
  #all = new Int32Array(0);
  #mine = 0;
  #table = 0;
  #stride = 0;
  #stoppedAt = 0;
  /** Stops inside stops (check() from onStopped, say): only the outermost stops and restarts. */
  #depth = 0;
  /** Called inside every pause once the world is stopped, by the stopper (a hook for tests and tools). */
  onStopped: (() => void) | undefined;

  constructor(state: SharedState, id: number) {
    this.#state = state;
    this.#words = state.words;
    this.#id = id;
  }

  /**
   * Binds the instance to its core, once its thread is attached: `stateWord(id)` is the core's
   * threadStateWord, the address of thread id's word. The table lies below the memory's size now.
   */
  bind(memory: WebAssembly.Memory, stateWord: (id: number) => number): void {
    this.#all = new Int32Array(memory.buffer);
    this.#table = stateWord(0) >>> 2;
    this.#stride = (stateWord(1) - stateWord(0)) >>> 2;
    this.#mine = this.#table + this.#id * this.#stride;
    // A worker that died inside a call in this slot, unwatched, may have left it attached.
    Atomics.store(this.#all, this.#mine, DETACHED);
  }

  /** Before a lock-free call: parks here while the world is stopped. */
  enter(): void {
    if (this.mutexHeld) return;
    Atomics.store(this.#all, this.#mine, ATTACHED);
    if (Atomics.load(this.#words, STOP) !== 0) this.#park();
  }

  /**
   * After a lock-free call. The load of STOP may pass a plain store on x86, so a stopper that
   * saw this thread attached may miss the notify: it sees the store in its spin instead.
   */
  exit(): void {
    if (this.mutexHeld) return;
    if (ORDERED_STORES) this.#all[this.#mine] = DETACHED;
    else Atomics.store(this.#all, this.#mine, DETACHED);
    if (Atomics.load(this.#words, STOP) !== 0) Atomics.notify(this.#all, this.#mine);
  }

  #park(): void {
    const all = this.#all;
    while (true) {
      Atomics.store(all, this.#mine, DETACHED);
      Atomics.notify(all, this.#mine);
      Atomics.add(this.#words, PARKS, 1);
      for (let stopper; (stopper = Atomics.load(this.#words, STOP)) !== 0; ) Atomics.wait(this.#words, STOP, stopper);
      Atomics.store(all, this.#mine, ATTACHED);
      if (Atomics.load(this.#words, STOP) === 0) return;
    }
  }

  /**
   * Stops the world: the caller holds the heap mutex. Returns once no other thread is inside a
   * lock-free call. An attachment released meanwhile (heap.watch, for a worker that died
   * attached) is not waited for; one still attached after STOP_TIMEOUT_MS restarts the world
   * and throws, naming the operation.
   */
  stop(operation: string): void {
    if (this.#depth++ !== 0) return;
    const words = this.#words;
    this.#stoppedAt = performance.now();
    Atomics.store(words, STOP, this.#id);
    Atomics.add(words, STOPS, 1);
    for (let slot = 0; slot < MAX_ATTACHMENTS; slot++) {
      if (slot + 1 !== this.#id && Atomics.load(words, ATTACHMENTS + slot) !== 0) this.#waitFor(slot, operation);
    }
    this.onStopped?.();
  }

  #waitFor(slot: number, operation: string): void {
    const all = this.#all;
    const word = this.#table + (slot + 1) * this.#stride;
    for (const spinUntil = performance.now() + STOP_SPIN_MS; performance.now() < spinUntil; ) {
      if (Atomics.load(all, word) !== ATTACHED) return;
    }
    const deadline = performance.now() + STOP_TIMEOUT_MS;
    while (Atomics.load(all, word) === ATTACHED && Atomics.load(this.#words, ATTACHMENTS + slot) !== 0) {
      if (performance.now() > deadline) {
        this.restart();
        throw new Error(
          `${operation}: attachment ${slot + 1} stayed inside a heap call for ${STOP_TIMEOUT_MS} ms, so the world could not be stopped ` +
            '(a worker terminated inside a call, without heap.watch?)',
        );
      }
      Atomics.wait(all, word, ATTACHED, STOP_SLICE_MS);
    }
  }

  /** Lets the world run again; a collection's pause is counted under `generation`. */
  restart(generation?: number): void {
    if (--this.#depth !== 0) return;
    Atomics.store(this.#words, STOP, 0);
    Atomics.notify(this.#words, STOP);
    if (generation === undefined) return;
    const ns = (performance.now() - this.#stoppedAt) * 1e6;
    const f = this.#state.f64;
    const at = PAUSES + generation * 3;
    f[at]++;
    f[at + 1] += ns;
    if (ns > f[at + 2]) f[at + 2] = ns;
  }

  /** fn with the world stopped (the caller holds the heap mutex). */
  whileStopped<T>(operation: string, fn: () => T): T {
    this.stop(operation);
    try {
      return fn();
    } finally {
      this.restart();
    }
  }

  /** Whether this instance holds the world stopped now. */
  get stopped(): boolean { return this.#depth > 0; }

  /** Attachment `id`'s worker has exited (heap.watch): it is outside the heap for good. */
  release(id: number): void {
    if (this.#stride === 0) return;
    const word = this.#table + id * this.#stride;
    Atomics.store(this.#all, word, DETACHED);
    Atomics.notify(this.#all, word);
  }

  /** Stops of the world so far, parks of threads at its entries, and heap locks taken back from dead threads. */
  counts(): { stops: number; parks: number; heapLockRecoveries: number } {
    const words = this.#words;
    return { stops: Atomics.load(words, STOPS), parks: Atomics.load(words, PARKS), heapLockRecoveries: Atomics.load(words, LOCK_RECOVERED) };
  }

  /** Heap#watch took the core's heap lock over from a dead thread. */
  countHeapLockRecovery(): void {
    Atomics.add(this.#words, LOCK_RECOVERED, 1);
  }

  pauses(generation: number): PauseStats {
    const f = this.#state.f64;
    const at = PAUSES + generation * 3;
    return { pauses: f[at], pauseSeconds: f[at + 1] / 1e9, maxPauseSeconds: f[at + 2] / 1e9 };
  }
}

const worlds = new WeakMap<object, World>();

/** The world of a free-threaded heap's instance (for tests and tools: not in the public API). */
export function worldOf(heap: object): World | undefined {
  return worlds.get(heap);
}

/** Registers the world of a heap's instance for worldOf. */
export function registerWorld(heap: object, world: World): void {
  worlds.set(heap, world);
}

/**
 * The heap mutex of concurrency 'free-threaded' (docs/free-threaded.md): the GIL's lock, held by
 * every call but the refcount operations, which run lock-free (between world.enter() and
 * world.exit()) and take it only for the rest of a decref that must queue or deallocate. Each
 * outermost acquisition is a safe point: the instance merges the objects other threads queued
 * to it. An automatic collection the core schedules during a call runs when its outermost call
 * ends, still holding the mutex (CPython's eval breaker).
 */
export class HeapMutex extends Gil {
  override readonly concurrency: Concurrency = 'free-threaded';
  readonly world: World;
  /** Outermost acquisitions run it, for the operation entering; set by the heap once its core exists. */
  safePoint: (operation: string) => void = () => {};
  /** Set by the core's gcScheduled import; the collection runs when the outermost call ends. */
  collectionDue = false;
  /** Runs a scheduled collection; set by the object space. */
  collectScheduled: () => void = () => {};

  constructor(state: SharedState, id: number) {
    super(state, id);
    this.world = new World(state, id);
  }

  protected override entered(operation: string): void {
    this.world.mutexHeld = true;
    try {
      this.safePoint(operation);
    } catch (error) {
      this.exit();
      throw error;
    }
  }

  override exit(): void {
    if (this.depth !== 1) {
      super.exit();
      return;
    }
    try {
      if (this.collectionDue) {
        this.collectionDue = false;
        this.collectScheduled();
      }
    } finally {
      this.world.mutexHeld = false;
      super.exit();
    }
  }

  override stats(): GilStats {
    return { ...super.stats(), world: this.world.counts() };
  }
}

/** concurrency 'none': no lock at all, by design; only a disposed or broken heap is refused. */
export class NoLock implements HeapLock {
  readonly concurrency = 'none';
  readonly held = false;
  readonly #state: SharedState;

  constructor(state: SharedState) {
    this.#state = state;
  }

  enter(operation: string): void {
    if (this.#state.refusing) throw refusal(this.#state, operation);
  }

  exit(): void {}

  run<T>(fn: () => T): T {
    return runnable(fn)();
  }

  stats(): GilStats {
    return this.#state.stats({ acquisitions: 0, contended: 0, waitSeconds: 0 });
  }
}

/** The lock of a heap that is not shared: gil.run calls its function, and nothing is counted. */
export const UNSHARED: HeapLock = {
  concurrency: 'gil', held: false, enter() {}, exit() {},
  run: (fn) => runnable(fn)(),
  stats: () => ({
    acquisitions: 0, contended: 0, handoffs: 0, sleeps: 0, waitSeconds: 0, maxWaitSeconds: 0,
    waitHistogram: { le: [], counts: [] }, recoveries: 0, thisInstance: { acquisitions: 0, contended: 0, waitSeconds: 0 },
  }),
};

/**
 * Replaces, on `target`, every method (and getter) of `proto` but those in `skip` with one that
 * holds `lock` around the call. Nested calls (a method calling another, a finalizer calling back,
 * a call inside gil.run) find the lock held and go straight to the method.
 */
export function lockMethods(target: object, proto: object, lock: HeapLock, skip: ReadonlySet<string>, prefix = ''): void {
  for (const name of Object.getOwnPropertyNames(proto)) {
    if (name === 'constructor' || skip.has(name)) continue;
    const descriptor = Object.getOwnPropertyDescriptor(proto, name)!;
    const operation = prefix + name;
    if (typeof descriptor.value === 'function') {
      const method = descriptor.value as (...args: unknown[]) => unknown;
      Object.defineProperty(target, name, {
        configurable: true,
        writable: true,
        value: (...args: unknown[]) => {
          if (lock.held) return method.apply(target, args);
          lock.enter(operation);
          try {
            return method.apply(target, args);
          } finally {
            lock.exit();
          }
        },
      });
    } else if (descriptor.get) {
      const get = descriptor.get;
      Object.defineProperty(target, name, {
        configurable: true,
        get: () => {
          if (lock.held) return get.call(target);
          lock.enter(operation);
          try {
            return get.call(target);
          } finally {
            lock.exit();
          }
        },
        set: descriptor.set && ((value: unknown) => descriptor.set!.call(target, value)),
      });
    }
  }
}
