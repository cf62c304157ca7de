import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { isMainThread, threadId, type Worker } from 'node:worker_threads';
import { resolveConfig, type HeapConfig, type HeapOptions } from './config.js';
import { buildFile } from './builds.js';
import {
  DETACHED, HeapCorruptionError, HeapDisposedError, InvalidAddressError, OutOfMemoryError, INVARIANTS,
  type InvalidAddressReason, type MemoryCorruptionError,
} from './errors.js';
import { debugError, readDebugRecord } from './debug.js';
import { CoreAssertion, CoreGuard } from './guard.js';
import { decodeStats, formatDebugMallocStats, type HeapStats } from './stats.js';
import {
  ObjectImports, ObjectSpace, refusingExports, type ObjectExports, type ObjectType, type TypeSpec, type UnraisableInfo,
  type WeakrefCallback, type DictKey, type DictLayout,
} from './objects.js';
import type { JsonValue } from './json.js';
import { GcModule } from './gc.js';
import { DEFAULT_DOMAIN, RAW_DOMAIN } from './snapshot.js';
import { Tracemalloc, type Tracer } from './tracemalloc.js';
import {
  Gil, HeapMutex, NoLock, SharedState, MAX_ATTACHMENTS, UNSHARED, lockMethods, registerWorld, type World, type Concurrency, type GilStats, type HeapLock,
  type SharedHeapHandle,
} from './shared.js';

/** The exports of assembly/abi/index.ts. Addresses come back as i32: callers apply >>> 0. */
interface CoreExports extends ObjectExports {
  memory: WebAssembly.Memory;
  heapInit(alignmentShift: number, threshold: number, poolShift: number, arenaShift: number, maxPages: number): number;
  malloc(size: number): number;
  calloc(count: number, size: number): number;
  realloc(address: number, size: number): number;
  free(address: number): number;
  memMalloc(size: number): number;
  memCalloc(count: number, size: number): number;
  memRealloc(address: number, size: number): number;
  memFree(address: number): number;
  rawMalloc(size: number): number;
  rawCalloc(count: number, size: number): number;
  rawRealloc(address: number, size: number): number;
  rawFree(address: number): number;
  debugHooksInit(flags: number): number;
  debugReport(): void;
  usableSize(address: number): number;
  owns(address: number): number;
  mallocMany(count: number): number;
  freeMany(count: number): number;
  ioBuffer(): number;
  ioWords(): number;
  stats(): void;
  check(): number;
  lastError(): number;
  errorAddress(): number;
  corruption(): number;
  placeFirstArena(pools: number): void;
  objectBlockBytes(o: number): number;
  sharedState(): number;
  sharedStateBytes(): number;
  /** The free-threaded build's (assembly/abi/threads.ts); absent from the other builds. */
  threadAttach?(id: number): number;
  threadDetach?(): void;
  threadMerge?(): number;
  threadRelease?(id: number): void;
  threadTakeHeapLock?(id: number): number;
  heapLockRelease?(): void;
  threadStateWord?(id: number): number;
}

/** Status codes of assembly/memory/header.ts. */
const OUT_OF_MEMORY = 1;
const BAD_GEOMETRY = 7;
const DEBUG_VIOLATION = 10;
/** The heap checker's code for a broken debug block (assembly/debug/hooks.ts). */
const DEBUG_BLOCK_BROKEN = 32;
/** debugHooksInit flags. */
const HOOKS_ON = 1;
const SERIAL_NUMBERS = 2;
const REASONS: Record<number, InvalidAddressReason> = {
  2: 'not-allocated',
  3: 'misaligned',
  4: 'empty-pool',
  5: 'double-free',
  6: 'never-allocated',
  8: 'object',
  9: 'object',
};

/**
 * Heaps place their first arena 0..FIRST_ARENA_PLACES-1 pools apart, in the order they are
 * created, so that two heaps built alike do not put their objects at the same addresses and a
 * handle passed to the wrong heap is refused (README, "Bad input", says exactly when).
 */
const FIRST_ARENA_PLACES = 8;
/** threadAttach's refusals (assembly/objects/brc.ts): no memory for the thread table, no tid left. */
const NO_THREAD_TABLE = 0;
const NO_THREAD_ID = 1;
const THREAD_IDS = 2 ** 23 - 1;
/** Refcounts from here up are immortal (src/heap/objects.ts). */
const IMMORTAL = 0x3fff_ffff;
let heapsCreated = 0;

const modules = new Map<string, Promise<WebAssembly.Module>>();

/** A module of build/ (src/heap/builds.ts says which runs a heap). */
function compiled(file: string): Promise<WebAssembly.Module> {
  let module = modules.get(file);
  if (!module) {
    const url = new URL(`../../build/${file}`, import.meta.url);
    module = readFile(url).then(
      (bytes) => WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>),
      (error: Error) => {
        modules.delete(file);
        throw new Error(`cannot load ${url.pathname} (run 'npm run build'): ${error.message}`);
      },
    );
    modules.set(file, module);
  }
  return module;
}

/** The version of this package: a shared heap's handle carries it, and Heap.attach compares. */
const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
/** Wasm pages the shared build declares (asconfig.json's initialMemory): its static data. */
const SHARED_INITIAL_PAGES = 2;
const HANDLE_KIND = 'pymalloc-wasm/shared-heap';

/** The heap's methods that a shared heap does not lock: they lock what they need themselves. */
const UNLOCKED = new Set(['memory', 'gc', 'share', 'detach', 'dispose', 'watch', 'tracemalloc', 'unraisableHook']);
/**
 * A free-threaded heap's: refcounts run lock-free (src/heap/objects.ts), and so do malloc, calloc,
 * realloc and free (per-thread pools) unless the debug hooks, whose records are shared, are on.
 */
const UNLOCKED_FREE_THREADED_HOOKED = new Set([...UNLOCKED, 'incref', 'decref', 'refcount']);
const UNLOCKED_FREE_THREADED = new Set([...UNLOCKED_FREE_THREADED_HOOKED, 'malloc', 'calloc', 'realloc', 'free']);
const UNLOCKED_GC = new Set(['onEvent', 'onDebugObject']);
const NOTHING = new Set<string>();

/**
 * The free-threaded instances of this worker: detached when it exits, as CPython merges a
 * thread's refcounts when the thread ends (a worker terminated from outside runs no exit
 * handler: Heap#watch releases it).
 */
const detachAtExit = new Set<Heap>();
let exitHandler = false;

function detachWhenThreadExits(heap: Heap): void {
  if (!exitHandler) {
    process.once('exit', () => {
      for (const h of detachAtExit) h.detach();
    });
    exitHandler = true;
  }
  detachAtExit.add(heap);
}

/** What an instance of a shared heap holds besides its exports. */
interface Sharing {
  state: SharedState;
  lock: HeapLock;
  /** This instance's attachment id. */
  id: number;
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
}

