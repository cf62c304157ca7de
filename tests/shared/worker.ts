// One worker of the shared-heap tests: attaches to the heap it is handed and runs one task.
// Tasks that must overlap wait at a start barrier: `ready` counts the attached workers, and
// all spin on `go` until the test releases them.

import { parentPort, workerData } from 'node:worker_threads';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { Heap, type SharedHeapHandle } from '../../src/index.js';
import { brcHeader } from './helpers.js';

interface Task {
  task: string;
  handle: SharedHeapHandle;
  /** Int32 words: [0] workers attached, [1] 1 once released, [2] 1 to pause a busy worker and 2 to stop it, [3] 1 while it is paused. */
  barrier: SharedArrayBuffer;
  index: number;
  [key: string]: unknown;
}

const data = workerData as Task;
const heap = await Heap.attach(data.handle);
const words = new Int32Array(data.barrier);

function startTogether(): void {
  Atomics.add(words, 0, 1);
  Atomics.notify(words, 0);
  while (Atomics.load(words, 1) === 0) Atomics.wait(words, 1, 0, 50);
}

/** The sleep a worker takes while holding the GIL, to make the others queue up and sleep. */
function sleepHolding(ms: number): void {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  heap.gil.run(() => Atomics.wait(cell, 0, 0, ms));
}

