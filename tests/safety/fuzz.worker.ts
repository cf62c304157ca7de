// The fuzzer of fuzz.test.ts, run in a worker thread so that a hang inside Wasm can be cut
// off by the test's watchdog (worker.terminate) instead of hanging vitest.
//
// Each fast-check run drives a fresh heap through a random program of allocator and object
// calls whose addresses are drawn from what the program has seen: live blocks and objects,
// ones it has freed (stale), another heap's (foreign), addresses next to those, and random
// ones. Every call must either succeed or throw one of the library's typed errors for bad
// input, and heap.check() must pass after every step: no hang, no trap, no corruption.
//
// One misuse is left out: releasing a reference the program does not own to an object that
// is alive. No check on a number can tell that decref from a correct one (README, "Bad
// input"); it frees an object that containers still refer to, and check() then reports the
// dangling reference (misuse.test.ts shows it). So the program counts the references it owns
// by number, and decrefs a number only when it owns one or the number is no live object.
// progress[0] counts the steps taken and progress[1] the run, for the watchdog's report.
import { workerData, parentPort } from 'node:worker_threads';
import fc from 'fast-check';
import {
  Heap, InvalidAddressError, InvalidObjectError, ObjectTypeError, OutOfMemoryError, type ObjectType,
} from '../../src/index.js';

export interface FuzzRequest {
  mode: 'fuzz' | 'spin';
  build: 'release' | 'debug';
  seed: number;
  runs: number;
  steps: number;
  progress: SharedArrayBuffer;
}

export type FuzzResult = { ok: true; steps: number } | { ok: false; report: string };

type Source = 'live' | 'stale' | 'foreign' | 'near' | 'random';
interface Pick {
  source: Source;
  index: number;
  delta: number;
}

type Step =
  | { kind: 'malloc'; size: number }
  | { kind: 'free'; at: Pick }
  | { kind: 'realloc'; at: Pick; size: number }
  | { kind: 'newObject'; type: number }
  | { kind: 'newTuple'; length: number }
  | { kind: 'newList' }
  | { kind: 'listAppend'; list: Pick; item: Pick }
  | { kind: 'setRef'; o: Pick; slot: number; value: Pick | null }
  | { kind: 'incref'; at: Pick }
  | { kind: 'decref'; at: Pick }
  | { kind: 'collect'; generation: number };

const pick: fc.Arbitrary<Pick> = fc.record({
  source: fc.constantFrom<Source>('live', 'live', 'live', 'stale', 'stale', 'foreign', 'near', 'random'),
  index: fc.nat(),
  delta: fc.constantFrom(-16, -8, -4, 4, 8, 16),
});
const size = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 600 }) },
  { weight: 1, arbitrary: fc.integer({ min: 600, max: 20_000 }) },
);
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('malloc' as const), size }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('free' as const), at: pick }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('realloc' as const), at: pick, size }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('newObject' as const), type: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('newTuple' as const), length: fc.integer({ min: 0, max: 200 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('newList' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('listAppend' as const), list: pick, item: pick }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('setRef' as const), o: pick, slot: fc.nat(2), value: fc.option(pick) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('incref' as const), at: pick }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('decref' as const), at: pick }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('collect' as const), generation: fc.nat(2) }) },
);

/** What bad input may throw; anything else fails the run. */
const TYPED = [InvalidAddressError, InvalidObjectError, ObjectTypeError, OutOfMemoryError, RangeError, TypeError];

class Program {
  readonly live: number[] = [];
  readonly stale: number[] = [];
  /** References the program owns, by object address. */
  readonly owned = new Map<number, number>();
  readonly types: ObjectType[];

  constructor(readonly heap: Heap, readonly foreign: number[]) {
    this.types = [
      heap.defineType({ name: 'Node', refSlots: 2, dataBytes: 8 }),
      heap.defineType({ name: 'Leaf', dataBytes: 16, weakrefable: false }),
      heap.defineType({
        name: 'Finalized',
        refSlots: 1,
        // A finalizer that allocates and frees: the core is re-entered from inside a collection.
        finalizer: () => heap.free(heap.malloc(24)),
      }),
    ];
    heap.gc.setThreshold(40, 5, 5);
  }

