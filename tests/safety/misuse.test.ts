// Misuse that used to hang, trap or corrupt silently (issue 8, "No hang, no silent
// corruption"): each test is named after what broke and draws the object graph it builds.
import { describe, it, expect, beforeEach } from 'vitest';
import {
  Heap, HeapCorruptionError, InvalidAddressError, InvalidObjectError, type InvalidAddressReason,
  type ObjectType,
} from '../../src/index.js';

function caught(call: () => unknown): unknown {
  try {
    call();
  } catch (error) {
    return error;
  }
  return undefined;
}

function refused(call: () => unknown, reason: InvalidAddressReason): void {
  const error = caught(call);
  expect(error).toBeInstanceOf(InvalidAddressError);
  expect((error as InvalidAddressError).reason).toBe(reason);
}

function corrupted(call: () => unknown, operation: string, invariant: RegExp): HeapCorruptionError {
  const error = caught(call);
  expect(error).toBeInstanceOf(HeapCorruptionError);
  const corruption = error as HeapCorruptionError;
  expect(corruption.operation).toBe(operation);
  expect(corruption.invariant).toMatch(invariant);
  expect(corruption.message).toMatch(new RegExp(`^${operation.replace('.', '\\.')}: heap corrupted: `));
  return corruption;
}

/** The heap is broken: every call fails at once, naming the first corruption; dispose still works. */
function unusable(heap: Heap, first: HeapCorruptionError): void {
  for (const call of [() => heap.malloc(8), () => heap.stats(), () => heap.check(), () => heap.gc.collect()]) {
    const error = caught(call) as HeapCorruptionError;
    expect(error).toBeInstanceOf(HeapCorruptionError);
    expect(error.firstFound).toBe(first);
    expect(error.message).toContain('the heap is unusable since');
  }
  heap.dispose();
}

const u32 = (heap: Heap) => new Uint32Array(heap.memory.buffer);