/** The core's imports for one instance: the object layer's, abort, and the memory of a shared heap. */
function coreImports(objectImports: ObjectImports, memory: () => WebAssembly.Memory | undefined, shared?: WebAssembly.Memory) {
  return {
    env: {
      ...objectImports.functions,
      ...(shared && { memory: shared, ...heapLockImports(shared) }),
      abort(message: number, file: number, line: number, column: number) {
        const m = memory();
        const where = m ? `${readString(m, file)}:${line}:${column}` : '';
        throw new CoreAssertion(`assertion failed in the heap core: ${m ? readString(m, message) : ''} ${where}`);
      },
    },
  };
}

/** The free-threaded core's heap lock sleeps here (assembly/memory/lock.ts): never in Wasm's own wait. */
function heapLockImports(memory: WebAssembly.Memory) {
  return {
    heapLockWait: (address: number, holder: number) => void Atomics.wait(new Int32Array(memory.buffer), address >>> 2, holder | 0),
    heapLockWake: (address: number) => void Atomics.notify(new Int32Array(memory.buffer), address >>> 2, 1),
  };
}

/** Reads an AssemblyScript string (UTF-16, byte length in the word before it) for abort(). */
function readString(memory: WebAssembly.Memory, pointer: number): string {
  if (!pointer) return '';
  const bytes = new Uint32Array(memory.buffer, pointer - 4, 1)[0];
  return String.fromCharCode(...new Uint16Array(memory.buffer, pointer, bytes >>> 1));
}

/**
 * Whether the value is a size or an address: an integer in [0, 2^32). The typeof test comes
 * first because `>>>` throws the engine's own TypeError on a bigint or a symbol.
 */
function isU32(value: unknown): value is number {
  return typeof value === 'number' && value >>> 0 === value;
}

function sizeError(name: string, value: unknown): Error {
  if (typeof value === 'bigint') return new TypeError(`${name} must be an integer in [0, 2^32) as a number, not the bigint ${value}n`);
  if (typeof value !== 'number') return new TypeError(`${name} must be a number, not ${typeof value}`);
  return new RangeError(`${name} must be an integer in [0, 2^32), not ${value}`);
}

function addressError(value: unknown): Error {
  return sizeError('address', value);
}

/** A value as a message shows it: strings quoted, bigints with their n. */
function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : typeof value === 'bigint' ? `${value}n` : String(value);
}

/** The first item of plain (not Uint8Array) data that is not a byte, as an error naming it. */
function byteError(data: ArrayLike<unknown>): RangeError | undefined {
  for (let i = 0; i < data.length; i++) {
    const value = data[i];
    if (typeof value !== 'number' || (value & 0xff) !== value) {
      return new RangeError(`data[${i}] must be an integer in [0, 255], not ${shown(value)}`);
    }
  }
  return undefined;
}

/**
 * A free-threaded heap's malloc, calloc, realloc and free, which take no heap mutex (each thread
 * allocates from its own pools, docs/free-threaded.md): one small function each around the
 * core's, whose entry refuses a disposed or broken heap as the mutex's would, and which runs
 * inside the world (a stopped world parks it at the entry). No try: a throw out of the core
 * breaks the heap, which refuses every stop after it.
 */
function lockFreeExports(core: CoreExports, entry: HeapLock, world: World): CoreExports {
  return {
    ...core,
    malloc(size) {
      entry.enter('malloc');
      world.enter();
      const address = core.malloc(size);
      world.exit();
      return address;
    },
    calloc(count, size) {
      entry.enter('calloc');
      world.enter();
      const address = core.calloc(count, size);
      world.exit();
      return address;
    },
    realloc(address, size) {
      entry.enter('realloc');
      world.enter();
      const moved = core.realloc(address, size);
      world.exit();
      return moved;
    },
    free(address) {
      entry.enter('free');
      world.enter();
      const status = core.free(address);
      world.exit();
      return status;
    },
  };
}

/**
 * The exports as tracemalloc sees them: each allocation call of the host API, passed on to the
 * core and then, when it succeeded, recorded (see src/heap/tracemalloc.ts for what is traced).
 */
function tracingExports(core: CoreExports, tracer: Tracer): CoreExports {
  const traced: CoreExports = { ...core };
  const io = () => new Uint32Array(core.memory.buffer, core.ioBuffer(), core.ioWords());
  type Calls = ['malloc' | 'memMalloc' | 'rawMalloc', 'calloc' | 'memCalloc' | 'rawCalloc',
    'realloc' | 'memRealloc' | 'rawRealloc', 'free' | 'memFree' | 'rawFree', number];
  const apis: Calls[] = [
    ['malloc', 'calloc', 'realloc', 'free', DEFAULT_DOMAIN],
    ['memMalloc', 'memCalloc', 'memRealloc', 'memFree', DEFAULT_DOMAIN],
    ['rawMalloc', 'rawCalloc', 'rawRealloc', 'rawFree', RAW_DOMAIN],
  ];
  for (const [mallocName, callocName, reallocName, freeName, domain] of apis) {
    const malloc = core[mallocName];
    const calloc = core[callocName];
    const realloc = core[reallocName];
    const free = core[freeName];
    traced[mallocName] = (size) => {
      const p = malloc(size);
      if (p !== 0) tracer.add(p >>> 0, size, domain);
      return p;
    };
    traced[callocName] = (count, size) => {
      const p = calloc(count, size);
      if (p !== 0) tracer.add(p >>> 0, count * size, domain);
      return p;
    };
    traced[reallocName] = (address, size) => {
      const p = realloc(address, size);
      if (p === 0) return p;
      if (p >>> 0 !== address) tracer.remove(address);
      tracer.add(p >>> 0, size, domain);
      return p;
    };
    traced[freeName] = (address) => {
      const status = free(address);
      if (status === 0) tracer.remove(address);
      return status;
    };
  }
  traced.mallocMany = (n) => {
    const sizes = io().slice(0, n);
    const made = core.mallocMany(n);
    // All or nothing: a short count means the batch's blocks were freed again.
    if (made === n) {
      const addresses = io();
      for (let i = 0; i < n; i++) tracer.add(addresses[i], sizes[i], DEFAULT_DOMAIN);
    }
    return made;
  };
  traced.freeMany = (n) => {
    const addresses = io().slice(0, n);
    const freed = core.freeMany(n);
    for (let i = 0; i < freed; i++) tracer.remove(addresses[i]);
    return freed;
  };
  return traced;
}

/**
 * A free-threaded heap's tracing view: its malloc, calloc, realloc and free under the heap mutex,
 * as CPython's tracemalloc takes its tables' lock on every traced call (the tracer's table grows
 * through the raw allocator, which a stopped world must not see changing).
 */
function lockedAllocation(traced: CoreExports, mutex: HeapMutex): CoreExports {
  const locked: CoreExports = { ...traced };
  for (const name of ['malloc', 'calloc', 'realloc', 'free'] as const) {
    const call = traced[name] as (...args: number[]) => number;
    (locked[name] as (...args: number[]) => number) = (...args) => {
      mutex.enter(name);
      try {
        return call(...args);
      } finally {
        mutex.exit();
      }
    };
  }
  return locked;
}

