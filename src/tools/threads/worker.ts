// One worker of `pymalloc threads` (threads.ts starts N of them per mode): attaches to the mode's
// heap once, then runs the commands of protocol.ts one at a time and answers each.

import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';

import { Heap, type ObjectType } from '../../index.js';
import { draws } from '../race/protocol.js';
import { pauseMsOf } from './ft-stats.js';
import {
  ARRIVED, MAX_BLOCK, MIN_BLOCK, RUNNING, STOP, TRAFFIC_BATCH, WINDOW,
  type Command, type Reply, type WorkerSetup,
} from './protocol.js';

const setup = workerData as WorkerSetup;
const port = parentPort!;

/** Waits at the start barrier until `parties` workers are there. */
function arrive(control: Int32Array, parties: number): void {
  let arrived = Atomics.add(control, ARRIVED, 1) + 1;
  if (arrived === parties) {
    Atomics.notify(control, ARRIVED);
    return;
  }
  while (arrived < parties) {
    Atomics.wait(control, ARRIVED, arrived);
    arrived = Atomics.load(control, ARRIVED);
  }
}

/** The window of live blocks, and the sizes and slots of its steps, drawn once. */
class Window {
  readonly #heap: Heap;
  readonly #blocks = new Uint32Array(WINDOW);
  readonly #sizes: Uint32Array;
  readonly #slots: Uint16Array;
  #draw = 0;

  constructor(heap: Heap, seed: number) {
    this.#heap = heap;
    ({ sizes: this.#sizes, slots: this.#slots } = draws(seed, 1 << 16, MIN_BLOCK, MAX_BLOCK, WINDOW));
  }

  fill(): void {
    for (let slot = 0; slot < WINDOW; slot++) if (this.#blocks[slot] === 0) this.#blocks[slot] = this.#heap.malloc(this.#size());
  }

  #size(): number {
    return this.#sizes[this.#draw++ & 0xffff];
  }

  /** `steps` frees of a random live block, each followed by a malloc in its place. */
  churn(steps: number): void {
    const heap = this.#heap;
    const blocks = this.#blocks;
    for (let i = 0; i < steps; i++) {
      const slot = this.#slots[this.#draw & 0xffff];
      heap.free(blocks[slot]);
      blocks[slot] = heap.malloc(this.#size());
    }
  }

  /** Frees every live block; how many there were. */
  release(): number {
    const live = this.#blocks.filter((address) => address !== 0);
    this.#heap.freeMany(live);
    this.#blocks.fill(0);
    return live.length;
  }
}

function pairs(heap: Heap, object: number, count: number): void {
  for (let i = 0; i < count; i++) {
    heap.incref(object);
    heap.decref(object);
  }
}

/** A ring of `length` objects (each one's slot 0 refers to the next); the first, owned. */
function ring(heap: Heap, type: ObjectType, length: number): number {
  const first = heap.newObject(type);
  let last = first;
  for (let i = 1; i < length; i++) {
    const next = heap.newObject(type);
    heap.setRef(last, 0, next);
    if (last !== first) heap.decref(last);
    last = next;
  }
  heap.setRef(last, 0, first);
  if (last !== first) heap.decref(last);
  return first;
}

/** The time on the clock every thread shares, in ms. */
const now = () => performance.timeOrigin + performance.now();

/** Times `loop` after the barrier. */
function timed(control: Int32Array, parties: number, ops: number, loop: () => void): Reply {
  arrive(control, parties);
  const start = now();
  loop();
  return { type: 'timed', ops, start, end: now() };
}

const heap = await Heap.attach(setup.handle);
const window = new Window(heap, setup.index + 1);
const node = heap.defineType({ name: 'pymalloc-threads-node', refSlots: 1 });
let owned = 0;

function collect(command: Extract<Command, { type: 'collect' }>, control: Int32Array): Reply {
  const live = ring(heap, node, command.live);
  heap.decref(ring(heap, node, command.garbage));
  arrive(control, command.parties);
  while (Atomics.load(control, RUNNING) < command.parties - 1);
  const before = heap.gc.getStats();
  const start = performance.now();
  const collected = heap.gc.collect();
  const callMs = performance.now() - start;
  Atomics.store(control, STOP, 1);
  const statsPauseMs = pauseMsOf(before, heap.gc.getStats());
  // Cut the live ring, so that refcounting frees it whole and no collection is needed for it.
  heap.setRef(live, 0, null);
  heap.decref(live);
  return { type: 'collected', collected, callMs, statsPauseMs };
}

function traffic(command: Extract<Command, { type: 'traffic' }>, control: Int32Array): Reply {
  if (command.kind === 'alloc') window.fill();
  arrive(control, command.parties);
  let ops = 0;
  do {
    if (command.kind === 'refcount') pairs(heap, command.object, TRAFFIC_BATCH);
    else window.churn(TRAFFIC_BATCH);
    if (ops === 0) Atomics.add(control, RUNNING, 1);
    ops += TRAFFIC_BATCH;
  } while (Atomics.load(control, STOP) === 0);
  if (command.kind === 'alloc') window.release();
  return { type: 'trafficked', ops };
}

function run(command: Command): Reply {
  switch (command.type) {
    case 'alloc': {
      window.fill();
      return timed(new Int32Array(command.control), command.parties, command.iterations, () => window.churn(command.iterations));
    }
    case 'release':
      return { type: 'released', blocks: window.release() };
    case 'own':
      owned = heap.newList();
      return { type: 'owned', object: owned };
    case 'refcount':
      return timed(new Int32Array(command.control), command.parties, command.iterations, () => pairs(heap, command.object, command.iterations));
    case 'collect':
      return collect(command, new Int32Array(command.control));
    case 'traffic':
      return traffic(command, new Int32Array(command.control));
    case 'exit':
      window.release();
      if (owned !== 0) heap.decref(owned);
      heap.detach();
      return { type: 'exited' };
  }
}

port.on('message', (command: Command) => {
  let reply: Reply;
  try {
    reply = run(command);
  } catch (error) {
    const { name, message } = error instanceof Error ? error : { name: 'Error', message: String(error) };
    reply = { type: 'failed', name, message };
  }
  port.postMessage(reply);
  if (reply.type === 'exited') port.close();
});
port.postMessage({ type: 'ready' } satisfies Reply);