for (const build of ['release', 'debug'] as const) {
  describe(`misuse of the allocator (${build} build)`, () => {
    let heap: Heap;
    let T: ObjectType;

    beforeEach(async () => {
      heap = await Heap.create({ build });
      T = heap.defineType({ name: 'T', refSlots: 1 });
    });

    it('a stale free of a block that now holds an object is refused, and gc.collect() returns', () => {
      // p = malloc(size); free(p); o = newObject(T) takes p's block; free(p) again:
      //   [ p's block ] = [ GC header | o: refcnt type slot ]   <- must not reach the free list
      const probe = heap.newObject(T);
      const size = heap.usableSize(probe - 8);
      heap.decref(probe);
      const p = heap.malloc(size);
      heap.free(p);
      const o = heap.newObject(T);
      const other = heap.newObject(T);
      expect(o - 8).toBe(p);
      refused(() => heap.free(p), 'object');
      expect(heap.gc.collect()).toBe(0);
      expect(heap.refcount(o)).toBe(1);
      heap.check();
      // The block was not handed out again behind the object's back.
      const q = heap.malloc(size);
      expect(q).not.toBe(o - 8);
      heap.free(q);
      heap.decref(o);
      heap.decref(other);
      heap.check();
    });

    it("free refuses an object's block and every address inside its GC header and head", () => {
      // GC object o in a pymalloc block:  [next prev | refcnt type slot]
      //                                    o-8  o-4    o   o+4  o+8
      const o = heap.newObject(T);
      for (const address of [o - 8, o - 4, o, o + 4]) refused(() => heap.free(address), 'object');
      refused(() => heap.realloc(o - 8, 100), 'object');
      expect(() => heap.usableSize(o)).toThrow(InvalidAddressError);
      expect(heap.usableSize(o - 8)).toBe(32);
      // A tuple too big for a pool lives in a raw block, its GC header at the payload.
      const big = heap.newTuple(300);
      expect(heap.owns(big)).toBe(false);
      for (const address of [big - 8, big - 4, big]) refused(() => heap.free(address), 'object');
      // An object without a GC header starts its block.
      const n = heap.newInt(1000);
      refused(() => heap.free(n), 'object');
      // A list's item array belongs to the list.
      const list = heap.newList([n]);
      const items = u32(heap)[(list + 16) >>> 2];
      refused(() => heap.free(items), 'object');
      refused(() => heap.realloc(items, 64), 'object');
      expect(heap.listPop(list)).toBe(n);
      heap.check();
      for (const x of [o, big, n, n, list]) heap.decref(x);
      heap.check();
    });

    it('a block freed twice, not the last one freed in its pool, is refused: no block handed out twice', () => {
      // pool free list after free(a), free(b):  b -> a -> (rest); free(a) again must not make it a -> b -> a
      const a = heap.malloc(24);
      const b = heap.malloc(24);
      heap.malloc(24); // keeps the pool from becoming empty
      heap.free(a);
      heap.free(b);
      refused(() => heap.free(a), 'double-free');
      refused(() => heap.usableSize(a), 'double-free');
      refused(() => heap.realloc(a, 8), 'double-free');
      const handed = [heap.malloc(24), heap.malloc(24), heap.malloc(24)];
      expect(new Set(handed).size).toBe(3);
      expect(handed.slice(0, 2)).toEqual([b, a]); // CPython's order: last freed, first reused
      heap.check();
      const raw = heap.malloc(5000);
      heap.free(raw);
      refused(() => heap.free(raw), 'double-free');
      heap.check();
    });

    it('an 8-byte overrun of a raw block is reported by the next free, not a bare trap', () => {
      // [hdr a | a's 1008 bytes][hdr b | b ...]: writing a's bytes 1008..1015 smashes b's header
      const a = heap.malloc(1000);
      const b = heap.malloc(1000);
      expect(b).toBe(a + heap.usableSize(a) + 8);
      heap.free(b); // b is free now: free(a) would merge with it through its links
      new Uint8Array(heap.memory.buffer, a + heap.usableSize(a), 8).fill(0x41);
      const first = corrupted(() => heap.free(a), 'free', /^raw overrun/);
      expect(first.address).toBe(a - 8);
      unusable(heap, first);
    });

    it('an overrun onto an allocated neighbour is reported by realloc too', () => {
      const a = heap.malloc(1000);
      heap.malloc(1000);
      new Uint8Array(heap.memory.buffer, a + heap.usableSize(a), 8).fill(0);
      corrupted(() => heap.realloc(a, 3000), 'realloc', /^raw overrun/);
    });

    it('a generation list whose links form a cycle stops gc.collect() with the list named', () => {
      // generation 0: head -> a -> b -> head; a's next is overwritten to a itself: a -> a -> ...
      const a = heap.newObject(T);
      heap.newObject(T);
      u32(heap)[(a - 8) >>> 2] = a - 8;
      const first = corrupted(() => heap.gc.collect(), 'gc.collect', /^gc list walk/);
      unusable(heap, first);
    });

    it('a link out of memory traps inside the collector: a HeapCorruptionError naming gc.collect', () => {
      // generation 0: head -> a -> 0xfffffff0 (beyond memory); b, the last, is relinked by the merge
      const a = heap.newObject(T);
      heap.newObject(T);
      u32(heap)[(a - 8) >>> 2] = 0xfffffff0;
      const first = corrupted(() => heap.gc.collect(), 'gc.collect', /^trap inside the core: memory access out of bounds/);
      expect(first.address).toBe(0);
      unusable(heap, first);
    });

    it('an automatic collection inside newObject is stopped the same way', () => {
      heap.gc.setThreshold(3);
      const a = heap.newObject(T);
      heap.newObject(T);
      u32(heap)[(a - 8) >>> 2] = a - 8;
      heap.newObject(T);
      corrupted(() => heap.newObject(T), 'newObject', /^gc list walk/);
    });

    it("a freed block's link overwritten to a live block stops malloc instead of handing it out twice", () => {
      // pool: live x, then freed y whose link (first word) is overwritten to point at x
      const x = heap.malloc(40);
      const y = heap.malloc(40);
      heap.malloc(40);
      heap.free(y);
      u32(heap)[y >>> 2] = x;
      expect(heap.malloc(40)).toBe(y);
      corrupted(() => heap.malloc(40), 'malloc', /^pool free list/);
    });

    it('the trashcan stops at a queue link to a freed object', () => {
      // a: slot 0 -> c, slot 1 -> b; wr = weakref(b, callback). decref(a) drains the trashcan:
      // c is queued, then b's callback runs and points c's queue link at f, freed before.
      heap.gc.disable();
      const P = heap.defineType({ name: 'P', refSlots: 2 });
      const a = heap.newObject(P);
      const b = heap.newObject(T);
      const c = heap.newObject(T);
      const f = heap.newObject(T);
      heap.setRef(a, 0, c);
      heap.setRef(a, 1, b);
      heap.decref(b);
      heap.decref(c);
      heap.weakref(b, () => {
        u32(heap)[(c - 8) >>> 2] = f - 8;
      });
      heap.decref(f);
      corrupted(() => heap.decref(a), 'decref', /^trashcan walk/);
    });

    it('a corruption found under a finalizer that swallows the error still stops the outer call', () => {
      // decref(o) -> finalizer(o) -> malloc(40) finds the pool's free list overwritten
      let inner: unknown;
      const F = heap.defineType({
        name: 'F',
        refSlots: 1,
        finalizer: () => {
          inner = caught(() => heap.malloc(40));
        },
      });
      const x = heap.malloc(40);
      const y = heap.malloc(40);
      heap.malloc(40);
      heap.free(y);
      u32(heap)[y >>> 2] = x;
      heap.malloc(40);
      const o = heap.newObject(F);
      const outer = caught(() => heap.decref(o)) as HeapCorruptionError;
      expect(inner).toBeInstanceOf(HeapCorruptionError);
      expect(outer).toBeInstanceOf(HeapCorruptionError);
      expect(outer.firstFound).toBe(inner);
      expect(outer.operation).toBe('decref');
    });

    it('counts the block bits after each arena as memory in use', () => {
      heap.malloc(8);
      const { memory, arenas, config } = heap.stats();
      expect(memory.blockBitsBytes).toBe(arenas.current * (config.arenaSize / config.alignment / 4));
      expect(memory.blockBitsBytes).toBe(16384);
    });
  });

  describe(`stale and foreign handles (${build} build)`, () => {
    let heap: Heap;
    let T: ObjectType;

    beforeEach(async () => {
      heap = await Heap.create({ build });
      T = heap.defineType({ name: 'T', refSlots: 1 });
    });

    it('a handle to a freed object is refused, also once its block is a raw block again', () => {
      // o freed; p = malloc(32) may take o's block: [o's block] = p's bytes, no object
      const keep = heap.newObject(T);
      const o = heap.newObject(T);
      heap.decref(o);
      expect(() => heap.decref(o)).toThrow(InvalidObjectError);
      const p = heap.malloc(heap.usableSize(keep - 8));
      heap.write(p, new Uint8Array(32).fill(0));
      // A raw buffer that copies a live object's bytes is still not an object.
      heap.write(p, heap.read(keep - 8));
      for (const stale of [o, p + 8]) {
        expect(() => heap.decref(stale)).toThrow(InvalidObjectError);
        expect(() => heap.setRef(keep, 0, stale)).toThrow(/the value to store, 0x[0-9a-f]+, is not a live object/);
        expect(heap.isObject(stale)).toBe(false);
      }
      expect(heap.refcount(keep)).toBe(1);
      heap.check();
    });

    it(
      build === 'debug'
        ? 'a stale decref after a new object of the same size is refused: the dead one is quarantined'
        : 'a stale decref after a new object takes the address names the new object (CPython reuse order)',
      () => {
        // o1 dies; o2 = newObject(T): release puts it at o1's address, debug parks o1's block
        const o1 = heap.newObject(T);
        heap.decref(o1);
        const o2 = heap.newObject(T);
        if (build === 'release') {
          expect(o2).toBe(o1);
          return;
        }
        expect(o2).not.toBe(o1);
        expect(() => heap.decref(o1)).toThrow(InvalidObjectError);
        expect(() => heap.setRef(o2, 0, o1)).toThrow(InvalidObjectError);
        expect(heap.refcount(o2)).toBe(1);
        expect(heap.stats().quarantine).toEqual({ objects: 1, bytes: 32 });
        heap.check();
      },
    );

    it.runIf(build === 'debug')('finds a write through a stale handle into a quarantined object', () => {
      const o = heap.newObject(T);
      heap.decref(o);
      u32(heap)[o >>> 2] = 1; // "incref" through the stale handle
      expect(() => heap.check()).toThrow(/quarantine: a freed object .* was written to/);
    });

    it.runIf(build === 'debug')('keeps the last 1024 dead objects out of reach, then reuses their blocks', () => {
      const first = heap.newObject(T);
      heap.decref(first);
      const seen = new Set<number>();
      for (let i = 0; i < 1023; i++) {
        const o = heap.newObject(T);
        seen.add(o);
        heap.decref(o);
      }
      expect(seen.has(first)).toBe(false);
      expect(heap.stats().quarantine.objects).toBe(1024);
      heap.check();
      const o = heap.newObject(T); // the 1025th death releases `first`'s block...
      heap.decref(o);
      expect(heap.newObject(T)).toBe(first); // ...and pymalloc hands it out again
      heap.check();
    });

    it('a decref the program does not own frees a live object: check() reports the dangling reference', () => {
      // a -> b (slot 0); the program releases its reference to b twice: the second is a's
      const a = heap.newObject(T);
      const b = heap.newObject(T);
      heap.setRef(a, 0, b);
      heap.decref(b);
      heap.decref(b); // no check on the number can tell this from a correct decref
      expect(heap.isObject(b)).toBe(false);
      expect(heap.getRef(a, 0)).toBe(b);
      expect(() => heap.check()).toThrow(/object reference: a tracked object .* refers to something that is not a live object/);
    });

    it("another heap's objects and types are refused, though its heap was built alike", async () => {
      // heap A: a;  heap B: b (same type, same order);  A.setRef(a, 0, b) must not store a self-reference
      const other = await Heap.create({ build });
      const U = other.defineType({ name: 'T', refSlots: 1 });
      const a = heap.newObject(T);
      const b = other.newObject(U);
      expect(b).not.toBe(a);
      expect(() => heap.setRef(a, 0, b)).toThrow(InvalidObjectError);
      expect(() => heap.decref(b)).toThrow(InvalidObjectError);
      expect(() => heap.free(b - 8)).toThrow(InvalidAddressError);
      expect(() => heap.newObject(U)).toThrow(/type must be a type returned by this heap's defineType/);
      expect(heap.getRef(a, 0)).toBe(null);
      expect(other.refcount(b)).toBe(1);
      heap.check();
      other.check();
    });
  });
}
