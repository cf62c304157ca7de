// The throughput suite (`pymalloc bench`, `npm run bench`): the small-object churn of 10,000 live
// blocks with sizes uniform in 1..512, each step freeing a random live block and allocating a
// new one. Run
//   in Wasm      the driver's churn loop over each allocator built: no host in the loop;
//   host, 1:1    from JavaScript, one call per operation, on the core's bare exports and
//                through the Heap API;
//   host, batch  Heap.freeMany + Heap.mallocMany, BATCH operations per call;
// and the cost of one bare JS-to-Wasm call for scale. Ratios within one run are what to read.
// The host loops draw the same xorshift32 sequence as the driver, so sizes and victims match.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { Heap } from '../../index.js';
import { buildFile } from '../../heap/builds.js';
import { resolveConfig } from '../../heap/config.js';
import { builtAllocators, loadAllocator, PACKAGE_ROOT, type AllocatorName } from './allocators.js';
import { AllocatorError } from './errors.js';

export const LIVE = 10_000;
export const MAX_SIZE = 512;
export const SEED = 12345;
export const BATCH = 1000;
export const DEFAULT_STEPS = 200_000;
/** The most steps per call: 50 times the default. Far beyond it a suite runs for hours with no output. */
export const MAX_STEPS = 10_000_000;
const DEFAULT_RUNS = 5;
/** The most timed calls per case. */
export const MAX_RUNS = 1000;

/** Operations in one churn call: the fill, the steps (a free and a malloc each), the drain. */
export function opsPerCall(steps: number): number {
  return 2 * LIVE + 2 * steps;
}

export interface BenchOptions {
  /**
   * Churn steps per measured call, from BATCH (1000) to MAX_STEPS (10,000,000).
   * @default 200000
   */
  steps?: number;
  /**
   * Timed calls per case (after one warm-up call), from 1 to MAX_RUNS (1000), taken in turns
   * across the cases; the median is reported.
   * @default 5
   */
  runs?: number;
  /**
   * Allocators for the in-Wasm loop.
   * @default every allocator built but bump
   */
  allocators?: readonly AllocatorName[];
  /** Called before each case. */
  onCase?: (name: string, allocator: string, index: number, count: number) => void;
}

export interface BenchResult {
  name: string;
  allocator: string;
  nsPerOp: number;
}

interface BareCore {
  malloc(size: number): number;
  free(address: number): number;
  mallocMany(count: number): number;
  freeMany(count: number): number;
  ioBuffer(): number;
  lastError(): number;
  heapInit(...args: number[]): number;
  readonly memory: WebAssembly.Memory;
}

/**
 * The core module's own exports, freshly initialised as cpython-3.12, no host API in between: the
 * module a Heap of that preset runs (src/heap/builds.ts).
 */
export function bareCore(): BareCore {
  const file = buildFile(resolveConfig({ preset: 'cpython-3.12' }));
  const module = new WebAssembly.Module(readFileSync(join(PACKAGE_ROOT, 'build', file)));
  // The object layer's callbacks are never called by malloc and free.
  const env = Object.fromEntries(WebAssembly.Module.imports(module).map((i) => [i.name, () => 0]));
  const core = new WebAssembly.Instance(module, { env }).exports as unknown as BareCore;
  core.heapInit(4, 512, 14, 20, 65535);
  return core;
}

/** Writes the first byte of each new block, as the driver does, through a view kept fresh. */
function toucher(memory: WebAssembly.Memory): (address: number) => void {
  let view = new Uint8Array(memory.buffer);
  return (address) => {
    if (view.byteLength === 0) view = new Uint8Array(memory.buffer); // detached by memory.grow
    view[address] = 1;
  };
}

// The loops inline xorshift32 (x ^= x << 13; x ^= x >>> 17; x ^= x << 5) rather than call a
// closure: V8 then keeps x in a register, and what is measured is the allocator and the call.

type HostHeap = { malloc(size: number): number; free(address: number): unknown; memory: WebAssembly.Memory };

/** The JS loop of the host rows; self-contained, so that freshCopy can compile it anew. */
function churnLoop(heap: HostHeap, touch: (address: number) => void, slots: Uint32Array, steps: number, live: number, maxSize: number, seed: number): number {
  let x = seed;
  let checksum = 0;
  for (let i = 0; i < live; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    const p = heap.malloc(1 + ((x >>> 0) % maxSize));
    touch(p);
    slots[i] = p;
  }
  for (let s = 0; s < steps; s++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    const j = (x >>> 0) % live;
    heap.free(slots[j]);
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    const p = heap.malloc(1 + ((x >>> 0) % maxSize));
    touch(p);
    slots[j] = p;
    checksum ^= p;
  }
  for (let i = 0; i < live; i++) heap.free(slots[i]);
  return checksum;
}

/**
 * A copy of a self-contained function, compiled apart. Tricky: V8 keeps type feedback per
 * function literal, shared by every call of it, so one loop serving the bare exports and then a
 * Heap would reach the Heap's methods through a polymorphic call site (and time that); each case
 * runs its own copy, whose call sites see one kind of heap, as a program's loop does.
 */
function freshCopy<F extends (...args: never[]) => unknown>(fn: F): F {
  return new Function(`return (${fn.toString()});`)() as F;
}

/** The host rows' churn: one call per malloc and per free, through `heap`. */
export function hostChurn(heap: HostHeap, steps: number): () => number {
  const slots = new Uint32Array(LIVE);
  const touch = toucher(heap.memory);
  const loop = freshCopy(churnLoop);
  return () => loop(heap, touch, slots, steps, LIVE, MAX_SIZE, SEED);
}

