// One worker of `pymalloc race` (race.ts starts it): attaches to the shared heap, warms up in its
// turn, waits at the start barrier, runs its loop as fast as it can, and posts what it saw.
//
// The loops:
//   refcount  `ops` increfs of the one shared object.
//   alloc     a window of WINDOW live blocks: fill it, then each step checks the tag of a
//             random live block, frees it and mallocs a block of a random small size in its
//             place (two ops a step); every block carries the tag (worker, serial) in its first
//             8 bytes, so a block the allocator also handed to another holder is found by its
//             tag when its owner checks it, before freeing it or at the end.
//
// An error stops the loop (under concurrency 'none' the heap may break under the worker's
// feet: that is the point); the worker reports it with what it held, and exits normally.

import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';

import { Heap } from '../../index.js';
import {
  BARRIER_GO, BARRIER_TURN, MAX_BLOCK, TAG_BYTES, WINDOW, WARM_UP_OPS, draws, failureOf,
  type WorkerFailure, type WorkerReport, type WorkerRequest,
} from './protocol.js';

const request = workerData as WorkerRequest;
const barrier = new Int32Array(request.barrier);

/** The block tags, read and written through an Int32Array over the heap's memory, rebuilt when it grows. */
class Tags {
  readonly #heap: Heap;
  #words: Int32Array;
  readonly #owner: number;

  constructor(heap: Heap, owner: number) {
    this.#heap = heap;
    this.#owner = owner;
    this.#words = new Int32Array(heap.memory.buffer);
  }

  #view(address: number): Int32Array {
    if (address + TAG_BYTES > this.#words.byteLength) this.#words = new Int32Array(this.#heap.memory.buffer);
    return this.#words;
  }

  write(address: number, serial: number): void {
    const words = this.#view(address);
    words[address >>> 2] = this.#owner;
    words[(address >>> 2) + 1] = serial;
  }

  /** Whether the block still carries this worker's tag with `serial`. */
  holds(address: number, serial: number): boolean {
    const words = this.#view(address);
    return words[address >>> 2] === this.#owner && words[(address >>> 2) + 1] === serial;
  }
}

interface AllocState {
  /** The live blocks by slot, 0 for a slot that holds none, and the serial of each one's tag. */
  window: Uint32Array;
  serials: Uint32Array;
  serial: number;
  /** Blocks found tagged by another holder. */
  foreign: number[];
  ops: number;
}

function newAllocState(): AllocState {
  return { window: new Uint32Array(WINDOW), serials: new Uint32Array(WINDOW), serial: 0, foreign: [], ops: 0 };
}

/**
 * The alloc loop, up to `ops` calls (fewer if an error stops it): mallocs into the empty slots,
 * then steps of check, free and malloc in a random slot, `batch` steps per gil.run when batch > 1.
 */
function churn(heap: Heap, tags: Tags, state: AllocState, ops: number, sizes: Uint32Array, slots: Uint16Array, batch: number): void {
  const { window, serials } = state;
  let draw = 0;
  const fill = (slot: number) => {
    const address = heap.malloc(sizes[draw++ % sizes.length]);
    tags.write(address, ++state.serial);
    window[slot] = address;
    serials[slot] = state.serial;
    state.ops++;
  };
  for (let slot = 0; slot < WINDOW && state.ops < ops; slot++) if (window[slot] === 0) fill(slot);
  const step = () => {
    const slot = slots[draw % slots.length];
    const address = window[slot];
    if (!tags.holds(address, serials[slot])) state.foreign.push(address);
    heap.free(address);
    window[slot] = 0;
    state.ops++;
    fill(slot);
  };
  if (batch <= 1) {
    while (state.ops + 2 <= ops) step();
    return;
  }
  while (state.ops + 2 <= ops) {
    heap.gil.run(() => {
      for (let i = 0; i < batch && state.ops + 2 <= ops; i++) step();
    });
  }
}

/** The blocks a worker holds, and their serials. */
function held(state: AllocState): { live: Uint32Array; serials: Uint32Array } {
  const slots = [...state.window.keys()].filter((slot) => state.window[slot] !== 0);
  return { live: Uint32Array.from(slots, (s) => state.window[s]), serials: Uint32Array.from(slots, (s) => state.serials[s]) };
}

/**
 * Runs `warmUp` in this worker's turn, and passes the turn on whatever happens. Warm-ups run one
 * worker at a time, so that even without a lock they cannot race; without one, the first worker
 * to start would run in V8's baseline tiers while the others waited, and the loops would overlap less.
 */
function inTurn(warmUp: () => void): void {
  for (let turn; (turn = Atomics.load(barrier, BARRIER_TURN)) !== request.index; ) Atomics.wait(barrier, BARRIER_TURN, turn);
  try {
    warmUp();
  } finally {
    Atomics.add(barrier, BARRIER_TURN, 1);
    Atomics.notify(barrier, BARRIER_TURN);
  }
}

async function main(): Promise<WorkerReport> {
  let heap: Heap;
  try {
    heap = request.handle === undefined ? await Heap.create() : await Heap.attach(request.handle);
  } catch (error) {
    inTurn(() => {});
    throw error;
  }
  const tags = new Tags(heap, request.index + 1);
  const { sizes, slots } = draws(request.seed, Math.min(request.ops, 1 << 16) + WINDOW, TAG_BYTES, MAX_BLOCK, WINDOW);
  let state = newAllocState();
  const object = request.object;

  inTurn(() => {
    if (request.test === 'refcount') {
      for (let i = 0; i < WARM_UP_OPS; i += 2) {
        heap.incref(object!);
        heap.decref(object!);
      }
    } else {
      // Its blocks are freed, so that the measured loop starts from the heap as it was.
      churn(heap, tags, state, WARM_UP_OPS, sizes, slots, request.batch);
      heap.freeMany(held(state).live);
      state = newAllocState();
    }
  });
  parentPort!.postMessage({ type: 'ready' });
  while (Atomics.load(barrier, BARRIER_GO) === 0);

  const start = performance.timeOrigin + performance.now();
  let failure: WorkerFailure | undefined;
  try {
    if (request.test === 'refcount') {
      const o = object!;
      for (; state.ops < request.ops; state.ops++) heap.incref(o);
    } else {
      churn(heap, tags, state, request.ops, sizes, slots, request.batch);
    }
  } catch (error) {
    failure = failureOf(error);
  }
  const end = performance.timeOrigin + performance.now();
  const { live, serials } = held(state);
  for (let i = 0; i < live.length; i++) if (!tags.holds(live[i], serials[i])) state.foreign.push(live[i]);
  if (request.handle !== undefined) {
    try {
      heap.detach();
    } catch (error) {
      failure ??= failureOf(error);
    }
  }
  return { type: 'done', start, end, ops: state.ops, foreign: Uint32Array.from(state.foreign), live, ...(failure && { failure }) };
}

main().then(
  (report) => parentPort!.postMessage(report),
  (error: unknown) => parentPort!.postMessage({ type: 'error', failure: failureOf(error) }),
);
