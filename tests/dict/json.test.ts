// heap.fromJSON / heap.toJSON: JSON values built as dicts, lists, strs, ints, floats and the
// singletons in one call into the core, and read back; round trips compared byte for byte
// through JSON.stringify, refcounts exact, and nothing left behind once the root is dropped.
import { describe, it, expect, beforeEach } from 'vitest';
import fc from 'fast-check';
import { Heap, ObjectTypeError, OutOfMemoryError } from '../../src/index.js';

const IMMORTAL = 0x3fff_ffff;

for (const build of ['release', 'debug'] as const) {
  describe(`fromJSON / toJSON (${build} build)`, () => {
    let heap: Heap;

    beforeEach(async () => {
      heap = await Heap.create({ build });
      heap.gc.disable();
    });

    /**
     * Bytes in pymalloc and raw blocks, less those of dead objects the debug build keeps in
     * quarantine: what a graph that is gone must give back.
     */
    function footprint(of: Heap = heap): number {
      const stats = of.stats();
      return stats.bytes.inAllocatedBlocks + stats.raw.bytes - stats.quarantine.bytes;
    }

    /** Makes the singletons and every cached small int, which stay once made. */
    function warm(of: Heap = heap): void {
      of.decref(of.fromJSON([null, true, false, Array.from({ length: 262 }, (_, i) => i - 5)]));
    }

    /** Every object of the graph under o, each once, with the references the graph holds to it. */
    function referencesWithin(root: number): Map<number, number> {
      const held = new Map<number, number>([[root, 0]]);
      const visit = (o: number) => {
        const kind = heap.typeOf(o).kind;
        const children = kind === 'dict' ? heap.dictItems(o).flat() : kind === 'list' ? Array.from({ length: heap.length(o) }, (_, i) => heap.getRef(o, i)!) : [];
        for (const child of children) {
          const seen = held.has(child);
          held.set(child, (held.get(child) ?? 0) + 1);
          if (!seen) visit(child);
        }
      };
      visit(root);
      return held;
    }

    it('round-trips a document of every kind byte for byte, with the kinds CPython would give', () => {
      const doc = {
        name: 'pymalloc', version: 3.12, tags: ['gc', 'arena', 'é', '😀 emoji', ''], ok: true, off: false, none: null,
        counts: { '0': -5, '256': 257, big: 2 ** 53 - 1, negative: -(2 ** 40), tiny: 5e-324, exp: 1e300 },
        nested: [[[[]]], {}, [{}], { a: { b: { c: 'deep' } } }],
        '__proto__': 'an own key, as JSON.parse makes it',
      };
      const parsed = JSON.parse(JSON.stringify(doc));
      const root = heap.fromJSON(parsed);
      expect(heap.typeOf(root).kind).toBe('dict');
      expect(JSON.stringify(heap.toJSON(root))).toBe(JSON.stringify(parsed));
      expect(heap.typeOf(heap.dictGet(root, 'version')!).kind).toBe('float');
      expect(heap.typeOf(heap.dictGet(root, 'tags')!).kind).toBe('list');
      expect(heap.typeOf(heap.dictGet(heap.dictGet(root, 'counts')!, 'big')!).kind).toBe('int');
      expect(heap.dictGet(root, 'ok')).toBe(heap.newBool(true));
      expect(heap.dictGet(root, 'none')).toBe(heap.none());
      expect(heap.strValue(heap.getRef(heap.dictGet(root, 'tags')!, 3)!)).toBe('😀 emoji');
      heap.check();
    });

    it('round-trips random JSON values byte for byte (fast-check)', () => {
      fc.assert(
        fc.property(fc.jsonValue({ stringUnit: 'grapheme', maxDepth: 6 }), (value) => {
          const root = heap.fromJSON(value);
          const text = JSON.stringify(heap.toJSON(root));
          heap.decref(root);
          return text === JSON.stringify(value);
        }),
        { numRuns: 300 },
      );
      heap.check();
    });

    it('gives every object exactly the references the graph holds (plus the caller\'s to the root)', () => {
      const doc = { a: [1, 1000, 'x', 'x', 2.5, null], b: { c: [true, { d: 70000 }] }, e: 'x' };
      const root = heap.fromJSON(doc);
      const held = referencesWithin(root);
      expect(held.size).toBeGreaterThan(10);
      for (const [o, n] of held) {
        const refcount = heap.refcount(o);
        // Small ints, None and the bools are immortal; everything else is owned by its container alone.
        if (refcount >= IMMORTAL) expect(['int', 'none', 'bool']).toContain(heap.typeOf(o).kind);
        else expect(refcount).toBe(o === root ? 1 : n);
      }
      expect(heap.gc.collect()).toBe(0);
      heap.check();
    });

    it('makes one str per key, as CPython\'s json memoizes keys: 100 records share their two key objects', () => {
      const root = heap.fromJSON(Array.from({ length: 100 }, (_, i) => ({ id: i, name: 'id' })));
      const [id, name] = heap.dictKeys(heap.getRef(root, 0)!);
      for (let i = 1; i < 100; i++) expect(heap.dictKeys(heap.getRef(root, i)!)).toEqual([id, name]);
      expect([heap.refcount(id), heap.refcount(name)]).toEqual([100, 100]);
      expect(heap.dictGet(heap.getRef(root, 0)!, 'name')).not.toBe(id); // values are not keys
      heap.decref(root);
      heap.check();
    });

    it('frees the whole graph when the root goes: every size class and raw block back where it was', () => {
      warm();
      const before = footprint();
      const doc = { items: Array.from({ length: 2000 }, (_, i) => ({ id: i, name: `item ${i}`, score: i / 7, tags: ['a', 'b'] })) };
      const root = heap.fromJSON(doc);
      expect(footprint()).not.toEqual(before);
      heap.decref(root);
      expect(footprint()).toEqual(before);
      heap.check();
    });

    it('traces every object it builds while tracemalloc traces, and none once the root is gone', () => {
      warm();
      heap.tracemalloc.start();
      const doc = { a: [1000, 'x', 2.5, { b: 'y' }], c: null };
      const root = heap.fromJSON(doc);
      const mortal = [...referencesWithin(root).keys()].filter((o) => heap.refcount(o) < IMMORTAL);
      // root, 'a', the list, 1000, 'x', 2.5, the inner dict, 'b', 'y', 'c'
      expect(mortal).toHaveLength(10);
      expect(heap.tracemalloc.takeSnapshot().traces).toHaveLength(10);
      heap.decref(root);
      expect(heap.tracemalloc.getTracedMemory().current).toBe(0);
      heap.tracemalloc.stop();
    });

    it('presizes each dict as _PyDict_NewPresized: 6 keys in 16 slots, 11 in 32, 5 without a resize', () => {
      const keys = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));
      const sizes = [5, 6, 11, 22, 100].map((n) => {
        const d = heap.fromJSON(keys(n));
        const { size, usable, entries } = heap.dictLayout(d);
        heap.decref(d);
        return [n, size, usable, entries];
      });
      // (n * 3 + 1) / 2 rounded up to a power of two, at least 8.
      expect(sizes).toEqual([[5, 8, 0, 5], [6, 16, 4, 6], [11, 32, 10, 11], [22, 64, 20, 22], [100, 256, 70, 100]]);
    });

    it('reads dicts with int keys as their decimal strings, and tuples as arrays', () => {
      const d = heap.newDict();
      const t = heap.newTuple([heap.newInt(1), heap.newStr('two')]);
      heap.dictSet(d, 7n, t);
      heap.dictSet(d, -(2n ** 60n), heap.newFloat(0.5));
      heap.dictSet(d, 'big', heap.newInt(2n ** 62n));
      expect(heap.toJSON(d)).toEqual({ '7': [1, 'two'], [String(-(2n ** 60n))]: 0.5, big: 2n ** 62n });
    });

    it('refuses JS values that are not JSON, with a TypeError, and builds nothing', () => {
      warm();
      const before = footprint();
      const circular: unknown[] = [1];
      circular.push({ back: circular });
      for (const bad of [undefined, () => 1, Symbol('s'), new Map(), new Date(0), [1, undefined], { a: new Set() }, circular]) {
        expect(() => heap.fromJSON(bad)).toThrow(TypeError);
      }
      expect(() => heap.fromJSON(2n ** 64n)).toThrow(RangeError);
      expect(footprint()).toEqual(before);
      heap.check();
    });

    it('refuses a circular graph and kinds with no JSON value, naming the object, and leaves the heap as it was', () => {
      const d = heap.newDict();
      const l = heap.newList([d]);
      heap.dictSet(d, 'l', l);
      expect(() => heap.toJSON(d)).toThrow(ObjectTypeError);
      expect(() => heap.toJSON(d)).toThrow(/circular/);
      const Node = heap.defineType({ name: 'Node', refSlots: 1 });
      const n = heap.newObject(Node);
      const holder = heap.fromJSON({ a: [1, 2] });
      heap.listAppend(heap.dictGet(holder, 'a')!, n);
      expect(() => heap.toJSON(holder)).toThrow(/Node object at 0x[0-9a-f]+> has no JSON value/);
      expect(() => heap.toJSON(12345)).toThrow(/InvalidObject|not a live object|12345|0x3039/);
      expect(heap.refcount(d)).toBe(2);
      heap.check();
    });

    it('runs out of memory as an OutOfMemoryError, with nothing half-built left behind', async () => {
      const small = await Heap.create({ build, maxMemory: 16 * 1024 * 1024 });
      warm(small);
      const before = footprint(small);
      // About 6 MB of tape for some 20 MB of objects.
      const huge = Array.from({ length: 150000 }, (_, i) => ({ i: i + 1000, s: `s${i}` }));
      expect(() => small.fromJSON(huge)).toThrow(OutOfMemoryError);
      expect(() => small.fromJSON(huge)).toThrow(/the graph of a \d+-byte tape/); // failed in the build, not before it
      expect(footprint(small)).toBe(before);
      small.check();
      const root = small.fromJSON(huge.slice(0, 100));
      expect(JSON.stringify(small.toJSON(root))).toBe(JSON.stringify(huge.slice(0, 100)));
    });
  });
}
