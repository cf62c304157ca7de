import { describe, it, expect } from 'vitest';
import {
  Heap, HeapCorruptionError, HeapDisposedError, type SharedHeapHandle,
} from '../../src/index.js';
import { Crew } from './helpers.js';

const MiB = 2 ** 20;

describe('a heap shared by workers', () => {
  it.each([
    ['release', 'gil'], ['debug', 'gil'], ['release', 'free-threaded'], ['debug', 'free-threaded'],
  ] as const)('keeps every block apart across 4 workers doing random work (%s build, %s)', async (build, concurrency) => {
    const maxMemory = 64 * MiB;
    const heap = await Heap.create({ shared: true, maxMemory, build, concurrency });
    heap.decref(heap.newList()); // the object space is set up before the baseline
    const before = heap.stats();
    const inUse = (s: typeof before) => s.sizeClasses.reduce((n, c) => n + c.blocksInUse, 0);
    const owners = new SharedArrayBuffer((maxMemory >>> 4) * 4);
    const crew = new Crew(heap);
    const runs = [0, 1, 2, 3].map((i) => crew.start('model', { owners, seed: 1000 + i, steps: 4000 }).result);
    crew.release(4);
    const results = await Promise.all(runs);
    for (const r of results) {
      expect(r.duplicates).toBe(0);
      expect(r.corrupted).toBe(0);
    }
    heap.check();
    const after = heap.stats();
    const small = results.reduce((n, r) => n + r.smallBlocks, 0);
    const raw = results.reduce((n, r) => n + r.liveBlocks - r.smallBlocks, 0);
    expect(results.reduce((n, r) => n + r.objects, 0)).toBeGreaterThan(0);
    expect(inUse(after)).toBe(inUse(before) + small + after.quarantine.objects - before.quarantine.objects);
    expect(after.raw.blocks).toBe(before.raw.blocks + raw);
    // Every address any worker still holds is live in exactly one worker.
    const addresses = results.flatMap((r) => r.addresses as number[]);
    expect(new Set(addresses).size).toBe(addresses.length);
    for (const p of addresses) heap.free(p);
    heap.check();
    expect(heap.stats().raw.blocks).toBe(before.raw.blocks);
    await crew.terminate();
  });

  it.each(['release', 'debug'] as const)('resets nothing when a worker attaches to a busy heap (%s build)', async (build) => {
    const heap = await Heap.create({ shared: true, maxMemory: 64 * MiB, build });
    const crew = new Crew(heap);
    const busy = crew.start('busy').result;
    crew.release(1);
    while (heap.stats().sizeClasses.reduce((n, c) => n + c.blocksInUse, 0) < 100) await new Promise((r) => setTimeout(r, 5));
    // Pause the busy worker, then compare all of memory before and after another instance is made.
    Atomics.store(crew.words, 2, 1);
    while (Atomics.load(crew.words, 3) === 0) Atomics.wait(crew.words, 3, 0, 20);
    const memory = heap.memory;
    const before = new Uint8Array(memory.buffer).slice();
    const attached = await Heap.attach(heap.share());
    const after = new Uint8Array(memory.buffer);
    const changed: number[] = [];
    for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) changed.push(i);
    // Only the new attachment's slot of the shared state changes: one i32 word (its thread id + 1).
    expect(changed.length).toBeGreaterThan(0);
    expect(changed[changed.length - 1] - changed[0]).toBeLessThan(4);
    expect(attached.attachments()).toBe(3);
    Atomics.store(crew.words, 2, 2);
    Atomics.notify(crew.words, 2);
    const { live, rounds } = await busy;
    expect(rounds).toBeGreaterThan(100);
    attached.check();
    for (const p of live) attached.free(p);
    heap.check();
    expect(heap.stats().sizeClasses.every((c) => c.blocksInUse === 0)).toBe(true);
    await crew.terminate();
  });

  it('sees memory grown by another worker, in views made before', async () => {
    const heap = await Heap.create({ shared: true, maxMemory: 256 * MiB });
    const early = heap.malloc(32);
    heap.bytes(early).fill(1); // views made while the memory is small
    const small = heap.memory.buffer.byteLength;
    const crew = new Crew(heap);
    expect(heap.typeOf(heap.newList()).name).toBe('list'); // the type-word view is made now
    const { last, list, byteLength } = await crew.start('grow', { beyond: small + 16 * MiB }).result;
    expect(list).toBeGreaterThan(small + 16 * MiB);
    expect(heap.typeOf(list).name).toBe('list');
    expect(byteLength).toBeGreaterThan(small + 16 * MiB);
    expect(last + MiB).toBeGreaterThan(small);
    expect(heap.read(last, 4)).toEqual(new Uint8Array([0x5a, 0x5a, 0x5a, 0x5a]));
    heap.write(last, [1, 2, 3, 4, 5, 6, 7, 8]);
    expect(heap.stats().memory.committedBytes).toBe(heap.memory.buffer.byteLength);
    const reader = crew.start('read', { address: last });
    expect((await reader.result).bytes).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    heap.check();
    await crew.terminate();
  });

  it.each(['gil', 'free-threaded'] as const)('collects a cycle made in one worker with gc.collect() in another, running the finalizer defined in both (%s)', async (concurrency) => {
    const heap = await Heap.create({ shared: true, concurrency });
    const finalized: number[] = [];
    const crew = new Crew(heap);
    // A free-threaded worker detaches first: its objects are then abandoned, and whoever drops them merges them.
    const { a, b, typeName } = await crew.start('cycle', { detach: concurrency === 'free-threaded' }).result;
    expect(typeName).toBe('Node');
    // a <-> b, dropped by the worker: alive only through each other.
    expect(heap.isObject(a)).toBe(true);
    expect(heap.typeOf(a).name).toBe('Node');
    const node = heap.defineType({ name: 'Node', refSlots: 1, finalizer: (o) => finalized.push(o) });
    expect(node.address).toBe(heap.typeOf(a).address);
    expect(heap.getRef(a, 0)).toBe(b);
    expect(heap.gc.collect()).toBe(2);
    expect(finalized.sort()).toEqual([a, b].sort());
    expect(heap.isObject(a)).toBe(false);
    expect(heap.isObject(b)).toBe(false);
    expect(() => heap.defineType({ name: 'Node', refSlots: 2 })).toThrow(
      new TypeError("defineType: 'Node' is already defined in this shared heap as a fixed type of 1 references and 0 data bytes, with a finalizer, not as a fixed type of 2 references and 0 data bytes"),
    );
    heap.check();
    await crew.terminate();
  });

  it('recovers the GIL from a worker that exits holding it, and checks the heap', async () => {
    const heap = await Heap.create({ shared: true });
    const crew = new Crew(heap);
    const holder = crew.start('hold');
    // Terminated holding the GIL, it never answers: its result is that refusal.
    const ended = expect(holder.result).rejects.toThrow('worker 0 (hold) exited with 1 before answering');
    heap.watch(holder.worker);
    while (Atomics.load(crew.words, 1) === 0) await new Promise((r) => setTimeout(r, 5));
    const waiter = crew.start('malloc');
    await new Promise((r) => setTimeout(r, 200));
    expect(heap.gil.stats().recoveries).toBe(0);
    await holder.worker.terminate();
    await ended;
    expect(await waiter.result).toEqual({ ok: true });
    expect(heap.gil.stats().recoveries).toBe(1);
    heap.check();
    expect(heap.attachments()).toBe(2); // this instance and the waiter: the holder's slot was freed
    await crew.terminate();
  });

  it('refuses the heap everywhere when a worker died holding the GIL with a free list broken', async () => {
    const heap = await Heap.create({ shared: true });
    const crew = new Crew(heap);
    const holder = crew.start('hold', { breakFreeList: true });
    // Terminated holding the GIL, it never answers: its result is that refusal.
    const ended = expect(holder.result).rejects.toThrow('worker 0 (hold) exited with 1 before answering');
    heap.watch(holder.worker);
    while (Atomics.load(crew.words, 1) === 0) await new Promise((r) => setTimeout(r, 5));
    const waiter = crew.start('malloc');
    await holder.worker.terminate();
    await ended;
    expect(await waiter.result).toEqual({ ok: false, error: 'HeapCorruptionError', invariant: expect.stringMatching(/free list/) });
    expect(() => heap.malloc(8)).toThrow(HeapCorruptionError);
    await crew.terminate();
  });

  it('refuses calls after detach() and after any instance disposed the heap', async () => {
    const heap = await Heap.create({ shared: true });
    const crew = new Crew(heap);
    const detached = await crew.start('afterEnd', { detachFirst: true }).result;
    expect(detached.errors).toEqual([
      'HeapDisposedError: malloc: this instance has detached from the shared heap',
      'HeapDisposedError: newList: this instance has detached from the shared heap',
      'HeapDisposedError: gc.collect: this instance has detached from the shared heap',
      'HeapDisposedError: stats: this instance has detached from the shared heap',
    ]);
    heap.malloc(8); // the heap lives on
    const other = await Heap.attach(heap.share());
    heap.dispose();
    expect(() => other.malloc(8)).toThrow(new HeapDisposedError('malloc'));
    expect(() => other.gc.collect()).toThrow(new HeapDisposedError('gc.collect'));
    await expect(Heap.attach(heap.share())).rejects.toThrow();
    const after = await crew.start('afterEnd').result.catch((error: Error) => error.message);
    expect(after).toMatch(/Heap\.attach: the heap has been disposed/);
    await crew.terminate();
  });
});

