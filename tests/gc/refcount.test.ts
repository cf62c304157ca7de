// Reference counting, the built-in kinds, and what bad input does.
import { describe, it, expect, beforeEach } from 'vitest';
import {
  Heap, InvalidObjectError, ObjectTypeError, type ObjectType,
} from '../../src/index.js';

for (const build of ['release', 'debug'] as const) {
  describe(`reference counting (${build} build)`, () => {
    let heap: Heap;
    let Node: ObjectType;

    beforeEach(async () => {
      heap = await Heap.create({ build });
      Node = heap.defineType({ name: 'Node', refSlots: 2, dataBytes: 8 });
    });

    it('counts owned references and frees at zero, releasing what the object held', () => {
      const a = heap.newObject(Node);
      const b = heap.newObject(Node);
      expect(heap.refcount(a)).toBe(1);
      heap.setRef(a, 0, b);
      heap.setRef(a, 1, b);
      expect(heap.refcount(b)).toBe(3);
      expect(heap.getRef(a, 0)).toBe(b);
      expect(heap.refcount(b)).toBe(3); // getRef lends
      heap.setRef(a, 1, null);
      expect(heap.refcount(b)).toBe(2);
      heap.decref(b);
      heap.incref(a);
      heap.decref(a);
      expect(heap.isObject(a)).toBe(true);
      heap.decref(a);
      expect(heap.isObject(a)).toBe(false);
      expect(heap.isObject(b)).toBe(false);
      // The debug build keeps the two dead objects in quarantine, so stale handles stay refused.
      const stats = heap.stats();
      expect(stats.quarantine.objects).toBe(build === 'debug' ? 2 : 0);
      expect(stats.sizeClasses.reduce((n, c) => n + c.blocksInUse, 0)).toBe(stats.quarantine.objects);
      heap.check();
    });

    it('places objects where PyObject_Malloc would: a GC header before tracked ones', () => {
      const Leaf = heap.defineType({ name: 'Leaf', dataBytes: 8, weakrefable: false });
      const Pair = heap.defineType({ name: 'Pair', refSlots: 2, dataBytes: 8, weakrefable: false });
      const leaf = heap.newObject(Leaf);
      const pair = heap.newObject(Pair);
      const node = heap.newObject(Node);
      expect(heap.usableSize(leaf)).toBe(16); // refcnt, type, 8 data bytes: one 16-byte block
      expect(() => heap.usableSize(pair)).toThrow(); // the block starts 8 bytes earlier
      expect(heap.usableSize(pair - 8)).toBe(32); // next, prev, refcnt, type, 2 slots, data
      expect(heap.usableSize(node - 8)).toBe(48); // ... and a weak list word, data 8-aligned
    });

    it('gives fixed objects their raw data', () => {
      const a = heap.newObject(Node);
      const data = heap.objectData(a);
      expect(data.length).toBe(8);
      expect([...data]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
      data.set([1, 2, 3, 4, 5, 6, 7, 8]);
      expect([...heap.objectData(a)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    });

    it('caches small ints, immortal, and boxes the others', () => {
      const five = heap.newInt(5);
      expect(heap.newInt(5)).toBe(five);
      expect(heap.newInt(-5)).toBe(heap.newInt(-5));
      expect(heap.newInt(257)).not.toBe(heap.newInt(257));
      expect(heap.isImmortal(five)).toBe(true);
      const before = heap.refcount(five);
      heap.decref(five);
      heap.incref(five);
      heap.incref(five);
      expect(heap.refcount(five)).toBe(before);
      expect(heap.intValue(five)).toBe(5);
      expect(heap.intValue(heap.newInt(-(2n ** 63n)))).toBe(-(2n ** 63n));
      const big = heap.newInt(1e15);
      expect(heap.intValue(big)).toBe(1e15);
      heap.decref(big);
      expect(heap.isObject(big)).toBe(false);
    });

    it('stores UTF-8 strings and interns them', () => {
      const s = heap.newStr('naïve ☃');
      expect(heap.strValue(s)).toBe('naïve ☃');
      const i1 = heap.intern('spam');
      const i2 = heap.intern(heap.newStr('spam'));
      expect(i2).toBe(i1);
      expect(heap.isImmortal(i1)).toBe(true);
      expect(heap.intern(s)).toBe(s);
      expect(heap.intern('naïve ☃')).toBe(s);
      for (let i = 0; i < 500; i++) expect(heap.intern(`k${i}`)).toBe(heap.intern(`k${i}`));
      heap.check();
    });

    it('grows and shrinks lists, whose item array is a separate block', () => {
      const l = heap.newList();
      const items = Array.from({ length: 100 }, (_, i) => heap.newInt(1000 + i));
      for (const item of items) heap.listAppend(l, item);
      expect(heap.length(l)).toBe(100);
      expect(heap.refcount(items[0])).toBe(2);
      expect(heap.getRef(l, 99)).toBe(items[99]);
      const last = heap.listPop(l);
      expect(last).toBe(items[99]);
      expect(heap.refcount(items[99])).toBe(2); // the pop handed its reference over
      expect(heap.listPop(l, 0)).toBe(items[0]);
      expect(heap.getRef(l, 0)).toBe(items[1]);
      while (heap.length(l)) heap.decref(heap.listPop(l)!);
      heap.decref(items[0]);
      heap.decref(items[99]);
      expect(heap.refcount(items[1])).toBe(1);
      heap.check();
    });

    it('runs a finalizer when refcounting frees the object, once, and allows resurrection', () => {
      let calls = 0;
      let keep = false;
      const F = heap.defineType({ name: 'F', finalizer: (o) => {
        calls++;
        if (keep) heap.incref(o);
      } });
      const a = heap.newObject(F);
      heap.decref(a);
      expect(calls).toBe(1);
      expect(heap.isObject(a)).toBe(false);
      keep = true;
      const b = heap.newObject(F);
      heap.decref(b);
      expect(calls).toBe(2);
      expect(heap.refcount(b)).toBe(1);
      expect(heap.gc.isFinalized(b)).toBe(true);
      heap.decref(b); // finalized already: freed without a second call
      expect(calls).toBe(2);
      expect(heap.isObject(b)).toBe(false);
      heap.check();
    });

    it('throws InvalidObjectError for an address that is not a live object, heap unchanged', () => {
      const a = heap.newObject(Node);
      const raw = heap.malloc(24);
      for (const bad of [0, 1, a + 4, a - 8, raw, 0xfffffff0]) {
        expect(() => heap.incref(bad)).toThrow(InvalidObjectError);
        expect(() => heap.refcount(bad)).toThrow(InvalidObjectError);
        expect(() => heap.setRef(bad, 0, null)).toThrow(InvalidObjectError);
      }
      expect(() => heap.setRef(a, 0, raw)).toThrow(InvalidObjectError);
      expect(() => heap.decref(-1)).toThrow(RangeError);
      expect(() => heap.decref('x' as unknown as number)).toThrow(TypeError);
      heap.decref(a);
      // decref below zero: the object is gone
      expect(() => heap.decref(a)).toThrow(InvalidObjectError);
      expect(() => heap.decref(a)).toThrow(/not a live object/);
      heap.free(raw);
      heap.check();
    });

    it('throws RangeError for a slot index out of range', () => {
      const a = heap.newObject(Node);
      expect(() => heap.setRef(a, 2, a)).toThrow(RangeError);
      expect(() => heap.setRef(a, 2, a)).toThrow(/index 2 is out of range for <Node object at 0x[0-9a-f]+> with 2 references/);
      expect(() => heap.getRef(a, 5)).toThrow(RangeError);
      expect(() => heap.setRef(a, 1.5, a)).toThrow(RangeError);
      const t = heap.newTuple(3);
      expect(() => heap.setRef(t, 3, null)).toThrow(RangeError);
      const l = heap.newList();
      expect(() => heap.listPop(l)).toThrow(RangeError);
      expect(heap.refcount(a)).toBe(1);
      heap.check();
    });

    it('throws ObjectTypeError for an operation the kind does not have', () => {
      const a = heap.newObject(Node);
      const n = heap.newInt(1000);
      expect(() => heap.listAppend(a, n)).toThrow(ObjectTypeError);
      expect(() => heap.intValue(a)).toThrow(ObjectTypeError);
      expect(() => heap.strValue(n)).toThrow(ObjectTypeError);
      expect(() => heap.weakref(n)).toThrow(ObjectTypeError);
      expect(() => heap.intern(n)).toThrow(ObjectTypeError);
      expect(() => heap.newObject(heap.typeOf(n))).toThrow(TypeError);
      expect(() => heap.defineType({ name: 'X', refSlots: -1 })).toThrow(RangeError);
      expect(heap.typeOf(a)).toBe(Node);
      expect(heap.typeOf(n).name).toBe('int');
      heap.check();
    });

    it('check() finds a reference to a freed object and a refcount too small', () => {
      const a = heap.newObject(Node);
      const b = heap.newObject(Node);
      heap.setRef(a, 0, b);
      heap.setRef(a, 1, b);
      const view = new Uint32Array(heap.memory.buffer);
      view[b >>> 2] = 1; // b's refcount: 3 references, 2 of them from a
      expect(() => heap.check()).toThrow(/refcount/);
      view[b >>> 2] = 3;
      heap.check();
      view[(a + 8) >>> 2] = a + 4; // a slot that points at no object
      expect(() => heap.check()).toThrow(/object reference/);
      view[(a + 8) >>> 2] = b;
      heap.check();
    });
  });
}

describe('the trashcan', () => {
  it('deallocates a chain of 10 million objects without exhausting the stack', async () => {
    const heap = await Heap.create();
    const Link = heap.defineType({ name: 'Link', refSlots: 1, weakrefable: false });
    heap.gc.disable();
    const first = heap.newObject(Link);
    let prev = first;
    for (let i = 1; i < 10_000_000; i++) {
      const next = heap.newObject(Link);
      heap.setRef(prev, 0, next);
      heap.decref(next);
      prev = next;
    }
    expect(heap.gc.getCount()[0]).toBe(10_000_000);
    heap.decref(first);
    expect(heap.isObject(prev)).toBe(false);
    expect(heap.gc.getCount()[0]).toBe(0);
    expect(heap.stats().sizeClasses.every((c) => c.blocksInUse === 0)).toBe(true);
  }, 60_000);
});