  resolve(at: Pick): number {
    const from = (list: number[]) => (list.length ? list[at.index % list.length] : at.index);
    switch (at.source) {
      case 'live':
        return from(this.live);
      case 'stale':
        return from(this.stale);
      case 'foreign':
        return from(this.foreign);
      case 'near':
        return Math.max(0, from(this.live) + at.delta);
      case 'random':
        return at.index % this.heap.memory.buffer.byteLength;
    }
  }

  forget(address: number): void {
    const i = this.live.indexOf(address);
    if (i >= 0) this.live.splice(i, 1);
    this.stale.push(address);
  }

  /** A new object, owned once. */
  made(o: number): void {
    this.live.push(o);
    this.own(o, 1);
  }

  own(o: number, delta: number): void {
    this.owned.set(o, (this.owned.get(o) ?? 0) + delta);
  }

  run(s: Step): void {
    const heap = this.heap;
    switch (s.kind) {
      case 'malloc':
        this.live.push(heap.malloc(s.size));
        break;
      case 'free': {
        const address = this.resolve(s.at);
        heap.free(address);
        this.forget(address);
        break;
      }
      case 'realloc': {
        const address = this.resolve(s.at);
        const moved = heap.realloc(address, s.size);
        if (moved !== address) this.forget(address);
        this.live.push(moved);
        break;
      }
      case 'newObject':
        this.made(heap.newObject(this.types[s.type]));
        break;
      case 'newTuple':
        this.made(heap.newTuple(s.length));
        break;
      case 'newList':
        this.made(heap.newList());
        break;
      case 'listAppend':
        heap.listAppend(this.resolve(s.list), this.resolve(s.item));
        break;
      case 'setRef':
        heap.setRef(this.resolve(s.o), s.slot, s.value && this.resolve(s.value));
        break;
      case 'incref': {
        const o = this.resolve(s.at);
        heap.incref(o);
        this.own(o, 1);
        break;
      }
      case 'decref': {
        const o = this.resolve(s.at);
        if (heap.isObject(o) && !this.owned.get(o)) break; // not ours to release
        heap.decref(o);
        this.own(o, -1);
        if (!heap.isObject(o)) this.forget(o);
        break;
      }
      case 'collect':
        heap.gc.collect(s.generation);
        break;
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error);
}

async function fuzz(request: FuzzRequest): Promise<FuzzResult> {
  const progress = new Int32Array(request.progress);
  let steps = 0;
  const property = fc.asyncProperty(fc.array(step, { minLength: request.steps, maxLength: request.steps }), async (program) => {
    Atomics.add(progress, 1, 1);
    const options = { build: request.build, maxMemory: 64 * 1024 * 1024 };
    // Another heap built the same way, whose objects and blocks the program passes in by mistake.
    const other = await Heap.create(options);
    const O = other.defineType({ name: 'Node', refSlots: 2, dataBytes: 8 });
    const foreign = [other.newObject(O), other.newObject(O), other.malloc(24), other.malloc(3000)];
    foreign.push(foreign[0] - 8, other.newList(), other.newTuple(3));
    const p = new Program(await Heap.create(options), foreign);
    for (const [i, s] of program.entries()) {
      Atomics.store(progress, 0, ++steps);
      try {
        p.run(s);
      } catch (error) {
        if (!TYPED.some((type) => error instanceof type)) {
          throw new Error(`step ${i} ${JSON.stringify(s)} threw ${describe(error)}`);
        }
      }
      try {
        p.heap.check();
      } catch (error) {
        throw new Error(`after step ${i} ${JSON.stringify(s)}: check() threw ${describe(error)}`);
      }
    }
    other.check();
    p.heap.dispose();
    other.dispose();
  });
  const details = await fc.check(property, { seed: request.seed, numRuns: request.runs, endOnFailure: true });
  if (details.failed) {
    const error = details.errorInstance;
    const why = error instanceof Error ? error.message : String(error);
    return { ok: false, report: `${why} (run ${details.numRuns}, seed ${request.seed}, path ${details.counterexamplePath})` };
  }
  return { ok: true, steps };
}

const request = workerData as FuzzRequest;
if (request.mode === 'spin') {
  Atomics.store(new Int32Array(request.progress), 0, 1);
  for (;;);
}
parentPort!.postMessage(await fuzz(request));