describe('bad use of a shared heap', () => {
  it('names what is wrong with a handle', async () => {
    const heap = await Heap.create({ shared: true });
    const handle = heap.share();
    await expect(Heap.attach({} as SharedHeapHandle)).rejects.toThrow(new TypeError('Heap.attach needs the handle heap.share() returns'));
    await expect(Heap.attach({ ...handle, version: '0.0.1' })).rejects.toThrow(
      /the handle comes from pymalloc-wasm 0\.0\.1 \(release build\), this is pymalloc-wasm \d+\.\d+\.\d+/,
    );
    await expect(Heap.attach({ ...handle, build: 'fast' as 'release' })).rejects.toThrow(TypeError);
    await expect(Heap.attach({ ...handle, concurrency: 'none' })).rejects.toThrow(/the handle says concurrency 'none'/);
    const plain = await Heap.create();
    await expect(Heap.attach({ ...handle, memory: plain.memory })).rejects.toThrow(/no compiled module and shared memory/);
    const unrelated = new WebAssembly.Memory({ initial: 2, maximum: 4, shared: true });
    await expect(Heap.attach({ ...handle, memory: unrelated })).rejects.toThrow(/the memory holds no shared heap/);
    expect(() => plain.share()).toThrow(new TypeError('share: the heap is not shared (create it with { shared: true })'));
  });

  it('refuses options that do not go together, and gil.run without a function', async () => {
    await expect(Heap.create({ concurrency: 'gil' })).rejects.toThrow(new RangeError('options.concurrency is for a shared heap: set options.shared to true'));
    await expect(Heap.create({ shared: true, concurrency: 'free' as 'gil' })).rejects.toThrow(new RangeError("options.concurrency must be 'gil', 'free-threaded' or 'none'"));
    await expect(Heap.create({ shared: 1 as unknown as boolean })).rejects.toThrow(new TypeError('options.shared must be a boolean'));
    await expect(Heap.create({ shared: true, preset: 'tuned' })).rejects.toThrow(
      new RangeError("options.preset 'tuned' is not built for a shared heap: use a CPython preset with options.shared"),
    );
    const heap = await Heap.create({ shared: true });
    expect(() => heap.gil.run(42 as unknown as () => void)).toThrow(new TypeError('gil.run needs a function, not number'));
    expect(heap.gil.held).toBe(false);
    expect(heap.gil.run(() => heap.gil.held)).toBe(true);
    const plain = await Heap.create();
    expect(plain.gil.run(() => 7)).toBe(7);
    expect(plain.gil.stats().acquisitions).toBe(0);
  });

  it('lets finalizers and callbacks call back into the heap under the GIL', async () => {
    const heap = await Heap.create({ shared: true });
    const seen: string[] = [];
    const holder = heap.newList();
    const node = heap.defineType({
      name: 'Node', refSlots: 1, finalizer: (o) => {
        seen.push(`finalizer ${heap.gil.stats().acquisitions} ${heap.getRef(o, 0) === o}`);
        heap.listAppend(holder, heap.newInt(1000 + seen.length)); // allocates inside the collection
      },
    });
    const a = heap.newObject(node);
    heap.setRef(a, 0, a);
    const wr = heap.weakref(a, () => seen.push(`callback ${heap.gil.stats().acquisitions}`));
    heap.decref(a);
    const acquisitions = heap.gil.stats().acquisitions;
    expect(heap.gc.collect()).toBe(1);
    // One acquisition for gc.collect: the callback's and the finalizer's calls found the GIL held
    // (weakref callbacks run before finalizers, as in CPython's handle_weakrefs).
    expect(seen).toEqual([`callback ${acquisitions + 1}`, `finalizer ${acquisitions + 1} true`]);
    expect(heap.length(holder)).toBe(1);
    expect(heap.weakrefGet(wr)).toBe(null);
    heap.check();
  });
});
