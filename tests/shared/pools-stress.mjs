// One run of the per-thread pools stress test, in a process of its own (tests/shared/pools.test.ts).
// N workers of a free-threaded heap, released together, allocate blocks of random small sizes (and
// now and then a large one, which the raw allocator serves under the heap lock), tag each with a
// word of its own, and either keep it, to free it themselves later, or hand it to another worker
// through a single-producer ring of a SharedArrayBuffer; the receiver checks the tag and frees it:
// a free into a pool it does not own, which goes back to the owner through its remote list. A
// worker that is done frees what it kept and drains its rings until every worker is done, then
// leaves LEFT blocks of its own to the creator and detaches; the creator frees those once every
// worker has gone: frees into pools of no thread, which take the locked path. Every SAFE_POINT steps a call that takes the heap mutex drains the worker's
// remote list at its safe point. At the end the creator allocates a block of every class (so it
// adopts what the workers left), frees them, and checks the heap.
// Runs from dist/ (npm test builds it first). Prints one JSON line.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { Heap } from '../../dist/index.js';

/** Slots of each ring, two words each: the address and its tag. */
const RING = 512;
const KEPT = 256;
const SAFE_POINT = 4096;
const LEFT = 32;
/** Barrier words: [0] attached, [1] released, [2] done, [3] detached. */
const BARRIER_WORDS = 4;

/** The ring from worker `from` to worker `to`: [write, read] counters, then the slots. */
function ring(rings, n, from, to) {
  const words = 2 + 2 * RING;
  return rings.subarray((from * n + to) * words, (from * n + to + 1) * words);
}

const inUse = (stats) => stats.sizeClasses.reduce((sum, c) => sum + c.blocksInUse, 0);
const sum = (slots, key) => slots.reduce((total, slot) => total + slot[key], 0);

