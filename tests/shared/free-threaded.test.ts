// The free-threaded heap's object header and biased reference counting (docs/free-threaded.md),
// one rule at a time: each test runs its workers one after another, so that every header word
// can be asserted exactly. tests/shared/lock.test.ts runs the same rules under random traffic.
//
// Words of a header below: tid (ob_tid), local (ob_ref_local) and shared (ob_ref_shared, which is
// count << 2 | flags: QUEUED 2, MERGED 3). refcount() = local + (shared >> 2).
import { describe, it, expect } from 'vitest';
import { Heap } from '../../src/index.js';
import { Crew, brcHeader } from './helpers.js';

const MiB = 2 ** 20;
const QUEUED = 2;
const MERGED = 3;
/** tid = serial << 9 | attachment id: the creator is attachment 1 and the heap's first thread. */
const CREATOR_TID = (1 << 9) | 1;

function create(build: 'release' | 'debug' = 'release'): Promise<Heap> {
  return Heap.create({ shared: true, concurrency: 'free-threaded', maxMemory: 64 * MiB, build });
}

/** Runs one worker's steps to the end (it detaches): its made objects and the headers it saw. */
async function script(heap: Heap, objects: number[], steps: [string, number][], extra: Record<string, unknown> = {}) {
  const crew = new Crew(heap);
  const result = await crew.start('script', { objects, steps, ...extra }).result;
  await crew.terminate();
  return result as { made: number[]; headers: (ReturnType<typeof brcHeader> | null)[] };
}

/**
 * Starts a worker that makes a list with two local references and waits (sync[1]); resolves
 * once the list is published, with what the test needs to drop one of them and let it go on.
 */
