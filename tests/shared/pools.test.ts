// Per-thread pools of the free-threaded heap (docs/free-threaded.md, part 4). The rules are
// asserted on the words themselves: a pool's owner (beside its block bits, pymalloc/pool.ts), a
// thread's record (memory/header.ts, ThreadState) and its remote list, and stats().threads. Two
// or three instances of the core in this worker are two or three threads, so that each step of a
// cross-thread free can be watched in order; the cross-worker stress runs in fresh processes
// (tests/shared/pools-stress.mjs), in one describe so that its runs do not compete for the cores.
import { describe, it, expect, beforeEach } from 'vitest';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Heap, InvalidAddressError, OutOfMemoryError } from '../../src/index.js';
import { brcHeader } from './helpers.js';

/** memory/header.ts: HEAP + OBJECT_SPACE_OFFSET + OBJECT_SPACE_BYTES - FT_STATE_BYTES; its +4 is the thread table. */
const FT_STATE = 64 + 3456 + 1024 - 16;
const THREAD_BYTES = 64;
/** HeapHeader.lastError: the one every build but the free-threaded one's attached threads uses. */
const HEADER_LAST_ERROR = 64 + 88;
const NOT_ALLOCATED = 2;
const DOUBLE_FREE = 5;

const words = (heap: Heap) => new Uint32Array(heap.memory.buffer);

/** This instance's tid, read from the header of an object it makes. */
function tidOf(heap: Heap): number {
  const o = heap.newList();
  const { tid } = brcHeader(heap, o);
  heap.decref(o);
  return tid;
}

function record(heap: Heap, tid: number): number {
  return words(heap)[(FT_STATE + 4) >> 2] + (tid & 511) * THREAD_BYTES;
}

function poolOf(heap: Heap, p: number): number {
  return p & -heap.config.poolSize;
}

/** The owner tid in the pool's trailer, the 64 bytes before its block bits (pool.bits, at +20). */
function ownerOf(heap: Heap, p: number): number {
  const bits = words(heap)[(poolOf(heap, p) + 20) >> 2];
  return words(heap)[(bits - 64) >> 2];
}

/**
 * The stats row of the slot of `tid`, read through `via`: stats() takes the heap mutex, whose
 * safe point drains the remote list of the instance that calls it, so a row is watched through
 * another thread's instance to see it undrained. A slot that never did anything has no row.
 */
function slot(via: Heap, tid: number) {
  const found = via.stats().threads!.slots.find((s) => s.id === (tid & 511));
  return found ?? { id: tid & 511, tid: 0, pools: 0, remotePending: 0, remoteFrees: 0, lockedFrees: 0, drains: 0, drained: 0, adopted: 0 };
}

function classOf(heap: Heap, size: number) {
  return heap.stats().sizeClasses[Math.ceil(size / heap.config.alignment) - 1];
}

const doubleFree = expect.objectContaining({ name: 'InvalidAddressError', reason: 'double-free' });

