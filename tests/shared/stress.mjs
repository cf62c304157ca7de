// One run of the GIL stress test, in a process of its own (tests/shared/lock.test.ts): N workers
// each incref one object `ops` times under the GIL, released together from a start barrier,
// worker 0 sleeping ten times while holding the GIL so that the others must queue and sleep.
// Runs from dist/ (npm test builds it first): workers of a fresh process start fastest there.
// Prints one JSON line: the final refcount, the expected one, and the GIL's statistics.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Heap } from '../../dist/index.js';

if (isMainThread) {
  const [workers, ops, batch, concurrency] = process.argv.slice(2);
  const n = Number(workers);
  const heap = await Heap.create({ shared: true, concurrency, maxMemory: 64 * 2 ** 20 });
  const o = heap.newList();
  const barrier = new Int32Array(new SharedArrayBuffer(8));
  const done = Array.from({ length: n }, (_, index) => new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), {
      workerData: { handle: heap.share(), barrier: barrier.buffer, o, ops: Number(ops), batch: Number(batch), index },
    });
    worker.once('message', resolve);
    worker.once('error', reject);
  }));
  while (Atomics.load(barrier, 0) < n) Atomics.wait(barrier, 0, Atomics.load(barrier, 0), 50);
  Atomics.store(barrier, 1, 1);
  Atomics.notify(barrier, 1);
  const overlapped = (await Promise.all(done)).filter((started) => started).length;
  const stats = heap.gil.stats();
  heap.check();
  console.log(JSON.stringify({
    refcount: heap.refcount(o), expected: 1 + n * Number(ops), overlapped,
    sleeps: stats.sleeps, contended: stats.contended, handoffs: stats.handoffs, acquisitions: stats.acquisitions,
  }));
} else {
  const { handle, barrier, o, ops, batch, index } = workerData;
  const heap = await Heap.attach(handle);
  const words = new Int32Array(barrier);
  const hold = new Int32Array(new SharedArrayBuffer(4));
  Atomics.add(words, 0, 1);
  Atomics.notify(words, 0);
  while (Atomics.load(words, 1) === 0) Atomics.wait(words, 1, 0, 50);
  const holds = index === 0 ? 10 : 0;
  const every = Math.floor(ops / (holds + 1));
  let done = 0;
  while (done < ops) {
    const k = Math.min(batch || 1, ops - done);
    if (batch) {
      heap.gil.run(() => {
        for (let i = 0; i < k; i++) heap.incref(o);
      });
    } else {
      heap.incref(o);
    }
    done += k;
    if (holds && done % every < k) heap.gil.run(() => Atomics.wait(hold, 0, 0, 2));
  }
  // Whether another worker was still running when this one finished: the loops overlapped.
  const stillRunning = Atomics.add(words, 0, -1) > 1;
  heap.detach();
  parentPort.postMessage(stillRunning);
}
