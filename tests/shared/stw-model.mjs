// One run of the cross-worker model of stop-the-world collection, in a process of its own
// (tests/shared/stw.test.ts). N workers on one free-threaded heap run random graph operations
// on objects of type Node: make one, link and unlink slots (across workers' objects), drop and
// duplicate references, take a reference out of a slot (under gil.run, so that nobody drops it
// in between), hand a reference to another worker through a mailbox (incref'd first, the
// receiver owns it), bursts of lock-free incref/decref, gc.collect(), and random detaches (the
// worker leaves the heap with its references outstanding, attaches again as a new thread and
// goes on: its objects are abandoned, its references now another thread's). Automatic
// collections run meanwhile. Every instance checks the heap inside every pause it stops the
// world for (World.onStopped: collections', and check()'s own). At the end the workers drop what
// they hold, the creator drops what is left in the mailboxes and collects: no Node may be left,
// every Node made must have been finalized exactly once (the finalizers count, per instance),
// and check() must pass. Runs from dist/ (npm test builds it first). Prints one JSON line.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { Heap } from '../../dist/index.js';
import { worldOf } from '../../dist/heap/shared.js';

const SLOTS = 3;
const MAILBOX = 16;

function nodeType(heap, counts) {
  return heap.defineType({ name: 'Node', refSlots: SLOTS, finalizer: () => counts.finalized++ });
}

/** This instance checks the heap in every pause it stops the world for. */
function checkInPauses(heap, counts) {
  worldOf(heap).onStopped = () => {
    heap.check();
    counts.checks++;
  };
}

if (isMainThread) {
  const [workers = 3, steps = 4000, seed = 1] = process.argv.slice(2).map(Number);
  const heap = await Heap.create({ shared: true, concurrency: 'free-threaded' });
  const counts = { finalized: 0, checks: 0 };
  nodeType(heap, counts);
  checkInPauses(heap, counts);
  const mail = new Int32Array(new SharedArrayBuffer(workers * MAILBOX * 4));
  const results = await Promise.all(Array.from({ length: workers }, (_, index) => new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: { handle: heap.share(), index, workers, steps, seed, mail: mail.buffer } });
    worker.once('message', resolve);
    worker.once('error', reject);
  })));
  for (let i = 0; i < mail.length; i++) {
    const o = Atomics.exchange(mail, i, 0);
    if (o !== 0) heap.decref(o >>> 0);
  }
  heap.gc.collect();
  heap.check();
  const left = heap.gc.getObjects().filter((o) => heap.typeOf(o).name === 'Node').length;
  const sum = (key) => results.reduce((total, r) => total + r[key], 0);
  const stats = heap.gc.getStats();
  console.log(JSON.stringify({
    created: sum('created'),
    finalized: sum('finalized') + counts.finalized,
    left,
    checks: sum('checks') + counts.checks,
    detaches: sum('detaches'),
    given: sum('given'),
    collections: stats.reduce((total, s) => total + s.collections, 0),
    pauses: stats.reduce((total, s) => total + s.pauses, 0),
    ...heap.gil.stats().world,
    attachments: heap.attachments(),
  }));
} else {
  const { handle, index, workers, steps, seed, mail: mailBuffer } = workerData;
  const mail = new Int32Array(mailBuffer);
  const rng = xoroshiro128plus(seed * 1000 + index);
  const pick = (n) => uniformInt(rng, 0, n - 1);
  const counts = { finalized: 0, checks: 0 };
  const totals = { created: 0, finalized: 0, checks: 0, detaches: 0, given: 0 };
  let heap;
  let Node;
  const attach = async () => {
    heap = await Heap.attach(handle);
    Node = nodeType(heap, counts);
    checkInPauses(heap, counts);
  };
  const leave = () => {
    heap.detach();
    totals.finalized += counts.finalized;
    totals.checks += counts.checks;
    counts.finalized = 0;
    counts.checks = 0;
  };
  await attach();
  /** References this worker owns, one entry each. */
  const held = [];
  const take = () => {
    for (let i = index * MAILBOX; i < (index + 1) * MAILBOX; i++) {
      const o = Atomics.exchange(mail, i, 0);
      if (o !== 0) held.push(o >>> 0);
    }
  };
  const any = () => held[pick(held.length)];
  const remove = () => {
    const i = pick(held.length);
    const o = held[i];
    held[i] = held[held.length - 1];
    held.pop();
    return o;
  };
  for (let step = 0; step < steps; step++) {
    const op = pick(100);
    if (held.length === 0 || op < 20) {
      held.push(heap.newObject(Node));
      totals.created++;
    } else if (op < 40) {
      heap.setRef(any(), pick(SLOTS), any());
    } else if (op < 48) {
      heap.setRef(any(), pick(SLOTS), null);
    } else if (op < 62) {
      heap.decref(remove());
    } else if (op < 66) {
      const o = any();
      heap.incref(o);
      held.push(o);
    } else if (op < 72) {
      const from = any();
      heap.gil.run(() => {
        const o = heap.getRef(from, pick(SLOTS));
        if (o !== null) {
          heap.incref(o);
          held.push(o);
        }
      });
    } else if (op < 80) {
      const o = any();
      heap.incref(o);
      const to = (index + 1 + pick(workers - 1)) % workers;
      const slot = to * MAILBOX + pick(MAILBOX);
      if (Atomics.compareExchange(mail, slot, 0, o) === 0) totals.given++;
      else heap.decref(o);
    } else if (op < 88) {
      take();
    } else if (op < 96) {
      const o = any();
      for (let i = 0; i < 200; i++) heap.incref(o);
      for (let i = 0; i < 200; i++) heap.decref(o);
    } else if (op < 99) {
      heap.gc.collect();
    } else {
      leave();
      totals.detaches++;
      await attach();
    }
  }
  take();
  for (const o of held) heap.decref(o);
  leave();
  parentPort.postMessage(totals);
}