const DISPOSED = refusingExports<CoreExports>();
const DETACHED_EXPORTS = refusingExports<CoreExports>(DETACHED);

/**
 * A pymalloc heap in its own WebAssembly instance: CPython's object allocator (arenas, pools,
 * size-class blocks) with a raw allocator for requests of 0 or more than
 * smallRequestThreshold bytes. Addresses are plain numbers into the heap's linear memory.
 */
/** heap.gil: the GIL of a shared heap (src/heap/shared.ts). */
export interface GilHandle {
  /** 'gil' or 'none' for a shared heap; undefined for one that is not. */
  readonly concurrency: Concurrency | undefined;
  /** Whether this instance holds the GIL now. */
  readonly held: boolean;
  /**
   * Runs fn holding the GIL across all its calls into the heap, re-entrantly, as bytecode runs
   * under CPython's GIL (each call finds the GIL held and goes straight to its work); returns
   * fn's result. On a heap that is not shared it just calls fn.
   */
  run<T>(fn: () => T): T;
  /** Acquisitions, contention, waits and handoffs over every instance (zeros when not shared). */
  stats(): GilStats;
}

export class Heap {
  readonly config: HeapConfig;
  readonly gil: GilHandle;
  #ex: CoreExports;
  /** The core's own exports, whatever #ex stands for. */
  readonly #core: CoreExports;
  /** What #ex is while nothing traces: the core's exports, or a free-threaded heap's lock-free view of them. */
  readonly #untraced: CoreExports;
  #io: Uint32Array;
  readonly #ioAddress: number;
  /** Words in the IO buffer: the batch size of mallocMany/freeMany. */
  readonly #ioWords: number;
  /** The heap's object space, and the one calls go to: it, or a refusing stand-in once broken. */
  readonly #space: ObjectSpace;
  #objects: ObjectSpace;
  readonly #guard: CoreGuard;
  /**
   * The tracer while tracemalloc traces, else undefined. The allocation calls test nothing: while
   * tracing, #ex is a tracing view of the exports (tracingExports), so off costs them nothing.
   * Object constructors and decref test this field once, after the core call.
   */
  #tracer: Tracer | undefined;
  /** The tracing view of the exports #ex is while tracing. */
  #tracing: CoreExports | undefined;
  #tracemalloc: Tracemalloc | undefined;
  /** The shared state, the lock and the attachment of a shared heap; undefined for one that is not. */
  readonly #sharing: Sharing | undefined;

