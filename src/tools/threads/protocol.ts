// What threads.ts and its workers (worker.ts) pass each other. The workers live for a whole
// mode: each attaches once to the mode's heap and then runs one command at a time, so that every
// workload of a mode runs on the same heap in workers whose loops V8 has compiled already.
//
// A command that times a loop carries a fresh control block, an Int32Array over a
// SharedArrayBuffer:
//   [ARRIVED]  workers at the start barrier; the last one to arrive wakes the others, and each
//              then times its own loop on the clock every thread shares (performance.timeOrigin
//              + performance.now())
//   [RUNNING]  traffic workers past their first batch: the collector waits for all of them, so
//              that its collection really runs beside their traffic
//   [STOP]     stored 1 by the collector when its collection has returned: the traffic ends

import type { SharedHeapHandle } from '../../index.js';

export type ThreadsMode = 'gil' | 'free-threaded';

export const ARRIVED = 0;
export const RUNNING = 1;
export const STOP = 2;
export const CONTROL_WORDS = 3;

/** Live blocks each allocating worker keeps: every step frees one of them and mallocs another. */
export const WINDOW = 256;
/** The sizes of the alloc loop: small blocks, in two size classes of the default preset (16-byte alignment). */
export const MIN_BLOCK = 8;
export const MAX_BLOCK = 32;
/** Ops a traffic worker runs between two looks at the stop word. */
export const TRAFFIC_BATCH = 256;

export interface WorkerSetup {
  handle: SharedHeapHandle;
  /** The worker's place in the pool, from 0; worker 0 owns the shared object and collects. */
  index: number;
}

export type Command =
  /** `iterations` steps of free + malloc in this worker's window (filled first, untimed). */
  | { type: 'alloc'; iterations: number; control: SharedArrayBuffer; parties: number }
  /** Frees the window. */
  | { type: 'release' }
  /** Makes the object this worker owns (a list), and keeps its reference. */
  | { type: 'own' }
  /** `iterations` incref + decref pairs on `object`. */
  | { type: 'refcount'; object: number; iterations: number; control: SharedArrayBuffer; parties: number }
  /**
   * Builds a ring of `live` objects it holds and a ring of `garbage` objects it drops, waits
   * for the `parties - 1` traffic workers to run, times gc.collect(), stops the traffic, and
   * frees its live ring.
   */
  | { type: 'collect'; garbage: number; live: number; control: SharedArrayBuffer; parties: number }
  /** Refcount pairs on `object`, or alloc steps in the window, until the stop word is set. */
  | { type: 'traffic'; kind: 'refcount' | 'alloc'; object: number; control: SharedArrayBuffer; parties: number }
  /** Drops the owned object, frees the window, detaches, and exits. */
  | { type: 'exit' };

export type Reply =
  | { type: 'ready' }
  /** A timed loop: its ops (pairs), and when it started and ended (performance.timeOrigin + performance.now(), ms). */
  | { type: 'timed'; ops: number; start: number; end: number }
  | { type: 'released'; blocks: number }
  | { type: 'owned'; object: number }
  | {
    type: 'collected';
    /** What gc.collect() returned: the unreachable objects it found. */
    collected: number;
    /** The collect call's wall time in this worker. */
    callMs: number;
    /** The pause gc.getStats() counted for this collection, when the heap counts pauses. */
    statsPauseMs: number | null;
  }
  | { type: 'trafficked'; ops: number }
  | { type: 'exited' }
  | { type: 'failed'; name: string; message: string };
