// Where the time of one heap.malloc / heap.free goes (issue 14, part 4): the same JS churn loop as
// `npm run bench`'s "JS loop" rows over wrappers of the core's exports that add the Heap's layers
// one at a time, all on the module a cpython-3.12 Heap runs (src/heap/builds.ts), interleaved so
// that drift on a shared machine hits every variant alike, each in a worker of its own so that
// its loop's call sites see one kind of heap. Run: npx tsx bench/host-api.ts

import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

import { Heap } from '../src/index.js';
import { loadAllocator } from '../src/tools/compare/allocators.js';
import {
  bareCore, batchedChurn, hostChurn, opsPerCall, BATCH, DEFAULT_STEPS, LIVE, MAX_SIZE, SEED, type BatchHeap,
} from '../src/tools/compare/bench.js';

type Churner = Parameters<typeof hostChurn>[0];

function isU32(value: unknown): value is number {
  return typeof value === 'number' && value >>> 0 === value;
}

/** One JS function between the loop and each export. */
function forwarding(): Churner {
  const core = bareCore();
  return { malloc: (n) => core.malloc(n), free: (p) => core.free(p), memory: core.memory };
}

/** ... that also checks its argument, as every Heap method does. */
function checking(): Churner {
  const core = bareCore();
  return {
    malloc(n) {
      if (!isU32(n)) throw new RangeError('size');
      const p = core.malloc(n);
      if (p === 0) throw new Error('out of memory');
      return p >>> 0;
    },
    free(p) {
      if (!isU32(p)) throw new RangeError('address');
      if (core.free(p) !== 0) throw new Error('bad address');
    },
    memory: core.memory,
  };
}

/** ... inside try/catch, reaching the exports through a private field of a class, as Heap does. */
class Guarded {
  readonly #ex = bareCore();
  get memory(): WebAssembly.Memory {
    return this.#ex.memory;
  }
  malloc(n: number): number {
    if (!isU32(n)) throw new RangeError('size');
    let p: number;
    try {
      p = this.#ex.malloc(n);
    } catch (error) {
      throw new Error('trap', { cause: error });
    }
    if (p === 0) throw new Error('out of memory');
    return p >>> 0;
  }
  free(p: number): void {
    if (!isU32(p)) throw new RangeError('address');
    let status: number;
    try {
      status = this.#ex.free(p);
    } catch (error) {
      throw new Error('trap', { cause: error });
    }
    if (status !== 0) throw new Error('bad address');
  }
}

/** Heap's batch calls on the bare exports: the IO buffer filled with set(), or element by element. */
function bareBatches(copy: 'set' | 'loop'): BatchHeap {
  const core = bareCore();
  const io = () => new Uint32Array(core.memory.buffer, core.ioBuffer(), BATCH * 10);
  const fill = (from: Uint32Array) => {
    const view = io();
    if (copy === 'set') view.set(from);
    else for (let i = 0; i < from.length; i++) view[i] = from[i];
  };
  return {
    mallocMany(sizes, out) {
      fill(sizes);
      if (core.mallocMany(sizes.length) !== sizes.length) throw new Error('out of memory');
      out.set(io().subarray(0, sizes.length));
    },
    freeMany(addresses) {
      fill(addresses);
      if (core.freeMany(addresses.length) !== addresses.length) throw new Error('bad address');
    },
    memory: core.memory,
  };
}

const batchVariants: [string, () => Promise<() => number>][] = [
  ['the in-Wasm churn loop', async () => {
    const churn = await loadAllocator('pymalloc-3.12');
    return () => churn.churn(LIVE, DEFAULT_STEPS, SEED, MAX_SIZE);
  }],
  ['bare exports, IO by set()', async () => batchedChurn(bareBatches('set'), DEFAULT_STEPS)],
  ['bare exports, IO by element', async () => batchedChurn(bareBatches('loop'), DEFAULT_STEPS)],
  ['Heap.mallocMany / freeMany', async () => batchedChurn(await Heap.create({ preset: 'cpython-3.12' }), DEFAULT_STEPS)],
];

const variants: [string, () => Promise<Churner>][] = [
  ['bare exports', async () => bareCore()],
  ['+ a forwarding function', async () => forwarding()],
  ['+ argument and result checks', async () => checking()],
  ['+ try/catch, private field', async () => new Guarded()],
  ['Heap', () => Heap.create({ preset: 'cpython-3.12' })],
];
const steps = DEFAULT_STEPS;

if (!isMainThread) {
  // One variant per worker: a loop that has seen one kind of heap only, as a program's would.
  const index = workerData as number;
  const loop = index < variants.length ? hostChurn(await variants[index][1](), steps) : await batchVariants[index - variants.length][1]();
  loop();
  parentPort!.on('message', () => {
    const began = process.hrtime.bigint();
    loop();
    parentPort!.postMessage(Number(process.hrtime.bigint() - began) / opsPerCall(steps));
  });
} else {
  // Node 20's workers take no --import: tsx's loader is registered before this file is imported.
  const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(import.meta.url)}); })`;
  const names = [...variants, ...batchVariants].map(([name]) => name);
  const workers = names.map((_, i) => new Worker(boot, { eval: true, workerData: i }));
  const run = (worker: Worker) =>
    new Promise<number>((resolve) => {
      worker.once('message', resolve);
      worker.postMessage('run');
    });
  const times: number[][] = names.map(() => []);
  for (let round = 0; round < 9; round++) {
    for (const [i, worker] of workers.entries()) times[i].push(await run(worker));
  }
  await Promise.all(workers.map((worker) => worker.terminate()));
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1];
  const table = (title: string, from: number, count: number, reference: string) => {
    console.log(title);
    const base = median(times[from]);
    for (let i = from; i < from + count; i++) {
      const ns = median(times[i]);
      console.log(`  ${names[i].padEnd(32)} ${ns.toFixed(1).padStart(6)}   ${(ns / base).toFixed(2)}x ${reference}`);
    }
  };
  console.log('ns per operation, median of 9 interleaved rounds, one worker per variant\n');
  table('One call per malloc and per free, from a JS loop', 0, variants.length, 'bare');
  table(`\nBatches of ${BATCH} (freeMany, then mallocMany)`, variants.length, batchVariants.length, 'in Wasm');
}