async function waitingOwner(heap: Heap) {
  const sync = new SharedArrayBuffer(8);
  const words = new Int32Array(sync);
  const crew = new Crew(heap);
  const { worker, result } = crew.start('script', { sync, steps: [['new', 0], ['incref', 0], ['wait', 0]] });
  while (Atomics.load(words, 0) === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  const list = Atomics.load(words, 0);
  const resume = () => {
    Atomics.store(words, 1, 1);
    Atomics.notify(words, 1);
  };
  return { crew, worker, result, list, owner: brcHeader(heap, list).tid, resume };
}

/** The list is merged with one reference left: the last decref frees it, and the heap is sound. */
function expectMergedWithOneLeft(heap: Heap, list: number): void {
  expect(brcHeader(heap, list)).toEqual({ tid: 0, flags: 0, shared: (1 << 2) | MERGED, local: 0 });
  heap.decref(list);
  expect(heap.isObject(list)).toBe(false);
  heap.check();
}

describe('the free-threaded heap', () => {
  it('lays out its object header as CPython 3.13t does, with the object at ob_ref_local', async () => {
    const heap = await create();
    const list = heap.newList();
    const words = new Int32Array(heap.memory.buffer);
    expect(brcHeader(heap, list)).toEqual({ tid: CREATOR_TID, flags: 0, shared: 0, local: 1 });
    // ob_type follows ob_ref_local, where the other builds keep it.
    expect(words[(list + 4) >> 2] >>> 0).toBe(heap.typeOf(list).address);
    // A list is tracked: its block is the GC header (8 bytes), the 16-byte prefix, then the list.
    const gcNext = words[(list - 24) >> 2] >>> 0;
    expect(gcNext).not.toBe(0);
    expect(heap.gc.isTracked(list)).toBe(true);
    // An int has no GC header: its block starts with the prefix.
    const int = heap.newInt(1000);
    expect(brcHeader(heap, int)).toEqual({ tid: CREATOR_TID, flags: 0, shared: 0, local: 1 });
    expect(heap.refcount(int)).toBe(1);
  });

  it('makes small ints and interned strings immortal: unowned, ob_ref_local all ones', async () => {
    const heap = await create();
    const five = heap.newInt(5);
    const name = heap.intern('spam');
    for (const o of [five, name]) {
      expect(brcHeader(heap, o)).toEqual({ tid: 0, flags: 0, shared: 0, local: 0xffff_ffff });
      expect(heap.isImmortal(o)).toBe(true);
    }
    const steps: [string, number][] = [];
    for (let i = 0; i < 100; i++) steps.push(['incref', 0], ['decref', 0], ['decref', 1]);
    const { headers } = await script(heap, [five, name], steps);
    expect(headers).toEqual([
      { tid: 0, flags: 0, shared: 0, local: 0xffff_ffff },
      { tid: 0, flags: 0, shared: 0, local: 0xffff_ffff },
    ]);
  });

  it("counts the owner's references in ob_ref_local and another worker's in ob_ref_shared", async () => {
    const heap = await create();
    const list = heap.newList();
    heap.incref(list);
    const { headers } = await script(heap, [list], [['incref', 0], ['incref', 0], ['incref', 0], ['decref', 0]]);
    expect(headers[0]).toEqual({ tid: CREATOR_TID, flags: 0, shared: 2 << 2, local: 2 });
    expect(heap.refcount(list)).toBe(4);
    heap.decref(list);
    expect(brcHeader(heap, list)).toEqual({ tid: CREATOR_TID, flags: 0, shared: 2 << 2, local: 1 });
  });

  it('queues to its owner a decref that finds the shared count at 0; the owner merges it at its next locked call', async () => {
    // The creator holds three references and hands two to a worker, which drops them.
    const heap = await create('debug');
    const list = heap.newList();
    heap.incref(list);
    heap.incref(list);
    const { headers } = await script(heap, [list], [['decref', 0], ['decref', 0]]);
    // The first decref found shared 0: QUEUED, nothing subtracted (the queue holds that reference);
    // the second subtracted one from a count of 0: -1.
    expect(headers[0]).toEqual({ tid: CREATOR_TID, flags: 0, shared: (-1 << 2) | QUEUED, local: 3 });
    expect(heap.refcount(list)).toBe(2); // the queued reference counts until the merge
    heap.check(); // takes the heap mutex: the creator's safe point merges its queue
    expect(brcHeader(heap, list)).toEqual({ tid: 0, flags: 0, shared: (1 << 2) | MERGED, local: 0 });
    expect(heap.refcount(list)).toBe(1);
    heap.decref(list); // merged: every thread counts in ob_ref_shared now, and 1 -> 0 frees it
    expect(heap.isObject(list)).toBe(false);
    heap.check();
  });

  it("merges an object whose owner drops its last local reference while another worker holds one", async () => {
    const heap = await create('debug');
    const list = heap.newList();
    await script(heap, [list], [['incref', 0]]);
    heap.decref(list);
    expect(brcHeader(heap, list)).toEqual({ tid: 0, flags: 0, shared: (1 << 2) | MERGED, local: 0 });
    expect(heap.refcount(list)).toBe(1);
    const { headers } = await script(heap, [list], [['decref', 0]]);
    expect(headers).toEqual([null]);
    expect(heap.isObject(list)).toBe(false);
    heap.check();
  });

  it("abandons a detached worker's objects: the next decref that finds the shared count at 0 merges at once", async () => {
    const heap = await create('debug');
    const { made, headers } = await script(heap, [], [['new', 0], ['incref', 0]]);
    const [list] = made;
    const workerTid = headers[0]!.tid;
    expect(workerTid).toBe((2 << 9) | 2); // the heap's second thread, in attachment slot 2
    expect(headers[0]).toEqual({ tid: workerTid, flags: 0, shared: 0, local: 2 });
    heap.decref(list); // its owner has gone: merged with this decref, 2 - 1 left
    expectMergedWithOneLeft(heap, list);
  });

  it('merges what was queued to a worker when it detaches', async () => {
    const heap = await create('debug');
    const { crew, result, list, owner, resume } = await waitingOwner(heap);
    heap.decref(list); // the worker's object, shared count 0: queued to the worker
    expect(brcHeader(heap, list)).toEqual({ tid: owner, flags: 0, shared: QUEUED, local: 2 });
    resume();
    const { headers } = await result;
    expect(headers[0]).toEqual({ tid: owner, flags: 0, shared: QUEUED, local: 2 }); // read before it detached
    expectMergedWithOneLeft(heap, list);
    await crew.terminate();
  });

  it('detaches a worker that exits without detaching: its queue merged, its objects abandoned', async () => {
    const heap = await create('debug');
    const crew = new Crew(heap);
    const { worker, result } = crew.start('script', { stay: true, steps: [['new', 0], ['incref', 0]] });
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    const { made, headers } = await result;
    await exited;
    expect(heap.attachments()).toBe(1);
    const [list] = made;
    expect(brcHeader(heap, list)).toEqual(headers[0]);
    heap.decref(list); // shared 0, owner gone: merged at once
    expectMergedWithOneLeft(heap, list);
  });

  it('releases, through watch(), a worker terminated before it could detach', async () => {
    const heap = await create('debug');
    const { worker, result, list, owner } = await waitingOwner(heap);
    const terminated = expect(result).rejects.toThrow('worker 0 (script) exited with 1 before answering');
    heap.watch(worker);
    heap.decref(list); // queued to the worker, which will never merge it: it is terminated waiting
    expect(brcHeader(heap, list)).toEqual({ tid: owner, flags: 0, shared: QUEUED, local: 2 });
    await worker.terminate();
    await terminated; // the worker's exit handlers, watch's among them, ran in one emit before this
    expect(heap.attachments()).toBe(1);
    expectMergedWithOneLeft(heap, list);
  });

  it("refuses the heap everywhere when a merge queue's link was overwritten", async () => {
    const heap = await create('debug');
    const { result, list, resume } = await waitingOwner(heap);
    heap.decref(list); // queued to the worker
    const words = new Int32Array(heap.memory.buffer);
    words[(list - 4) >> 2] = list; // ob_brc_next: the queue now leads back to its first object
    resume(); // the worker's detach merges its queue, and finds it longer than it counts
    await expect(result).rejects.toThrow(/brc queue/);
    expect(() => heap.malloc(8)).toThrow(expect.objectContaining({ name: 'HeapCorruptionError', invariant: expect.stringMatching(/^brc queue/) }));
  });

  it('releases an object graph built by two workers exactly once (debug build: a second free traps)', async () => {
    const heap = await create('debug');
    const before = heap.stats();
    const inUse = (s: typeof before) => s.sizeClasses.reduce((n, c) => n + c.blocksInUse, 0);
    // list -> [item]: the list is the creator's, the item a worker's, referenced by the list.
    const { made } = await script(heap, [], [['new', 0], ['incref', 0]]);
    const [item] = made;
    const list = heap.newList();
    heap.listAppend(list, item); // the list's reference: a shared incref, shared 1
    heap.decref(item); // shared 1 -> 0, lock-free
    heap.decref(item); // shared 0 and its owner gone: merged at once, local 2 - 1 = 1 left (the list's)
    expect(brcHeader(heap, item)).toEqual({ tid: 0, flags: 0, shared: (1 << 2) | MERGED, local: 0 });
    expect(heap.refcount(item)).toBe(1);
    heap.decref(list);
    expect(heap.isObject(list)).toBe(false);
    expect(heap.isObject(item)).toBe(false);
    heap.check();
    expect(inUse(heap.stats()) - heap.stats().quarantine.objects).toBe(inUse(before) - before.quarantine.objects);
  });

  it('refuses an unshared free-threaded heap and bad addresses, and is enabled for automatic collection', async () => {
    await expect(Heap.create({ concurrency: 'free-threaded' })).rejects.toThrow(
      new RangeError('options.concurrency is for a shared heap: set options.shared to true'),
    );
    const heap = await create();
    expect(heap.gil.concurrency).toBe('free-threaded');
    // Automatic collection is on: each one stops the world (tests/shared/stw.test.ts).
    expect(heap.gc.isEnabled()).toBe(true);
    expect(() => heap.incref(12345)).toThrow(expect.objectContaining({ name: 'InvalidObjectError' }));
    expect(() => heap.decref(12345)).toThrow(expect.objectContaining({ name: 'InvalidObjectError' }));
    expect(() => heap.refcount(12345)).toThrow(expect.objectContaining({ name: 'InvalidObjectError' }));
    const attached = await Heap.attach(heap.share());
    expect(attached.gil.concurrency).toBe('free-threaded');
    attached.detach();
    heap.dispose();
    expect(() => heap.incref(8)).toThrow(expect.objectContaining({ name: 'HeapDisposedError' }));
  });
});
