// The small-object churn benchmark of the core issue: 10,000 live blocks, sizes uniform in
// 1..512, each step frees a random live block and allocates a new one. Run three ways:
//   in Wasm      the peer driver's churn loop (peers/assemblyscript/driver.ts), for pymalloc
//                and every peer allocator: no host in the loop at all;
//   host, 1:1    Heap.free + Heap.malloc from JavaScript, one call per operation;
//   host, batch  Heap.freeMany + Heap.mallocMany, BATCH operations per call.
// The one-call-per-operation variant draws the same xorshift32 sequence as the driver, so
// sizes and victims match.

import { readFileSync } from 'node:fs';
import { Heap } from 'pymalloc-wasm';
import { loadAllocator, type AllocatorName } from '../src/compare/allocators.js';

export const LIVE = 10_000;
export const MAX_SIZE = 512;
export const SEED = 12345;
/** Steps per measured call: large enough that one call takes milliseconds. */
export const STEPS = 200_000;
export const BATCH = 1000;

/** Operations in one churn call: the fill, the steps (a free and a malloc each), the drain. */
export const OPS_PER_CALL = 2 * LIVE + 2 * STEPS;

/** Writes the first byte of each new block, as the driver does, through a view kept fresh. */
function toucher(memory: WebAssembly.Memory): (address: number) => void {
  let view = new Uint8Array(memory.buffer);
  return (address) => {
    // memory.grow detaches the old view, which then has no bytes.
    if (view.byteLength === 0) view = new Uint8Array(memory.buffer);
    view[address] = 1;
  };
}

/** What the one-call-per-operation loop needs: the Heap, or the core's bare exports. */
export interface Allocator {
  malloc(size: number): number;
  free(address: number): void;
  readonly memory: WebAssembly.Memory;
}

/** The core module's own exports, with no host API in between (freshly initialised, 3.12). */
export function bareExports(): Allocator & { lastError(): number } {
  const bytes = readFileSync(new URL('../build/pymalloc.release.wasm', import.meta.url));
  const module = new WebAssembly.Module(bytes);
  // The churn never reaches the object layer's callbacks into the host: stand-ins suffice.
  const env = Object.fromEntries(WebAssembly.Module.imports(module).map((i) => [i.name, () => 0]));
  const instance = new WebAssembly.Instance(module, { env });
  const exports = instance.exports as unknown as Allocator & { lastError(): number; heapInit(...args: number[]): number };
  exports.heapInit(4, 512, 14, 20, 65535);
  return exports;
}

/** One churn call in Wasm on a fresh instance of the named allocator, reused across calls. */
export async function wasmChurn(name: AllocatorName): Promise<() => number> {
  const peer = await loadAllocator(name);
  return () => peer.churn(LIVE, STEPS, SEED, MAX_SIZE);
}

// The loops below inline the driver's xorshift32 generator (x ^= x << 13; x ^= x >>> 17;
// x ^= x << 5) rather than call a closure: V8 then keeps x in a register, and what is measured
// is the allocator and the crossing into Wasm, not the generator.

/** The same churn through the host API, one call per operation. */
export function hostChurn(heap: Allocator): () => number {
  const slots = new Uint32Array(LIVE);
  const touch = toucher(heap.memory);
  return () => {
    let x = SEED;
    let checksum = 0;
    for (let i = 0; i < LIVE; i++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      const p = heap.malloc(1 + ((x >>> 0) % MAX_SIZE));
      touch(p);
      slots[i] = p;
    }
    for (let s = 0; s < STEPS; s++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      const j = (x >>> 0) % LIVE;
      heap.free(slots[j]);
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      const p = heap.malloc(1 + ((x >>> 0) % MAX_SIZE));
      touch(p);
      slots[j] = p;
      checksum ^= p;
    }
    for (let i = 0; i < LIVE; i++) heap.free(slots[i]);
    return checksum;
  };
}

/**
 * The same churn batched: each batch frees BATCH live blocks (a run of consecutive slots from a
 * random start, so no block is freed twice) and allocates BATCH new ones, in two calls.
 */
export function batchedChurn(heap: Heap): () => number {
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
    for (let s = 0; s < STEPS; s += BATCH) {
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

/** The bare cost of one JS-to-Wasm call: an export that reads one word and returns it. */
export function bareCall(): () => number {
  const { lastError } = bareExports();
  return () => {
    let sum = 0;
    for (let i = 0; i < OPS_PER_CALL; i++) sum += lastError();
    return sum;
  };
}