describe('per-thread pools', () => {
  let heap: Heap;
  let other: Heap;
  let mine: number;
  let theirs: number;
  beforeEach(async () => {
    heap = await Heap.create({ shared: true, concurrency: 'free-threaded' });
    other = await Heap.attach(heap.share());
    mine = tidOf(heap);
    theirs = tidOf(other);
  });

  it('gives each thread blocks from pools of its own, its tid beside each pool', () => {
    expect(mine).not.toBe(theirs);
    const a = heap.malloc(40);
    const b = other.malloc(40);
    expect(poolOf(heap, a)).not.toBe(poolOf(heap, b));
    expect(ownerOf(heap, a)).toBe(mine);
    expect(ownerOf(heap, b)).toBe(theirs);
    expect(words(heap)[record(heap, mine) >> 2]).toBe(mine); // the record's +0 is its tid
    expect(classOf(heap, 40)).toMatchObject({ pools: 2, blocksInUse: 2 });
    const more = Array.from({ length: 50 }, () => other.malloc(40));
    for (const p of more) expect(poolOf(heap, p)).toBe(poolOf(heap, b));
    expect(classOf(heap, 40)).toMatchObject({ pools: 2, blocksInUse: 52 });
    expect(slot(heap, theirs).pools - slot(heap, mine).pools).toBe(0); // each: the object pools and one of 40 bytes
    heap.free(a);
    other.free(b);
    for (const p of more) other.free(p);
    // Each thread keeps the last pool of a class when it empties, so that a loop of malloc and
    // free does not take a pool from an arena every time round; detaching gives it back.
    const capacity = Math.floor((heap.config.poolSize - heap.config.poolOverhead) / 48);
    expect(classOf(heap, 40)).toMatchObject({ pools: 2, blocksInUse: 0, blocksAvailable: 2 * capacity });
    heap.check();
    other.detach();
    expect(classOf(heap, 40)).toMatchObject({ pools: 1, blocksInUse: 0 });
    expect(ownerOf(heap, a)).toBe(mine);
    expect(ownerOf(heap, b)).toBe(0);
    heap.check();
  });

  it("sends a block freed by another thread back to its owner's remote list, drained at the owner's safe point", () => {
    const blocks = Array.from({ length: 10 }, () => heap.malloc(48));
    const keep = heap.malloc(48); // so that the pool stays used
    const start = slot(other, mine);
    for (const p of blocks) other.free(p);
    expect(words(heap)[(record(heap, mine) + 28) >> 2]).toBe(blocks[9]); // the last one pushed heads the list
    expect(slot(other, mine)).toMatchObject({ remotePending: 10, drains: start.drains, drained: start.drained });
    expect(slot(other, theirs)).toMatchObject({ remoteFrees: 10, lockedFrees: 0 });
    // Freed, though not yet drained: available, not in use.
    expect(classOf(other, 48).blocksInUse).toBe(1);
    other.check();
    heap.attachments(); // takes the heap mutex: the owner's safe point drains its list
    expect(words(heap)[(record(heap, mine) + 28) >> 2]).toBe(0);
    expect(slot(other, mine)).toMatchObject({ remotePending: 0, drains: start.drains + 1, drained: start.drained + 10 });
    // Back on the pool's free list: the owner's next ten blocks are exactly those.
    const again = Array.from({ length: 10 }, () => heap.malloc(48));
    expect(new Set(again)).toEqual(new Set(blocks));
    for (const p of [...again, keep]) heap.free(p);
    heap.check();
    expect(classOf(heap, 48).blocksInUse).toBe(0);
  });

  it('drains on its slow path too: a class with no used pool takes back what others freed first', () => {
    const n = (heap.config.poolSize - 48) / 256 | 0; // a pool of 256-byte blocks, filled
    const blocks = Array.from({ length: n }, () => heap.malloc(256));
    expect(new Set(blocks.map((p) => poolOf(heap, p))).size).toBe(1);
    other.free(blocks[0]);
    const start = slot(other, mine);
    // The pool is full, so off the owner's usedpools: the next malloc drains and gets the block back.
    expect(heap.malloc(256)).toBe(blocks[0]);
    expect(slot(other, mine)).toMatchObject({ drains: start.drains + 1, drained: start.drained + 1, remotePending: 0 });
    for (const p of blocks) heap.free(p);
    heap.check();
  });

  it('refuses a second free of a block on its way back, from either thread, and after the drain', () => {
    const p = heap.malloc(64);
    const keep = heap.malloc(64);
    other.free(p);
    expect(() => other.free(p)).toThrow(doubleFree);
    expect(() => heap.free(p)).toThrow(doubleFree);
    expect(() => heap.realloc(p, 8)).toThrow(doubleFree);
    expect(slot(other, mine).remotePending).toBe(1); // on the list once
    other.check();
    heap.attachments();
    expect(slot(other, mine).remotePending).toBe(0);
    expect(() => other.free(p)).toThrow(doubleFree);
    expect(() => heap.free(p)).toThrow(doubleFree);
    heap.free(keep);
    heap.check();
    expect(classOf(heap, 64).blocksInUse).toBe(0);
  });

  it("abandons a detached thread's pools; frees into them take the lock; the next thread short of their class adopts them", async () => {
    const blocks = Array.from({ length: 20 }, () => other.malloc(96));
    const pool = poolOf(heap, blocks[0]);
    for (const p of blocks) expect(poolOf(heap, p)).toBe(pool);
    for (const p of blocks.slice(0, 10)) other.free(p);
    other.detach();
    expect(ownerOf(heap, blocks[10])).toBe(0);
    expect(heap.stats().threads!.sharedPools).toBe(1);
    expect(slot(heap, theirs)).toMatchObject({ tid: 0, pools: 0 });
    const start = slot(heap, mine);
    heap.free(blocks[10]);
    expect(slot(heap, mine)).toMatchObject({ remoteFrees: start.remoteFrees + 1, lockedFrees: start.lockedFrees + 1 });
    expect(classOf(heap, 96).blocksInUse).toBe(9);
    const third = await Heap.attach(heap.share());
    const tid3 = tidOf(third);
    expect(tid3 & 511).toBe(theirs & 511); // the slot the detached thread left
    const q = third.malloc(96);
    expect(q).toBe(blocks[10]); // the adopted pool's free list, last freed first
    expect(ownerOf(heap, q)).toBe(tid3);
    expect(slot(heap, tid3)).toMatchObject({ adopted: 1 });
    expect(heap.stats().threads!.sharedPools).toBe(0);
    third.free(q);
    for (const p of blocks.slice(11)) third.free(p);
    expect(classOf(heap, 96).blocksInUse).toBe(0);
    heap.check();
    third.detach();
  });

  it('finds a remote list whose link was overwritten, in check() and in the drain', () => {
    const p = heap.malloc(32);
    const q = heap.malloc(32);
    const keep = heap.malloc(32);
    other.free(p);
    other.free(q);
    other.check(); // q -> p, both on their way back
    words(heap)[p >> 2] = q; // p's link now leads back to q: q -> p -> q
    expect(() => other.check()).toThrow(expect.objectContaining({ name: 'HeapCorruptionError', invariant: expect.stringMatching(/^remote list/) }));
    expect(keep).toBeGreaterThan(0);
  });

  it('stops a drain that meets a block twice, and refuses the heap everywhere after', () => {
    const p = heap.malloc(32);
    const q = heap.malloc(32);
    heap.malloc(32);
    other.free(p);
    other.free(q);
    words(heap)[p >> 2] = q;
    expect(() => heap.attachments()).toThrow(expect.objectContaining({ name: 'HeapCorruptionError', invariant: expect.stringMatching(/^remote list/) }));
    expect(() => other.malloc(8)).toThrow(expect.objectContaining({ name: 'HeapCorruptionError' }));
  });

  it("keeps each thread's last error apart, and leaves the header's alone", () => {
    const headerError = words(heap)[HEADER_LAST_ERROR >> 2];
    const p = other.malloc(16);
    const keep = other.malloc(16); // so that p's pool is not empty, and p just a free block
    other.free(p);
    expect(() => heap.free(24)).toThrow(InvalidAddressError);
    expect(() => other.free(p)).toThrow(doubleFree);
    const a = record(heap, mine);
    const b = record(heap, theirs);
    expect([words(heap)[(a + 20) >> 2], words(heap)[(a + 24) >> 2]]).toEqual([NOT_ALLOCATED, 24]);
    expect([words(heap)[(b + 20) >> 2], words(heap)[(b + 24) >> 2]]).toEqual([DOUBLE_FREE, p]);
    expect(words(heap)[HEADER_LAST_ERROR >> 2]).toBe(headerError);
    other.free(keep);
  });

  it('runs malloc, calloc, realloc and free without the heap mutex, with the typed errors of every heap', () => {
    const acquisitions = heap.gil.stats().acquisitions;
    for (let i = 0; i < 1000; i++) heap.free(heap.realloc(heap.calloc(2, 8 + (i % 200)), 300));
    expect(heap.gil.stats().acquisitions).toBe(acquisitions);
    expect(() => heap.malloc(-1)).toThrow(RangeError);
    expect(() => heap.malloc('8' as unknown as number)).toThrow(TypeError);
    expect(() => heap.free(3)).toThrow(expect.objectContaining({ name: 'InvalidAddressError', reason: 'not-allocated' }));
    expect(() => heap.realloc(0x7fff_0000, 8)).toThrow(InvalidAddressError);
    heap.check();
  });

  it('keeps malloc and free under the heap mutex with the debug hooks on, and a block on its way back counts as freed', async () => {
    const hooked = await Heap.create({ shared: true, concurrency: 'free-threaded', debugHooks: {} });
    const peer = await Heap.attach(hooked.share());
    const acquisitions = hooked.gil.stats().acquisitions;
    const p = hooked.malloc(40);
    const keep = hooked.malloc(40);
    expect(hooked.gil.stats().acquisitions).toBe(acquisitions + 2);
    peer.free(p);
    peer.check(); // p is on its owner's remote list: free, its debug layout that of a freed block
    expect(() => peer.free(p)).toThrow(expect.objectContaining({ name: 'MemoryCorruptionError' }));
    hooked.free(keep);
  });

  it('recovers from running out of memory in any thread', async () => {
    const small = await Heap.create({ shared: true, concurrency: 'free-threaded', maxMemory: 8 * 2 ** 20 });
    const peer = await Heap.attach(small.share());
    const inUse = () => small.stats().sizeClasses.reduce((n, c) => n + c.blocksInUse, 0);
    const baseline = inUse();
    const held: number[] = [];
    expect(() => {
      for (;;) held.push(peer.malloc(512));
    }).toThrow(OutOfMemoryError);
    expect(() => small.malloc(2 ** 31)).toThrow(OutOfMemoryError);
    expect(() => small.malloc(64)).toThrow(OutOfMemoryError); // the arenas are all taken
    expect(held.length).toBeGreaterThan(10_000);
    for (const p of held.splice(0, held.length >> 1)) small.free(p); // half of them freed by the other thread
    expect(() => small.malloc(64)).toThrow(OutOfMemoryError); // on the owner's list, its pools still full
    peer.attachments(); // the owner drains: whole pools go back to their arenas
    const q = small.malloc(64);
    for (const p of held) peer.free(p);
    small.free(q);
    small.check();
    expect(inUse()).toBe(baseline);
  });
});

