// One run of the biased-refcount stress test, in a process of its own (tests/shared/lock.test.ts).
// The creator makes OBJECTS lists and each of N workers makes PER_WORKER more; then all workers,
// released together, incref and decref every object at random for `ops` steps. A worker never
// drops more references than it holds, except up to BUDGET per object that the object's owner
// handed it beforehand (the owner incref'd BUDGET times per other worker): so shared counts go
// through 0 and below, decrefs are queued to owners, merged at their safe points (every
// SAFE_POINT steps a call that takes the heap mutex) and at detach, and owners detach with
// other workers' references outstanding. Every object is in a cycle with a partner list that
// nothing else refers to; with `collect`, the creator runs gc.collect() in a loop meanwhile: the
// collector reads counts that change under it, and must collect none of them. At the end every
// count must be exactly what the workers' balances say; dropping those references must leave
// each object to its cycle, and one collection must then free exactly the objects and partners.
// Runs from dist/ (npm test builds it first). Prints one JSON line.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { Heap } from '../../dist/index.js';

const OBJECTS = 8;
const PER_WORKER = 4;
const BUDGET = 8;
/** A worker's balance on one object stays below this, so that counts keep coming back to 0. */
const CEILING = 12;
const SAFE_POINT = 1000;

/** The header's words (docs/free-threaded.md): tid, shared, local. */
function header(heap, o) {
  const words = new Int32Array(heap.memory.buffer);
  return { tid: words[(o - 16) >> 2] >>> 0, shared: words[(o - 8) >> 2], local: words[o >> 2] >>> 0 };
}

/** o <-> a new list that nothing else refers to: only a collection frees the two. */
function pair(heap, o) {
  const partner = heap.newList();
  heap.listAppend(partner, o);
  heap.listAppend(o, partner);
  heap.decref(partner);
}

if (isMainThread) {
  const [workersArg, opsArg, build, seedArg, collectArg] = process.argv.slice(2);
  const n = Number(workersArg);
  const heap = await Heap.create({ shared: true, concurrency: 'free-threaded', build, maxMemory: 64 * 2 ** 20 });
  heap.decref(heap.newList()); // the object space and its type table are set up before the baseline
  const before = heap.stats();
  const mine = [];
  for (let i = 0; i < OBJECTS; i++) {
    const o = heap.newList();
    for (let k = 0; k < n * BUDGET; k++) heap.incref(o);
    pair(heap, o);
    mine.push(o);
  }
  let collections = 0;
  let collected = 0;
  const collector = collectArg === '1' && setInterval(() => {
    collected += heap.gc.collect();
    collections++;
  }, 1);
  const table = new Int32Array(new SharedArrayBuffer(4 * (n * PER_WORKER + 4)));
  const done = Array.from({ length: n }, (_, index) => new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), {
      workerData: { handle: heap.share(), table: table.buffer, mine, ops: Number(opsArg), index, workers: n, seed: Number(seedArg) * 100 + index },
    });
    worker.once('message', resolve);
    worker.once('error', reject);
  }));
  const results = await Promise.all(done);
  if (collector) clearInterval(collector);
  heap.check(); // the creator's safe point: what was queued to it is merged here
  const objects = [...mine, ...Array.from(table.subarray(0, n * PER_WORKER))];
  // Made (1), the partner's item (1), and the budgets handed out.
  const bases = objects.map((_, j) => 2 + (j < OBJECTS ? n : n - 1) * BUDGET);
  const expected = objects.map((_, j) => bases[j] + results.reduce((sum, r) => sum + r.balances[j], 0));
  const counts = objects.map((o) => heap.refcount(o));
  const mismatches = counts.filter((c, j) => c !== expected[j]).length;
  const merged = objects.filter((o) => header(heap, o).tid === 0).length;
  objects.forEach((o, j) => {
    for (let k = 1; k < counts[j]; k++) heap.decref(o);
  });
  const freedEarly = objects.filter((o) => !heap.isObject(o) || heap.refcount(o) !== 1).length;
  const cycles = heap.gc.collect();
  const survived = objects.filter((o) => heap.isObject(o)).length;
  heap.check();
  const after = heap.stats();
  const inUse = (s) => s.sizeClasses.reduce((sum, c) => sum + c.blocksInUse, 0) - s.quarantine.objects;
  console.log(JSON.stringify({
    objects: objects.length, mismatches, counts, expected,
    merged, freedEarly, survived, cycles, collections, collected, leakedBlocks: inUse(after) - inUse(before),
    overlapped: results.filter((r) => r.overlapped).length, steps: results.reduce((sum, r) => sum + r.steps, 0),
  }));
} else {
  const { handle, table: tableBuffer, mine, ops, index, workers, seed } = workerData;
  const heap = await Heap.attach(handle);
  const table = new Int32Array(tableBuffer);
  const made = [];
  for (let k = 0; k < PER_WORKER; k++) {
    const o = heap.newList();
    for (let b = 0; b < (workers - 1) * BUDGET; b++) heap.incref(o);
    pair(heap, o);
    made.push(o);
    table[index * PER_WORKER + k] = o;
  }
  // Start barrier: table[n * PER_WORKER] counts the workers whose objects are published.
  const ready = workers * PER_WORKER;
  Atomics.add(table, ready, 1);
  Atomics.notify(table, ready);
  while (Atomics.load(table, ready) < workers) Atomics.wait(table, ready, Atomics.load(table, ready), 50);
  const objects = [...mine, ...Array.from(table.subarray(0, workers * PER_WORKER))];
  const own = objects.map((o) => made.includes(o));
  const balances = objects.map(() => 0);
  const rng = xoroshiro128plus(seed);
  for (let step = 1; step <= ops; step++) {
    const j = uniformInt(rng, 0, objects.length - 1);
    const floor = own[j] ? 0 : -BUDGET;
    const drop = balances[j] >= CEILING || (balances[j] > floor && uniformInt(rng, 0, 1) === 0);
    if (drop) {
      heap.decref(objects[j]);
      balances[j]--;
    } else {
      heap.incref(objects[j]);
      balances[j]++;
    }
    if (step % SAFE_POINT === 0) heap.length(objects[j]);
  }
  // Overlapped: another worker was still running when this one finished.
  const finished = workers * PER_WORKER + 1;
  const overlapped = Atomics.add(table, finished, 1) < workers - 1;
  heap.detach();
  parentPort.postMessage({ balances, overlapped, steps: ops });
}