if (isMainThread) {
  const [workersArg, stepsArg, build, seedArg] = process.argv.slice(2);
  const n = Number(workersArg);
  const heap = await Heap.create({ shared: true, concurrency: 'free-threaded', build, maxMemory: 256 * 2 ** 20 });
  const before = heap.stats();
  const barrier = new Int32Array(new SharedArrayBuffer(4 * BARRIER_WORDS));
  const rings = new Int32Array(new SharedArrayBuffer(4 * n * n * (2 + 2 * RING)));
  const done = Array.from({ length: n }, (_, index) => new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), {
      workerData: { handle: heap.share(), barrier: barrier.buffer, rings: rings.buffer, index, workers: n, steps: Number(stepsArg), seed: Number(seedArg) * 100 + index },
    });
    worker.once('message', resolve);
    worker.once('error', reject);
  }));
  while (Atomics.load(barrier, 0) < n) Atomics.wait(barrier, 0, Atomics.load(barrier, 0), 50);
  Atomics.store(barrier, 1, 1);
  Atomics.notify(barrier, 1);
  const results = await Promise.all(done);
  const creator = heap.stats().threads.slots.find((slot) => slot.id === 1);
  let leftBadTags = 0;
  for (const [p, tag] of results.flatMap((r) => r.left)) {
    if (new Int32Array(heap.memory.buffer)[p >> 2] !== tag) leftBadTags++;
    heap.free(p);
  }
  const afterWorkers = heap.stats();
  const lockedByCreator = afterWorkers.threads.slots.find((slot) => slot.id === 1).lockedFrees - creator.lockedFrees;
  const sharedPools = afterWorkers.threads.sharedPools;
  // A block of every class: the creator has no pool of most, so it adopts the workers' leftovers.
  const blocks = Array.from({ length: heap.config.numClasses }, (_, index) => heap.malloc((index + 1) * heap.config.alignment));
  const adopting = heap.stats().threads.slots.find((slot) => slot.id === 1);
  for (const p of blocks) heap.free(p);
  heap.check();
  const after = heap.stats();
  const slots = after.threads.slots;
  console.log(JSON.stringify({
    steps: results.reduce((total, r) => total + r.steps, 0),
    badTags: results.reduce((total, r) => total + r.badTags, 0) + leftBadTags,
    left: n * LEFT,
    lockedByCreator,
    errors: results.flatMap((r) => r.errors),
    handed: results.reduce((total, r) => total + r.handed, 0),
    received: results.reduce((total, r) => total + r.received, 0),
    overlapped: results.filter((r) => r.overlapped).length,
    leakedBlocks: inUse(after) - inUse(before),
    leakedRaw: after.raw.blocks - before.raw.blocks,
    pending: sum(slots, 'remotePending'),
    remoteFrees: sum(slots, 'remoteFrees'),
    lockedFrees: sum(slots, 'lockedFrees'),
    drains: sum(slots, 'drains'),
    drained: sum(slots, 'drained'),
    adoptedByCreator: adopting.adopted,
    sharedPools,
    attached: slots.filter((slot) => slot.tid !== 0).length,
  }));
} else {
  const { handle, barrier, rings: ringsBuffer, index, workers: n, steps, seed } = workerData;
  const heap = await Heap.attach(handle);
  const words = new Int32Array(barrier);
  const rings = new Int32Array(ringsBuffer);
  const rng = xoroshiro128plus(seed);
  const next = (lo, hi) => uniformInt(rng, lo, hi);
  let memory = new Int32Array(heap.memory.buffer);
  const view = () => (memory.buffer === heap.memory.buffer ? memory : (memory = new Int32Array(heap.memory.buffer)));
  const kept = [];
  const errors = [];
  let serial = 0, handed = 0, received = 0, badTags = 0, done = 0;

  const freeTagged = (p, tag) => {
    if (view()[p >> 2] !== tag) badTags++;
    heap.free(p);
  };
  /** Frees what the other workers handed to this one. */
  const receive = () => {
    let busy = false;
    for (let from = 0; from < n; from++) {
      if (from === index) continue;
      const r = ring(rings, n, from, index);
      for (let read = r[1]; read < Atomics.load(r, 0); read++) {
        const slot = 2 + 2 * (read % RING);
        freeTagged(r[slot], r[slot + 1]);
        Atomics.store(r, 1, read + 1);
        received++;
        busy = true;
      }
    }
    return busy;
  };

  Atomics.add(words, 0, 1);
  Atomics.notify(words, 0);
  while (Atomics.load(words, 1) === 0) Atomics.wait(words, 1, 0, 50);
  try {
    for (let step = 0; step < steps; step++) {
      const size = next(0, 63) === 0 ? 600 + next(0, 2000) : 1 + next(0, next(0, 3) === 0 ? 511 : 63);
      const p = heap.malloc(size);
      const tag = (index << 24) | (++serial & 0xffffff);
      view()[p >> 2] = tag;
      const to = next(0, n - 1);
      const r = to === index ? undefined : ring(rings, n, index, to);
      if (r && Atomics.load(r, 0) - Atomics.load(r, 1) < RING) {
        const write = r[0];
        const slot = 2 + 2 * (write % RING);
        r[slot] = p;
        r[slot + 1] = tag;
        Atomics.store(r, 0, write + 1);
        handed++;
      } else {
        kept.push([p, tag]);
        if (kept.length > KEPT) {
          const k = next(0, kept.length - 1);
          const [q, qtag] = kept[k];
          kept[k] = kept[kept.length - 1];
          kept.pop();
          freeTagged(q, qtag);
        }
      }
      receive();
      if (step % SAFE_POINT === SAFE_POINT - 1) heap.attachments();
      done++;
    }
    for (const [p, tag] of kept) freeTagged(p, tag);
  } catch (error) {
    errors.push(String(error));
  }
  // Whether another worker was still running when this one finished: the loops overlapped.
  const overlapped = Atomics.add(words, 2, 1) < n - 1;
  // Until every worker is done and nothing is left in flight to this one.
  while (receive() || Atomics.load(words, 2) < n) Atomics.wait(words, 2, Atomics.load(words, 2), 1);
  while (receive());
  const left = Array.from({ length: LEFT }, (_, k) => {
    const p = heap.malloc(8 + 8 * k);
    const tag = (index << 24) | (++serial & 0xffffff);
    view()[p >> 2] = tag;
    return [p, tag];
  });
  heap.detach();
  parentPort.postMessage({ steps: done, badTags, errors, handed, received, overlapped, left });
}