const STRESS = fileURLToPath(new URL('./pools-stress.mjs', import.meta.url));

interface Run {
  steps: number;
  badTags: number;
  errors: string[];
  handed: number;
  received: number;
  overlapped: number;
  leakedBlocks: number;
  leakedRaw: number;
  pending: number;
  remoteFrees: number;
  lockedFrees: number;
  drains: number;
  drained: number;
  left: number;
  lockedByCreator: number;
}

function stress(workers: number, steps: number, build: 'release' | 'debug', seed: number, baselineOnly: boolean): Run {
  // --liftoff --no-wasm-tier-up keeps the core in V8's baseline compiler for the whole run.
  const flags = baselineOnly ? ['--liftoff', '--no-wasm-tier-up'] : [];
  const out = execFileSync(process.execPath, [...flags, STRESS, workers, steps, build, seed].map(String), { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!) as Run;
}

describe('per-thread pools across workers', () => {
  const cases = [
    { workers: 2, steps: 200_000, build: 'release', runs: 10 },
    { workers: 3, steps: 100_000, build: 'release', runs: 6 },
    { workers: 2, steps: 50_000, build: 'debug', runs: 4 },
  ] as const;
  for (const { workers, steps, build, runs } of cases) {
    it(`hands ${workers} x ${steps} blocks between workers, each freed once into its owner's pools (${build} build), ${runs} fresh processes`, () => {
      const results: Run[] = [];
      for (let run = 0; run < runs; run++) results.push(stress(workers, steps, build, run + 1, run % 2 === 1));
      for (const r of results) {
        expect(r.errors).toEqual([]);
        expect(r.steps).toBe(workers * steps);
        expect(r.badTags).toBe(0);
        expect(r.received).toBe(r.handed);
        expect(r.leakedBlocks).toBe(0);
        expect(r.leakedRaw).toBe(0);
        expect(r.pending).toBe(0);
        // Both paths ran: pushes onto remote lists, drained once each, and locked frees into the pools of workers that had left.
        expect(r.remoteFrees - r.lockedFrees).toBeGreaterThan(1000);
        expect(r.drains).toBeGreaterThan(0);
        expect(r.drained).toBe(r.remoteFrees - r.lockedFrees);
        // The creator freed what each worker left it, into the pools of workers that had gone.
        expect(r.lockedByCreator).toBe(r.left);
      }
      // The loops ran at the same time: in most runs every worker but the last found another still running.
      expect(results.filter((r) => r.overlapped === workers - 1).length).toBeGreaterThan(runs / 2);
    }, 600_000);
  }
});
