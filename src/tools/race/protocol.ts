// What race.ts and its workers (worker.ts) pass each other, and the loop constants both read.
//
// The barrier is an Int32Array over a SharedArrayBuffer:
//   [BARRIER_TURN]  the index of the worker whose turn it is to warm up (warm-ups run one at a
//                   time, so that even without a lock they cannot race)
//   [BARRIER_GO]    0 until every worker has warmed up and said so; race.ts then stores 1, and
//                   the workers, spinning on it, start their loops within a few hundred ns of
//                   each other: the loops overlap from their first op

import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

import { HeapCorruptionError, type Heap } from '../../index.js';

type SharedHeapHandle = ReturnType<Heap['share']>;

export const BARRIER_TURN = 0;
export const BARRIER_GO = 1;
export const BARRIER_WORDS = 2;

/** Live blocks each alloc worker keeps. */
export const WINDOW = 256;
/** Bytes of a block's tag (worker, serial): the smallest request. */
export const TAG_BYTES = 8;
/** The largest request: every block comes from pymalloc's size classes (the 512-byte threshold). */
export const MAX_BLOCK = 32;
/** Ops each worker runs before the barrier, one worker at a time, for V8 to compile the loop. */
export const WARM_UP_OPS = 100_000;

export type RaceTest = 'refcount' | 'alloc';

export interface WorkerRequest {
  /** The shared heap; undefined: the worker makes its own unshared heap (the reference). */
  handle: SharedHeapHandle | undefined;
  test: RaceTest;
  /** Ops in the measured loop: increfs, or mallocs and frees. */
  ops: number;
  /** This worker's place: its warm-up turn, and its tag is index + 1. */
  index: number;
  seed: number;
  barrier: SharedArrayBuffer;
  /** The shared object of the refcount test. */
  object: number | undefined;
  /** Steps of the alloc loop under one gil.run; 1: none (every call takes the lock itself). */
  batch: number;
}

export interface WorkerFailure {
  name: string;
  message: string;
  /** HeapCorruptionError's invariant. */
  invariant?: string;
}

export interface WorkerReport {
  type: 'done';
  /** performance.timeOrigin + performance.now() at the start and end of the measured loop (ms). */
  start: number;
  end: number;
  /** Ops done: all of them unless an error stopped the loop. */
  ops: number;
  /** Blocks this worker found tagged by another holder while it held them. */
  foreign: Uint32Array;
  /** The blocks it held at the end. */
  live: Uint32Array;
  failure?: WorkerFailure;
}

/** A worker that could not run at all (its heap did not attach, say). */
export interface WorkerError {
  type: 'error';
  failure: WorkerFailure;
}

/** An error as a worker reports it (structured clone keeps no class), the invariant kept. */
export function failureOf(error: unknown): WorkerFailure {
  if (error instanceof HeapCorruptionError) return { name: error.name, message: error.message, invariant: error.invariant };
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { name: 'Error', message: String(error) };
}

/**
 * The random sizes (from `minSize` to `maxSize` bytes) and window slots (below `window`) of an
 * alloc loop, drawn before it starts so that the loop only calls the heap.
 */
export function draws(seed: number, count: number, minSize: number, maxSize: number, window: number): { sizes: Uint32Array; slots: Uint16Array } {
  const rng = xoroshiro128plus(seed);
  const sizes = new Uint32Array(count);
  const slots = new Uint16Array(count);
  for (let i = 0; i < count; i++) {
    sizes[i] = uniformInt(rng, minSize, maxSize);
    slots[i] = uniformInt(rng, 0, window - 1);
  }
  return { sizes, slots };
}