/** What the batched loop needs of a heap: Heap's batch calls, or a stand-in for them. */
export interface BatchHeap {
  mallocMany(sizes: Uint32Array, out: Uint32Array): unknown;
  freeMany(addresses: Uint32Array): unknown;
  readonly memory: WebAssembly.Memory;
}

/** Each batch frees BATCH consecutive slots from a random start and allocates BATCH blocks. */
export function batchedChurn(heap: BatchHeap, steps: number): () => number {
  const sizes = new Uint32Array(LIVE);
  const slots = new Uint32Array(LIVE);
  const freed = new Uint32Array(BATCH);
  const fresh = new Uint32Array(BATCH);
  const batchSizes = new Uint32Array(BATCH);
  const touch = toucher(heap.memory);
  return () => {
    let x = SEED;
    for (let i = 0; i < LIVE; i++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      sizes[i] = 1 + ((x >>> 0) % MAX_SIZE);
    }
    heap.mallocMany(sizes, slots);
    for (let i = 0; i < LIVE; i++) touch(slots[i]);
    for (let s = 0; s < steps; s += BATCH) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      const start = (x >>> 0) % (LIVE - BATCH);
      freed.set(slots.subarray(start, start + BATCH));
      for (let i = 0; i < BATCH; i++) {
        x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
        batchSizes[i] = 1 + ((x >>> 0) % MAX_SIZE);
      }
      heap.freeMany(freed);
      heap.mallocMany(batchSizes, fresh);
      for (let i = 0; i < BATCH; i++) touch(fresh[i]);
      slots.set(fresh, start);
    }
    heap.freeMany(slots);
    return slots[0];
  };
}

function bareCalls(core: BareCore, steps: number): () => number {
  const calls = opsPerCall(steps);
  return () => {
    let sum = 0;
    for (let i = 0; i < calls; i++) sum += core.lastError();
    return sum;
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** One case of the suite: `make` prepares a function whose every call performs opsPerCall(steps) operations. */
export interface BenchCase {
  name: string;
  allocator: string;
  make: () => Promise<() => number>;
}

/** The cases of the suite, for any timer: runBench's median, or benchmark.js in bench/index.ts. */
export function benchCases(steps: number, allocators: readonly AllocatorName[]): BenchCase[] {
  return [
    ...allocators.map((allocator) => ({
      name: 'churn in Wasm',
      allocator,
      make: async () => {
        const instance = await loadAllocator(allocator);
        return () => {
          const checksum = instance.churn(LIVE, steps, SEED, MAX_SIZE);
          if (checksum === 0) throw new AllocatorError(allocator, 'an allocation failed in the churn loop');
          return checksum;
        };
      },
    })),
    { name: 'JS loop, bare exports', allocator: 'pymalloc-3.12', make: async () => hostChurn(bareCore(), steps) },
    { name: 'JS loop, Heap API', allocator: 'pymalloc-3.12', make: async () => hostChurn(await Heap.create({ preset: 'cpython-3.12' }), steps) },
    { name: `Heap API, batches of ${BATCH}`, allocator: 'pymalloc-3.12', make: async () => batchedChurn(await Heap.create({ preset: 'cpython-3.12' }), steps) },
    { name: 'bare JS->Wasm call', allocator: 'pymalloc-3.12', make: async () => bareCalls(bareCore(), steps) },
    { name: 'JS loop, Heap API', allocator: 'pymalloc-tuned', make: async () => hostChurn(await Heap.create({ preset: 'tuned' }), steps) },
    { name: `Heap API, batches of ${BATCH}`, allocator: 'pymalloc-tuned', make: async () => batchedChurn(await Heap.create({ preset: 'tuned' }), steps) },
  ];
}

/** Runs the suite; every case performs opsPerCall(steps) operations per call. */
export async function runBench(options: BenchOptions = {}): Promise<BenchResult[]> {
  const steps = options.steps ?? DEFAULT_STEPS;
  const runs = options.runs ?? DEFAULT_RUNS;
  if (!Number.isInteger(steps) || steps < BATCH || steps > MAX_STEPS) {
    throw new RangeError(`options.steps must be an integer from ${BATCH} to ${MAX_STEPS}, got ${steps}`);
  }
  if (!Number.isInteger(runs) || runs < 1 || runs > MAX_RUNS) throw new RangeError(`options.runs must be an integer from 1 to ${MAX_RUNS}, got ${runs}`);
  const cases = benchCases(steps, options.allocators ?? builtAllocators().filter((name) => name !== 'bump'));

  // Every case is made and warmed up first, then the timed calls go round the cases, so that
  // a stretch of a busy machine slows every case a little rather than one case a lot.
  const calls: (() => number)[] = [];
  for (const [index, { name, allocator, make }] of cases.entries()) {
    options.onCase?.(name, allocator, index, cases.length);
    const call = await make();
    call();
    calls.push(call);
  }
  const times: number[][] = cases.map(() => []);
  for (let run = 0; run < runs; run++) {
    for (const [index, call] of calls.entries()) {
      const began = process.hrtime.bigint();
      call();
      times[index].push(Number(process.hrtime.bigint() - began));
    }
  }
  return cases.map(({ name, allocator }, index) => ({ name, allocator, nsPerOp: median(times[index]) / opsPerCall(steps) }));
}

/** The suite as a table. */
export function formatBench(results: readonly BenchResult[]): string {
  const lines = [`small-object churn: ${LIVE} live blocks, sizes uniform in 1..${MAX_SIZE}; median of the timed calls`, ''];
  const width = Math.max(...results.map((r) => `${r.name} (${r.allocator})`.length));
  for (const r of results) lines.push(`${`${r.name} (${r.allocator})`.padEnd(width)}  ${r.nsPerOp.toFixed(1).padStart(8)} ns/op`);
  return lines.join('\n');
}