  private constructor(config: HeapConfig, exports: CoreExports, guard: CoreGuard, objectImports: ObjectImports, sharing?: Sharing) {
    this.config = config;
    const lockFree = sharing?.lock instanceof HeapMutex && !config.debugHooks;
    this.#untraced = lockFree ? lockFreeExports(exports, new NoLock(sharing!.state), (sharing!.lock as HeapMutex).world) : exports;
    this.#ex = this.#untraced;
    this.#core = exports;
    this.#guard = guard;
    this.#sharing = sharing;
    const lock = sharing?.lock ?? UNSHARED;
    this.gil = {
      concurrency: sharing?.lock.concurrency,
      get held() { return lock.held; },
      run: (fn) => lock.run(fn),
      stats: () => lock.stats(),
    };
    this.#ioAddress = exports.ioBuffer() >>> 0;
    this.#ioWords = exports.ioWords();
    this.#io = new Uint32Array(exports.memory.buffer, this.#ioAddress, this.#ioWords);
    const mutex = sharing?.lock instanceof HeapMutex ? sharing.lock : undefined;
    this.#space = new ObjectSpace(exports, objectImports, config.maxMemory, guard.wrap(exports), sharing !== undefined, mutex);
    this.#objects = this.#space;
    // Once broken, every call is refused before it reaches the core, at no cost until then.
    guard.onBreak(() => {
      this.#ex = guard.refusing<CoreExports>(exports.memory);
      this.#objects = guard.refusing<ObjectSpace>(exports.memory);
      sharing?.state.markBroken(exports.corruption(), exports.errorAddress());
    });
    if (mutex) {
      registerWorld(this, mutex.world);
      if (!isMainThread) detachWhenThreadExits(this);
      mutex.safePoint = (operation) => {
        try {
          exports.threadMerge!();
        } catch (error) {
          throw guard.failure(operation, error);
        }
      };
    }
    if (sharing) {
      const freeThreaded = lockFree ? UNLOCKED_FREE_THREADED : UNLOCKED_FREE_THREADED_HOOKED;
      lockMethods(this, Heap.prototype, sharing.lock, mutex ? freeThreaded : UNLOCKED);
      lockMethods(this.#space.gc, GcModule.prototype, sharing.lock, UNLOCKED_GC, 'gc.');
    }
  }

  /** Creates a heap. Throws TypeError or RangeError naming the option that is invalid. */
  static async create(options: HeapOptions = {}): Promise<Heap> {
    const config = resolveConfig(options);
    const module = await compiled(buildFile(config));
    let memory: WebAssembly.Memory | undefined;
    const maxPages = Math.floor(config.maxMemory / 65536);
    if (config.shared) memory = new WebAssembly.Memory({ initial: SHARED_INITIAL_PAGES, maximum: maxPages, shared: true });
    const objectImports = new ObjectImports();
    const instance = await WebAssembly.instantiate(module, coreImports(objectImports, () => memory, memory));
    const raw = (config.shared ? { ...instance.exports, memory } : instance.exports) as unknown as CoreExports;
    memory = raw.memory;
    const guard = new CoreGuard(raw);
    const status = raw.heapInit(
      Math.log2(config.alignment),
      config.smallRequestThreshold,
      Math.log2(config.poolSize),
      Math.log2(config.arenaSize),
      maxPages,
    );
    if (status === OUT_OF_MEMORY) {
      throw new RangeError(
        `options.maxMemory (${config.maxMemory}) is too small for the heap header and arena map`,
      );
    }
    if (status === BAD_GEOMETRY) throw new RangeError('the heap core refused the geometry');
    raw.placeFirstArena(heapsCreated++ % FIRST_ARENA_PLACES);
    if (config.debugHooks) raw.debugHooksInit(HOOKS_ON | (config.debugHooks.serialNumbers ? SERIAL_NUMBERS : 0));
    let sharing: Sharing | undefined;
    if (config.shared) {
      const state = new SharedState(memory, raw.sharedState() >>> 0, raw.sharedStateBytes());
      state.create(config.concurrency!);
      sharing = Heap.#attachment(state, config, module, memory, raw);
    }
    return new Heap(config, raw, guard, objectImports, sharing);
  }

  /**
   * The heap `heap.share()` handed over, in this worker: a new instance of the core over the same
   * memory, which sees the same arenas, pools, blocks and objects. TypeError for anything that
   * is not a handle; an Error naming both versions for a handle from another version.
   */
  static async attach(handle: SharedHeapHandle): Promise<Heap> {
    if (typeof handle !== 'object' || handle === null || (handle as { kind?: unknown }).kind !== HANDLE_KIND) {
      throw new TypeError('Heap.attach needs the handle heap.share() returns');
    }
    const { version, build, concurrency, module, memory, config } = handle;
    if (typeof config !== 'object' || config === null) throw new TypeError('Heap.attach: the handle has no configuration (was it posted whole?)');
    if (!(module instanceof WebAssembly.Module) || !(memory instanceof WebAssembly.Memory) || !(memory.buffer instanceof SharedArrayBuffer)) {
      throw new TypeError('Heap.attach: the handle has no compiled module and shared memory (was it posted whole?)');
    }
    if (version !== PACKAGE_VERSION) {
      throw new Error(`Heap.attach: the handle comes from pymalloc-wasm ${version} (${build} build), this is pymalloc-wasm ${PACKAGE_VERSION}: both sides must run the same version`);
    }
    if (build !== 'release' && build !== 'debug') throw new TypeError(`Heap.attach: the handle's build '${String(build)}' is neither 'release' nor 'debug'`);
    if (concurrency !== 'gil' && concurrency !== 'free-threaded' && concurrency !== 'none') {
      throw new TypeError(`Heap.attach: the handle's concurrency '${String(concurrency)}' is none of 'gil', 'free-threaded', 'none'`);
    }
    const given = config as HeapConfig;
    const resolved = resolveConfig({
      preset: given.preset, alignment: given.alignment, poolSize: given.poolSize, arenaSize: given.arenaSize,
      smallRequestThreshold: given.smallRequestThreshold, maxMemory: given.maxMemory, build, debugHooks: given.debugHooks,
      shared: true, concurrency,
    });
    const objectImports = new ObjectImports();
    const instance = await WebAssembly.instantiate(module, coreImports(objectImports, () => memory, memory));
    const raw = { ...instance.exports, memory } as unknown as CoreExports;
    const state = new SharedState(memory, raw.sharedState() >>> 0, raw.sharedStateBytes());
    const refusal = state.refusal(concurrency);
    if (refusal !== undefined) throw new Error(`Heap.attach: ${refusal}`);
    return new Heap(resolved, raw, new CoreGuard(raw), objectImports, Heap.#attachment(state, resolved, module, memory, raw));
  }

  /** Takes an attachment; a free-threaded core is told its id, under the heap mutex, and becomes that thread. */
  static #attachment(state: SharedState, config: HeapConfig, module: WebAssembly.Module, memory: WebAssembly.Memory, core: CoreExports): Sharing {
    const concurrency = config.concurrency!;
    const id = state.attach(threadId);
    if (id === 0) throw new RangeError(`the shared heap has ${MAX_ATTACHMENTS} attachments already: detach some first`);
    if (concurrency !== 'free-threaded') {
      return { state, lock: concurrency === 'gil' ? new Gil(state, id) : new NoLock(state), id, module, memory };
    }
    const mutex = new HeapMutex(state, id);
    let tid: number;
    try {
      tid = mutex.run(() => core.threadAttach!(id));
    } catch (error) {
      state.detach(id);
      throw error;
    }
    if (tid === NO_THREAD_TABLE || tid === NO_THREAD_ID) {
      state.detach(id);
      if (tid === NO_THREAD_ID) throw new RangeError(`the free-threaded heap has given out all its thread ids (${THREAD_IDS} attachments over its life)`);
      throw new OutOfMemoryError('Heap.attach', 0, memory.buffer.byteLength, config.maxMemory, 'the thread table of a free-threaded heap');
    }
    mutex.world.bind(memory, (thread) => core.threadStateWord!(thread) >>> 0);
    return { state, lock: mutex, id, module, memory };
  }

  /**
   * The structured-cloneable handle that `Heap.attach` takes in another worker (post it with
   * postMessage). TypeError for a heap that is not shared.
   */
  share(): SharedHeapHandle {
    const sharing = this.#shared('share');
    const config = this.config;
    return {
      kind: HANDLE_KIND, version: PACKAGE_VERSION, build: config.build, concurrency: sharing.lock.concurrency,
      module: sharing.module, memory: sharing.memory, config: { ...config },
    };
  }

  /** Instances attached to this shared heap now (this one included). */
  attachments(): number {
    return this.#shared('attachments').state.attachments();
  }

  /**
   * Leaves a shared heap: this instance refuses every later call (HeapDisposedError), and the
   * heap lives on for the others. Called inside gil.run, it leaves once the run is over.
   */
  detach(): void {
    const sharing = this.#shared('detach');
    if (this.#ex === DISPOSED || this.#ex === DETACHED_EXPORTS) return;
    if (sharing.state.refusing) {
      this.#leave(DETACHED);
      sharing.state.detach(sharing.id);
      return;
    }
    sharing.lock.enter('detach');
    try {
      // A free-threaded core merges its queue and gives its slot up first: its objects are then abandoned.
      if (this.#core.threadDetach) this.#call('detach', () => this.#core.threadDetach!());
      this.#leave(DETACHED);
      sharing.state.detach(sharing.id);
    } finally {
      sharing.lock.exit();
    }
  }

  /**
   * Recovers the GIL if `worker` exits holding it (terminated in the middle of gil.run, say):
   * this instance takes the GIL over, checks the heap (a worker stopped inside a call may have
   * left it half changed: then every instance refuses it with the HeapCorruptionError naming
   * the invariant) and releases it to the waiters. The worker's attachments are freed either
   * way. On a free-threaded heap the core's heap lock is recovered the same way, first (a worker
   * terminated inside an allocation's locked slow path holds it, and everything after may need
   * it). The recovery runs on this thread's event loop: this thread must not itself be blocked
   * waiting for the GIL (README, "A worker that dies holding the GIL").
   */
  watch(worker: Worker): void {
    const sharing = this.#shared('watch');
    const workerThread = worker.threadId;
    worker.once('exit', () => {
      const { state, lock } = sharing;
      const slots = state.slotsOf(workerThread);
      const takeHeapLock = this.#core.threadTakeHeapLock;
      const live = this.#ex !== DISPOSED && this.#ex !== DETACHED_EXPORTS && !state.disposed && !state.refusing;
      const heapLock = takeHeapLock !== undefined && live && slots.some((id) => takeHeapLock(id) === 1);
      if (heapLock && lock instanceof HeapMutex) lock.world.countHeapLockRecovery();
      try {
        this.#recover(workerThread, slots, heapLock);
      } finally {
        if (heapLock) this.#core.heapLockRelease!();
      }
    });
  }

  /** What watch does once `workerThread` has exited, holding the heap lock (taken over) or not. */
  #recover(workerThread: number, slots: number[], heapLockTaken: boolean): void {
    const { state, lock } = this.#sharing!;
    // A dead thread is outside the heap for good: a stop waiting for it goes on first.
    if (lock instanceof HeapMutex) for (const id of slots) lock.world.release(id);
    // A free-threaded core forgets the dead thread before its slots are free for another.
    if (this.#core.threadRelease && !state.disposed) this.#releaseThreads(slots);
    const ids = state.releaseThread(workerThread);
    if (!(lock instanceof Gil) || state.disposed) return;
    if (ids.some((id) => lock.takeOver(id))) {
      try {
        this.#checkRecovered();
      } finally {
        lock.exit();
      }
    } else if (heapLockTaken && !state.refusing) {
      lock.run(() => this.#checkRecovered());
    }
  }

  /** A recovered heap, checked with the world stopped: broken for every instance if it was left half changed. */
  #checkRecovered(): void {
    const { state } = this.#sharing!;
    try {
      const broken = this.#wholeHeap('watch', () => this.#core.check());
      if (broken !== 0) state.markBroken(broken, this.#core.errorAddress());
    } catch {
      state.markBroken(this.#core.corruption(), this.#core.errorAddress());
    }
  }

  /**
   * Merges the queues of a free-threaded heap's dead attachments and abandons their objects.
   * Under the heap mutex, unless one of them died holding it: that is left to the GIL's recovery
   * (which checks the heap), and the slots' queues to whoever takes the slots next.
   */
  #releaseThreads(ids: number[]): void {
    const sharing = this.#sharing!;
    if (ids.length === 0 || ids.includes(sharing.state.holder) || sharing.state.refusing) return;
    if (this.#ex === DISPOSED || this.#ex === DETACHED_EXPORTS) return;
    sharing.lock.enter('watch');
    try {
      for (const id of ids) this.#core.threadRelease!(id);
    } catch (error) {
      // Marks the heap broken for every instance: all an exit handler can do about a trap.
      this.#guard.failure('watch', error);
    } finally {
      sharing.lock.exit();
    }
  }

  #shared(operation: string): Sharing {
    if (!this.#sharing) throw new TypeError(`${operation}: the heap is not shared (create it with { shared: true })`);
    return this.#sharing;
  }

  /** This instance stops: every later call throws HeapDisposedError, saying `why`. */
  #leave(why?: string): void {
    detachAtExit.delete(this);
    this.#tracer = undefined;
    this.#ex = why === DETACHED ? DETACHED_EXPORTS : DISPOSED;
    this.#objects = this.#space;
    this.#space.dispose(why);
  }

  /** The heap's linear memory. Views of it are detached whenever it grows. Throws HeapDisposedError after dispose(). */
  get memory(): WebAssembly.Memory {
    this.#expectLive('memory');
    return this.#ex.memory;
  }

  /** PyObject_Malloc: the address of a block of at least `size` bytes. */
  malloc(size: number): number {
    if (!isU32(size)) throw sizeError('size', size);
    let address: number;
    try {
      address = this.#ex.malloc(size);
    } catch (error) {
      throw this.#guard.failure('malloc', error);
    }
    if (address === 0) throw this.#allocationFailure('malloc', size);
    return address >>> 0;
  }

  /** PyObject_Calloc: a zeroed block of count * size bytes. */
  calloc(count: number, size: number): number {
    if (!isU32(count)) throw sizeError('count', count);
    if (!isU32(size)) throw sizeError('size', size);
    let address: number;
    try {
      address = this.#ex.calloc(count, size);
    } catch (error) {
      throw this.#guard.failure('calloc', error);
    }
    if (address === 0) throw this.#allocationFailure('calloc', count * size);
    return address >>> 0;
  }

  /**
   * PyObject_Realloc: resizes the block, in place when CPython would, else by moving it.
   * realloc(0, size) is malloc(size). On failure the block is left as it was.
   */
  realloc(address: number, size: number): number {
    if (!isU32(address)) throw addressError(address);
    if (!isU32(size)) throw sizeError('size', size);
    let moved: number;
    try {
      moved = this.#ex.realloc(address, size);
    } catch (error) {
      throw this.#guard.failure('realloc', error);
    }
    if (moved === 0) throw this.#failure('realloc', address, size);
    return moved >>> 0;
  }

  /** PyObject_Free. free(0) does nothing, as in C. */
  free(address: number): void {
    if (!isU32(address)) throw addressError(address);
    let status: number;
    try {
      status = this.#ex.free(address);
    } catch (error) {
      throw this.#guard.failure('free', error);
    }
    if (status !== 0) throw this.#freeFailure('free', address, status);
  }

  // PyMem_Malloc (API 'm') and PyMem_RawMalloc (API 'r'). malloc/free above are
  // PyObject_Malloc (API 'o'). Without debug hooks 'm' is pymalloc as 'o' is, and 'r' the raw
  // allocator whatever the size; with them a block freed through another API than it was
  // allocated with is a MemoryCorruptionError ("bad ID"), as in CPython.

  /** PyMem_Malloc: pymalloc, API 'm' under the debug hooks. */
  memMalloc(size: number): number {
    return this.#domainMalloc('memMalloc', size, (n) => this.#ex.memMalloc(n));
  }
  memCalloc(count: number, size: number): number {
    return this.#domainCalloc('memCalloc', count, size, (c, n) => this.#ex.memCalloc(c, n));
  }
  memRealloc(address: number, size: number): number {
    return this.#domainRealloc('memRealloc', address, size, (p, n) => this.#ex.memRealloc(p, n));
  }
  memFree(address: number): void {
    this.#domainFree('memFree', address, (p) => this.#ex.memFree(p));
  }

  /** PyMem_RawMalloc: the raw allocator for any size, API 'r' under the debug hooks. */
  rawMalloc(size: number): number {
    return this.#domainMalloc('rawMalloc', size, (n) => this.#ex.rawMalloc(n));
  }
  rawCalloc(count: number, size: number): number {
    return this.#domainCalloc('rawCalloc', count, size, (c, n) => this.#ex.rawCalloc(c, n));
  }
  rawRealloc(address: number, size: number): number {
    return this.#domainRealloc('rawRealloc', address, size, (p, n) => this.#ex.rawRealloc(p, n));
  }
  rawFree(address: number): void {
    this.#domainFree('rawFree', address, (p) => this.#ex.rawFree(p));
  }

  /** Bytes the block can hold: its size class, or the raw block's capacity. */
  usableSize(address: number): number {
    if (!isU32(address)) throw addressError(address);
    let size: number;
    try {
      size = this.#ex.usableSize(address);
    } catch (error) {
      throw this.#guard.failure('usableSize', error);
    }
    // Under the debug hooks a block of 0 bytes has 0: lastError tells it from a refusal.
    if (size === 0 && this.#ex.lastError() !== 0) {
      throw new InvalidAddressError('usableSize', address, REASONS[this.#ex.lastError()]);
    }
    return size >>> 0;
  }

  /** address_in_range: whether the address lies inside one of the heap's arenas. */
  owns(address: number): boolean {
    if (!isU32(address)) throw addressError(address);
    return this.#call('owns', () => this.#ex.owns(address)) !== 0;
  }

  /**
   * A live view of `length` bytes of the block (all it can hold by default). The view is
   * detached when memory grows: take a new one after allocating.
   */
  bytes(address: number, length?: number): Uint8Array {
    return this.#view('bytes', address, length);
  }

  /** A copy of `length` bytes of the block (all it can hold by default). */
  read(address: number, length?: number): Uint8Array {
    return this.#view('read', address, length).slice();
  }

  /**
   * Copies data into the block, from its start. Items of plain arrays (anything but a
   * Uint8Array or Buffer) must be integers in [0, 255]: a RangeError names the first that is
   * not, and the block is left as it was.
   */
  write(address: number, data: ArrayLike<number>): void {
    if (!(data instanceof Uint8Array)) {
      const error = byteError(data);
      if (error !== undefined) throw error;
    }
    this.#view('write', address, data.length).set(data);
  }

  /**
   * Allocates one block per size inside Wasm, batch by batch. All or nothing: if one
   * request fails, the blocks of this call are freed before the error is thrown.
   */
  mallocMany(sizes: ArrayLike<number>, out?: Uint32Array): Uint32Array {
    const count = sizes.length;
    const result = out ?? new Uint32Array(count);
    if (result.length < count) {
      throw new RangeError(`out has room for ${result.length} addresses, ${count} are needed`);
    }
    if (!(sizes instanceof Uint32Array)) {
      for (let i = 0; i < count; i++) {
        if (!isU32(sizes[i])) throw sizeError(`sizes[${i}]`, sizes[i]);
      }
    }
    for (let done = 0; done < count; ) {
      const batch = Math.min(count - done, this.#ioWords);
      const io = this.#ioView();
      if (sizes instanceof Uint32Array) io.set(sizes.subarray(done, done + batch));
      else for (let i = 0; i < batch; i++) io[i] = sizes[done + i];
      const allocated = this.#call('mallocMany', () => this.#ex.mallocMany(batch));
      if (allocated < batch) {
        const failed = done + allocated;
        this.#freeBatches(result.subarray(0, done));
        throw this.#allocationFailure(`mallocMany[${failed}]`, sizes[failed]);
      }
      result.set(this.#ioView().subarray(0, batch), done);
      done += batch;
    }
    return result;
  }

  /** Frees every address inside Wasm, batch by batch, stopping at the first invalid one. */
  freeMany(addresses: ArrayLike<number>): void {
    if (!(addresses instanceof Uint32Array)) {
      for (let i = 0; i < addresses.length; i++) {
        if (!isU32(addresses[i])) throw addressError(addresses[i]);
      }
    }
    const failed = this.#freeBatches(addresses);
    if (failed >= 0) {
      throw this.#freeFailure(`freeMany[${failed}]`, addresses[failed], this.#ex.lastError());
    }
  }

  /** Statistics, counted by walking the arenas as sys._debugmallocstats() does. */
  stats(): HeapStats {
    this.#call('stats', () => this.#wholeHeap('stats', () => this.#ex.stats()));
    return decodeStats(this.#ioView(), this.config);
  }

  /** CPython's sys._debugmallocstats() report for this heap (its pymalloc part). */
  debugMallocStats(): string {
    this.#expectLive('debugMallocStats');
    return formatDebugMallocStats(this.stats());
  }

  /** Walks every structure; throws HeapCorruptionError naming the first broken invariant. */
  check(): void {
    const broken = this.#call('check', () => this.#wholeHeap('check', () => this.#ex.check()));
    if (broken === DEBUG_BLOCK_BROKEN) throw this.#debugError('check');
    if (broken !== 0) {
      throw new HeapCorruptionError(INVARIANTS[broken] ?? `invariant ${broken}`, this.#ex.errorAddress() >>> 0);
    }
  }

  /**
   * Drops the instance; every later call throws HeapDisposedError. For a shared heap, from any
   * of its instances: the heap ends for every instance (detach() leaves it to the others).
   */
  dispose(): void {
    const sharing = this.#sharing;
    if (!sharing || this.#ex === DISPOSED || this.#ex === DETACHED_EXPORTS || sharing.state.refusing) {
      if (sharing && this.#ex !== DISPOSED && this.#ex !== DETACHED_EXPORTS) sharing.state.detach(sharing.id);
      this.#leave();
      return;
    }
    sharing.lock.enter('dispose');
    try {
      sharing.state.markDisposed();
      sharing.state.detach(sharing.id);
      this.#leave();
    } finally {
      sharing.lock.exit();
    }
  }

  /** Python's tracemalloc module for this heap (src/heap/tracemalloc.ts says what is traced). */
  get tracemalloc(): Tracemalloc {
    if (this.#tracemalloc === undefined) {
      this.#tracemalloc = new Tracemalloc(this.#core, this.config.maxMemory, (tracer) => this.#install(tracer));
      if (this.#sharing) lockMethods(this.#tracemalloc, Tracemalloc.prototype, this.#sharing.lock, NOTHING, 'tracemalloc.');
    }
    return this.#tracemalloc;
  }

  /** Switches tracing on (a tracer) or off; a broken or disposed heap keeps its refusing stand-in. */
  #install(tracer: Tracer | undefined): void {
    this.#tracer = tracer;
    if (this.#ex === this.#untraced || this.#ex === this.#tracing) {
      const traced = tracer && tracingExports(this.#core, tracer);
      this.#tracing = traced && this.#untraced !== this.#core ? lockedAllocation(traced, this.#sharing!.lock as HeapMutex) : traced;
      this.#ex = this.#tracing ?? this.#untraced;
    }
  }

  // Objects and the cycle collector: see src/heap/objects.ts and src/heap/gc.ts.

  /** Python's gc module for this heap. */
  get gc(): GcModule { return this.#objects.gc; }
  /** Receives what finalizers and callbacks throw (sys.unraisablehook); the default prints it to gc.stderr. */
  get unraisableHook(): (info: UnraisableInfo) => void { return this.#space.unraisableHook; }
  set unraisableHook(hook: (info: UnraisableInfo) => void) { this.#space.unraisableHook = hook; }

  // Each call below can enter the core, and through finalizers and callbacks come back to the
  // host: a trap becomes a HeapCorruptionError, and a call during which the heap broke throws
  // even if a finalizer swallowed the first error (src/heap/guard.ts). The try and the check
  // are written out in each: V8 keeps a JS-to-Wasm call fast only where nothing stands between.
  defineType(spec: TypeSpec): ObjectType {
    try {
      return this.#survived('defineType', this.#objects.defineType(spec));
    } catch (error) {
      throw this.#guard.failure('defineType', error);
    }
  }
  typeOf(o: number): ObjectType {
    try {
      return this.#survived('typeOf', this.#objects.typeOf(o));
    } catch (error) {
      throw this.#guard.failure('typeOf', error);
    }
  }
  isObject(o: number): boolean {
    try {
      return this.#survived('isObject', this.#objects.isObject(o));
    } catch (error) {
      throw this.#guard.failure('isObject', error);
    }
  }
  newObject(type: ObjectType): number {
    try {
      return this.#traced(this.#survived('newObject', this.#objects.newObject(type)));
    } catch (error) {
      throw this.#guard.failure('newObject', error);
    }
  }
  newTuple(items: ArrayLike<number> | number, type?: ObjectType): number {
    try {
      return this.#traced(this.#survived('newTuple', this.#objects.newTuple(items, type)));
    } catch (error) {
      throw this.#guard.failure('newTuple', error);
    }
  }
  newList(items?: ArrayLike<number>, type?: ObjectType): number {
    try {
      return this.#traced(this.#survived('newList', this.#objects.newList(items, type)));
    } catch (error) {
      throw this.#guard.failure('newList', error);
    }
  }
  listAppend(list: number, item: number): void {
    try {
      this.#objects.listAppend(list, item);
      this.#survived('listAppend');
    } catch (error) {
      throw this.#guard.failure('listAppend', error);
    }
  }
  listPop(list: number, index?: number): number | null {
    try {
      return this.#survived('listPop', this.#objects.listPop(list, index));
    } catch (error) {
      throw this.#guard.failure('listPop', error);
    }
  }
  newInt(value: number | bigint): number {
    try {
      return this.#traced(this.#survived('newInt', this.#objects.newInt(value)));
    } catch (error) {
      throw this.#guard.failure('newInt', error);
    }
  }
  intValue(o: number): number | bigint {
    try {
      return this.#survived('intValue', this.#objects.intValue(o));
    } catch (error) {
      throw this.#guard.failure('intValue', error);
    }
  }
  newStr(text: string): number {
    try {
      return this.#traced(this.#survived('newStr', this.#objects.newStr(text)));
    } catch (error) {
      throw this.#guard.failure('newStr', error);
    }
  }
  strValue(o: number): string {
    try {
      return this.#survived('strValue', this.#objects.strValue(o));
    } catch (error) {
      throw this.#guard.failure('strValue', error);
    }
  }
  intern(s: number | string): number {
    try {
      const interned = this.#survived('intern', this.#objects.intern(s));
      return typeof s === 'string' ? this.#traced(interned) : interned;
    } catch (error) {
      throw this.#guard.failure('intern', error);
    }
  }
  objectData(o: number): Uint8Array {
    try {
      return this.#survived('objectData', this.#objects.objectData(o));
    } catch (error) {
      throw this.#guard.failure('objectData', error);
    }
  }
  incref(o: number): void {
    try {
      this.#objects.incref(o);
      this.#survived('incref');
    } catch (error) {
      throw this.#guard.failure('incref', error);
    }
  }
  decref(o: number): void {
    try {
      this.#objects.decref(o);
      this.#survived('decref');
      // The object itself, if this freed it; what it freed in turn is dropped when traces are read.
      if (this.#tracer !== undefined && this.#ex.objectBlockBytes(o) === 0) this.#tracer.remove(o);
    } catch (error) {
      throw this.#guard.failure('decref', error);
    }
  }
  refcount(o: number): number {
    try {
      return this.#survived('refcount', this.#objects.refcount(o));
    } catch (error) {
      throw this.#guard.failure('refcount', error);
    }
  }
  isImmortal(o: number): boolean {
    try {
      return this.#survived('isImmortal', this.#objects.isImmortal(o));
    } catch (error) {
      throw this.#guard.failure('isImmortal', error);
    }
  }
  length(o: number): number {
    try {
      return this.#survived('length', this.#objects.length(o));
    } catch (error) {
      throw this.#guard.failure('length', error);
    }
  }
  getRef(o: number, index: number): number | null {
    try {
      return this.#survived('getRef', this.#objects.getRef(o, index));
    } catch (error) {
      throw this.#guard.failure('getRef', error);
    }
  }
  setRef(o: number, index: number, value: number | null): void {
    try {
      this.#objects.setRef(o, index, value);
      this.#survived('setRef');
    } catch (error) {
      throw this.#guard.failure('setRef', error);
    }
  }
  weakref(o: number, callback?: WeakrefCallback): number {
    try {
      return this.#traced(this.#survived('weakref', this.#objects.weakref(o, callback)));
    } catch (error) {
      throw this.#guard.failure('weakref', error);
    }
  }
  weakrefGet(wr: number): number | null {
    try {
      return this.#survived('weakrefGet', this.#objects.weakrefGet(wr));
    } catch (error) {
      throw this.#guard.failure('weakrefGet', error);
    }
  }
  newDict(): number {
    try {
      return this.#traced(this.#survived('newDict', this.#objects.newDict()));
    } catch (error) {
      throw this.#guard.failure('newDict', error);
    }
  }
  dictSet(d: number, key: DictKey, value: number): void {
    try {
      this.#objects.dictSet(d, key, value);
      this.#survived('dictSet');
    } catch (error) {
      throw this.#guard.failure('dictSet', error);
    }
  }
  dictGet(d: number, key: DictKey): number | null {
    try {
      return this.#survived('dictGet', this.#objects.dictGet(d, key));
    } catch (error) {
      throw this.#guard.failure('dictGet', error);
    }
  }
  dictDelete(d: number, key: DictKey): boolean {
    try {
      return this.#survived('dictDelete', this.#objects.dictDelete(d, key));
    } catch (error) {
      throw this.#guard.failure('dictDelete', error);
    }
  }
  dictItems(d: number): Array<[number, number]> {
    try {
      return this.#survived('dictItems', this.#objects.dictItems(d));
    } catch (error) {
      throw this.#guard.failure('dictItems', error);
    }
  }
  dictKeys(d: number): number[] {
    try {
      return this.#survived('dictKeys', this.#objects.dictKeys(d));
    } catch (error) {
      throw this.#guard.failure('dictKeys', error);
    }
  }
  dictLayout(d: number): DictLayout {
    try {
      return this.#survived('dictLayout', this.#objects.dictLayout(d));
    } catch (error) {
      throw this.#guard.failure('dictLayout', error);
    }
  }
  newFloat(value: number): number {
    try {
      return this.#traced(this.#survived('newFloat', this.#objects.newFloat(value)));
    } catch (error) {
      throw this.#guard.failure('newFloat', error);
    }
  }
  floatValue(o: number): number {
    try {
      return this.#survived('floatValue', this.#objects.floatValue(o));
    } catch (error) {
      throw this.#guard.failure('floatValue', error);
    }
  }
  newBool(value: boolean): number {
    try {
      return this.#survived('newBool', this.#objects.newBool(value));
    } catch (error) {
      throw this.#guard.failure('newBool', error);
    }
  }
  boolValue(o: number): boolean {
    try {
      return this.#survived('boolValue', this.#objects.boolValue(o));
    } catch (error) {
      throw this.#guard.failure('boolValue', error);
    }
  }
  none(): number {
    try {
      return this.#survived('none', this.#objects.none());
    } catch (error) {
      throw this.#guard.failure('none', error);
    }
  }
  fromJSON(value: unknown): number {
    try {
      return this.#tracedGraph(this.#survived('fromJSON', this.#objects.fromJSON(value)));
    } catch (error) {
      throw this.#guard.failure('fromJSON', error);
    }
  }
  parseJSON(text: string | Uint8Array): number {
    try {
      return this.#tracedGraph(this.#survived('parseJSON', this.#objects.parseJSON(text)));
    } catch (error) {
      throw this.#guard.failure('parseJSON', error);
    }
  }
  stringifyJSON(o: number): string {
    try {
      return this.#survived('stringifyJSON', this.#objects.stringifyJSON(o));
    } catch (error) {
      throw this.#guard.failure('stringifyJSON', error);
    }
  }
  toJSON(o: number): JsonValue {
    try {
      return this.#survived('toJSON', this.#objects.toJSON(o));
    } catch (error) {
      throw this.#guard.failure('toJSON', error);
    }
  }

  /**
   * Calls into the core for an operation off the hot path: a trap becomes a
   * HeapCorruptionError (src/heap/guard.ts). malloc, free and the like write the same out.
   */
  #call<T>(operation: string, call: () => T): T {
    try {
      return call();
    } catch (error) {
      throw this.#guard.failure(operation, error);
    }
  }

  /** A walk of the whole heap: with the world stopped on a free-threaded heap (the heap mutex is held). */
  #wholeHeap<T>(operation: string, walk: () => T): T {
    const lock = this.#sharing?.lock;
    return lock instanceof HeapMutex ? lock.world.whileStopped(operation, walk) : walk();
  }

  /** Passes a result on, unless the heap broke during the call (a finalizer swallowed the error). */
  #survived<T>(operation: string, result?: T): T {
    if (this.#guard.broken) throw this.#guard.refusal(operation);
    return result as T;
  }

  /** Calls that are more than one export name themselves when the heap has been disposed. */
  #expectLive(operation: string): void {
    if (this.#ex === DISPOSED) throw new HeapDisposedError(operation);
    if (this.#ex === DETACHED_EXPORTS) throw new HeapDisposedError(operation, DETACHED);
  }

  /** The view of bytes(), read() and write(), whose errors name the method called. */
  #view(operation: string, address: number, length: number | undefined): Uint8Array {
    this.#expectLive(operation);
    if (!isU32(address)) throw addressError(address);
    const usable = this.#ex.usableSize(address) >>> 0;
    if (usable === 0 && this.#ex.lastError() !== 0) throw new InvalidAddressError(operation, address, REASONS[this.#ex.lastError()]);
    const size = length ?? usable;
    if (!isU32(size) || size > usable) {
      throw new RangeError(`${operation}: length must be an integer from 0 to the block's ${usable} bytes, not ${shown(size)}`);
    }
    return new Uint8Array(this.#ex.memory.buffer, address, size);
  }

  #ioView(): Uint32Array {
    if (this.#io.buffer !== this.#ex.memory.buffer) {
      this.#io = new Uint32Array(this.#ex.memory.buffer, this.#ioAddress, this.#ioWords);
    }
    return this.#io;
  }

  /** Frees addresses batch by batch: -1, or the index of the first one that is not a block. */
  #freeBatches(addresses: ArrayLike<number>): number {
    for (let done = 0; done < addresses.length; ) {
      const batch = Math.min(addresses.length - done, this.#ioWords);
      const io = this.#ioView();
      if (addresses instanceof Uint32Array) io.set(addresses.subarray(done, done + batch));
      else for (let i = 0; i < batch; i++) io[i] = addresses[done + i];
      const freed = this.#call('freeMany', () => this.#ex.freeMany(batch));
      if (freed < batch) return done + freed;
      done += batch;
    }
    return -1;
  }

  #outOfMemory(operation: string, requested: number): OutOfMemoryError {
    const committed = this.#ex.memory.buffer.byteLength;
    return new OutOfMemoryError(operation, requested, committed, this.config.maxMemory);
  }

  #failure(operation: string, address: number, size: number): Error {
    const status = this.#ex.lastError();
    if (status === OUT_OF_MEMORY) return this.#outOfMemory(operation, size);
    if (status === DEBUG_VIOLATION) return this.#debugError(operation);
    return new InvalidAddressError(operation, address, REASONS[status]);
  }

  /** Why an allocation returned 0: out of memory, or (debug hooks) the block handed out was written after free. */
  #allocationFailure(operation: string, size: number): Error {
    if (this.#ex.lastError() === DEBUG_VIOLATION) return this.#debugError(operation);
    return this.#outOfMemory(operation, size);
  }

  #freeFailure(operation: string, address: number, status: number): Error {
    if (status === DEBUG_VIOLATION) return this.#debugError(operation);
    return new InvalidAddressError(operation, address, REASONS[status]);
  }

  /** The MemoryCorruptionError for the violation the debug hooks just recorded. */
  #debugError(operation: string): MemoryCorruptionError {
    this.#ex.debugReport();
    return debugError(operation, readDebugRecord(this.#ioView()), this.#ex.memory, (p) => this.#allocationTraceback(p));
  }

  /** The allocation traceback of the block at p, as a report prints it; undefined when not tracing. */
  #allocationTraceback(p: number): string[] | undefined {
    if (this.#tracer === undefined) return undefined;
    const traceback = this.#tracer.traceback(p) ?? [];
    return traceback.map((frame) => `  File "${frame.filename}", line ${frame.lineno}`);
  }

  /** A new object's trace (tracemalloc on); immortal objects were not allocated by the call. */
  #traced(o: number): number {
    if (this.#tracer !== undefined && this.#ex.objectRefcount(o) >>> 0 < IMMORTAL) this.#tracer.addObject(o);
    return o;
  }

  /** A new graph's traces (tracemalloc on): every object fromJSON made, found from its root. */
  #tracedGraph(root: number): number {
    if (this.#tracer === undefined) return root;
    const pending = [root];
    for (let o = pending.pop(); o !== undefined; o = pending.pop()) {
      this.#traced(o);
      const kind = this.#objects.typeOf(o).kind;
      if (kind === 'dict') pending.push(...this.#objects.dictItems(o).flat());
      else if (kind === 'list') for (let i = this.#objects.length(o) - 1; i >= 0; i--) pending.push(this.#objects.getRef(o, i)!);
    }
    return root;
  }

  #domainMalloc(operation: string, size: number, call: (size: number) => number): number {
    if (!isU32(size)) throw sizeError('size', size);
    const address = this.#call(operation, () => call(size));
    if (address === 0) throw this.#allocationFailure(operation, size);
    return address >>> 0;
  }

  #domainCalloc(operation: string, count: number, size: number, call: (count: number, size: number) => number): number {
    if (!isU32(count)) throw sizeError('count', count);
    if (!isU32(size)) throw sizeError('size', size);
    const address = this.#call(operation, () => call(count, size));
    if (address === 0) throw this.#allocationFailure(operation, count * size);
    return address >>> 0;
  }

  #domainRealloc(operation: string, address: number, size: number, call: (address: number, size: number) => number): number {
    if (!isU32(address)) throw addressError(address);
    if (!isU32(size)) throw sizeError('size', size);
    const moved = this.#call(operation, () => call(address, size));
    if (moved === 0) throw this.#failure(operation, address, size);
    return moved >>> 0;
  }

  #domainFree(operation: string, address: number, call: (address: number) => number): void {
    if (!isU32(address)) throw addressError(address);
    const status = this.#call(operation, () => call(address));
    if (status !== 0) throw this.#freeFailure(operation, address, status);
  }
}