const tasks: Record<string, () => unknown> = {
  /** ops increfs of one object, one call each or in gil.run batches; worker 0 also sleeps holding the GIL. */
  incref() {
    const o = data.o as number;
    const ops = data.ops as number;
    const batch = data.batch as number;
    startTogether();
    const holds = data.index === 0 ? 10 : 0;
    const every = Math.floor(ops / (holds + 1));
    for (let done = 0; done < ops; ) {
      const n = Math.min(batch || 1, ops - done);
      if (batch) {
        heap.gil.run(() => {
          for (let i = 0; i < n; i++) heap.incref(o);
        });
      } else {
        heap.incref(o);
      }
      done += n;
      if (holds && done % every < n) sleepHolding(2);
    }
    return { done: ops };
  },

  /**
   * Random malloc/calloc/realloc/free and object operations, each block filled with a pattern
   * of this worker's and checked before it is resized or freed; every address handed out is
   * claimed in the shared `owners` table (one i32 per 16 bytes of memory) inside the same GIL
   * acquisition, so an address handed out twice is seen at once.
   */
  model() {
    const owners = new Int32Array(data.owners as SharedArrayBuffer);
    const me = data.index + 1;
    const rng = xoroshiro128plus(data.seed as number);
    const next = (lo: number, hi: number) => uniformInt(rng, lo, hi);
    const live = new Map<number, { size: number; tag: number }>();
    const objects: number[] = [];
    let serial = 0;
    let duplicates = 0;
    let corrupted = 0;
    const claim = (p: number) => {
      if (Atomics.compareExchange(owners, p >>> 4, 0, me) !== 0) duplicates++;
    };
    const release = (p: number) => {
      Atomics.store(owners, p >>> 4, 0);
    };
    const fill = (p: number, size: number, tag: number) => heap.bytes(p, size).fill(tag);
    const intact = (p: number, size: number, tag: number) => {
      if (!heap.read(p, size).every((b) => b === tag)) corrupted++;
    };
    startTogether();
    for (let step = 0; step < (data.steps as number); step++) {
      const op = next(0, 9);
      const tag = (me * 37 + serial++) & 0xff;
      if (op <= 3 || live.size === 0) {
        const size = next(0, 9) === 0 ? next(513, 20000) : next(1, 512);
        const zeroed = op === 1;
        const p = heap.gil.run(() => {
          const q = zeroed ? heap.calloc(1, size) : heap.malloc(size);
          claim(q);
          return q;
        });
        if (zeroed && !heap.read(p, size).every((b) => b === 0)) corrupted++;
        fill(p, size, tag);
        live.set(p, { size, tag });
      } else if (op <= 5) {
        const [p, block] = [...live][next(0, live.size - 1)];
        intact(p, block.size, block.tag);
        const size = next(1, 2000);
        const q = heap.gil.run(() => {
          release(p);
          const moved = heap.realloc(p, size);
          claim(moved);
          return moved;
        });
        live.delete(p);
        if (!heap.read(q, Math.min(size, block.size)).every((b) => b === block.tag)) corrupted++;
        fill(q, size, tag);
        live.set(q, { size, tag });
      } else if (op <= 7) {
        const [p, block] = [...live][next(0, live.size - 1)];
        intact(p, block.size, block.tag);
        heap.gil.run(() => {
          release(p);
          heap.free(p);
        });
        live.delete(p);
      } else if (op === 8) {
        const list = heap.newList();
        const item = heap.newStr(`w${me}-${serial}`);
        heap.listAppend(list, item);
        heap.decref(item);
        objects.push(list);
      } else if (objects.length) {
        const list = objects.pop()!;
        if (heap.length(list) !== 1) corrupted++;
        heap.decref(list);
      }
    }
    // A block stays where it was made when realloc keeps it, so its size does not say where it is.
    const small = [...live.keys()].filter((p) => heap.owns(p)).length;
    const leftOver = objects.length;
    for (const list of objects) heap.decref(list);
    return { duplicates, corrupted, liveBlocks: live.size, smallBlocks: small, objects: leftOver, addresses: [...live.keys()] };
  },

  /** Allocates and frees until told to stop; pauses (acknowledged in words[3]) while words[2] is 1. */
  busy() {
    const live: number[] = [];
    const rng = xoroshiro128plus(data.index + 11);
    startTogether();
    let rounds = 0;
    for (;;) {
      const state = Atomics.load(words, 2);
      if (state === 2) break;
      if (state === 1) {
        Atomics.store(words, 3, 1);
        Atomics.notify(words, 3);
        Atomics.wait(words, 2, 1, 20);
        continue;
      }
      Atomics.store(words, 3, 0);
      if (live.length > 200 || (live.length && uniformInt(rng, 0, 1) === 0)) {
        heap.free(live.splice(uniformInt(rng, 0, live.length - 1), 1)[0]);
      } else {
        live.push(heap.malloc(uniformInt(rng, 1, 600)));
      }
      rounds++;
    }
    return { rounds, live };
  },

  /** Allocates raw blocks until the memory is past `beyond` bytes; the last block is filled with 0x5a. */
  grow() {
    const blocks: number[] = [];
    while (heap.memory.buffer.byteLength <= (data.beyond as number)) blocks.push(heap.malloc(1 << 20));
    const last = blocks[blocks.length - 1];
    heap.bytes(last, 1 << 20).fill(0x5a);
    // An object past the memory the test's instance has seen: its type word is read through a cached view.
    let list = heap.newList();
    while (list < (data.beyond as number)) list = heap.newList();
    return { last, list, byteLength: heap.memory.buffer.byteLength };
  },

  /** Reads back a block the test wrote, through this worker's views (made before the memory grew). */
  read() {
    return { bytes: Array.from(heap.read(data.address as number, 8)) };
  },

  /** Defines Node (with a finalizer), makes a two-node cycle and drops it; reports the type's name from typeOf. */
  cycle() {
    const node = heap.defineType({ name: 'Node', refSlots: 1, finalizer: () => {} });
    const a = heap.newObject(node);
    const b = heap.newObject(node);
    heap.setRef(a, 0, b);
    heap.setRef(b, 0, a);
    heap.decref(a);
    heap.decref(b);
    const typeName = heap.typeOf(a).name;
    if (data.detach) heap.detach();
    return { a, b, typeName };
  },

  /** Takes the GIL and never lets go (after optionally breaking a free list), until terminated. */
  hold() {
    heap.gil.run(() => {
      if (data.breakFreeList) {
        const p = heap.malloc(64);
        heap.malloc(64);
        heap.free(p);
        // The freed block's first word is its free-list link: point it into the middle of a block.
        new Uint32Array(heap.memory.buffer, p, 1)[0] = p + 4;
      }
      Atomics.store(words, 1, 1);
      Atomics.notify(words, 1);
      for (;;) Atomics.wait(words, 2, 0, 1000);
    });
  },

  /**
   * Grows large blocks that must move (a small one pinned after each) until terminated: the raw
   * allocator copies them under the core's heap lock on a free-threaded heap, so most of this
   * worker's time is spent holding it and a terminate() often lands there. Counts rounds in words[3].
   */
  large() {
    startTogether();
    for (;;) {
      const block = heap.malloc(40_000);
      const pin = heap.malloc(16);
      heap.free(heap.realloc(block, 80_000));
      heap.free(pin);
      Atomics.add(words, 3, 1);
    }
  },

  /** Waits for the GIL with one malloc; reports what happened. */
  malloc() {
    try {
      const p = heap.malloc(64);
      heap.free(p);
      return { ok: true };
    } catch (error) {
      return { ok: false, error: (error as Error).name, invariant: (error as { invariant?: string }).invariant };
    }
  },

  /**
   * A free-threaded heap's refcount steps, one after another: [op, index] pairs, where index
   * names data.objects[i] or, past them, the objects this worker made ('new' makes a list). When
   * data.sync is given, the worker publishes its first made object in sync[0] and waits for
   * sync[1] before the steps after 'wait'. Reports each object's header words (null once it
   * is freed), then detaches unless data.stay.
   */
  script() {
    const given = (data.objects as number[] | undefined) ?? [];
    const made: number[] = [];
    const sync = data.sync ? new Int32Array(data.sync as SharedArrayBuffer) : undefined;
    const object = (i: number) => (i < given.length ? given[i] : made[i - given.length]);
    for (const [op, i] of data.steps as [string, number][]) {
      if (op === 'new') made.push(heap.newList());
      else if (op === 'incref') heap.incref(object(i));
      else if (op === 'decref') heap.decref(object(i));
      else if (op === 'wait') {
        Atomics.store(sync!, 0, made[0]);
        Atomics.notify(sync!, 0);
        while (Atomics.load(sync!, 1) === 0) Atomics.wait(sync!, 1, 0, 50);
      }
    }
    // refcount, not isObject: it takes no lock, so it is no safe point that would merge the queue.
    const live = (o: number) => {
      try {
        return heap.refcount(o) > 0;
      } catch {
        return false;
      }
    };
    const headers = [...given, ...made].map((o) => (live(o) ? brcHeader(heap, o) : null));
    if (!data.stay) heap.detach();
    return { made, headers };
  },

  /** Calls after the owner disposed, or after detaching itself. */
  afterEnd() {
    const errors: string[] = [];
    if (data.detachFirst) heap.detach();
    for (const call of [() => heap.malloc(8), () => heap.newList(), () => heap.gc.collect(), () => heap.stats()]) {
      try {
        call();
        errors.push('none');
      } catch (error) {
        errors.push(`${(error as Error).name}: ${(error as Error).message}`);
      }
    }
    return { errors };
  },
};

const result = tasks[data.task]();
parentPort!.postMessage(result);
