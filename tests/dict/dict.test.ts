// The dict, against CPython's own tables: the sizes, index widths, usable counts and index
// slots below are what CPython 3.11 shows for the same operations (read from a PyDictKeysObject
// through ctypes), for int keys, which hash alike on 32- and 64-bit builds.
import { describe, it, expect, beforeEach } from 'vitest';
import { Heap } from '../../src/index.js';

for (const build of ['release', 'debug'] as const) {
  describe(`dict (${build} build)`, () => {
    let heap: Heap;

    beforeEach(async () => {
      heap = await Heap.create({ build });
      heap.gc.disable();
    });

    /** d[k] = v for int keys and values k, each given as a fresh object the dict then owns alone. */
    function setInts(d: number, ...keys: number[]): void {
      for (const k of keys) {
        const key = heap.newInt(k + 1000);
        const value = heap.newInt(k + 2000);
        const small = heap.newInt(k);
        heap.dictSet(d, small, value);
        heap.decref(key);
        heap.decref(value);
      }
    }

    function delInts(d: number, ...keys: number[]): void {
      for (const k of keys) expect(heap.dictDelete(d, heap.newInt(k))).toBe(true);
    }

    const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

    it('is a dict of length 0 without a table until the first insertion, then a table of 8', () => {
      const d = heap.newDict();
      expect(heap.typeOf(d).kind).toBe('dict');
      expect(heap.length(d)).toBe(0);
      expect(heap.dictLayout(d)).toEqual({ size: 0, indexBytes: 0, usable: 0, entries: 0, indices: [] });
      setInts(d, 0);
      expect(heap.dictLayout(d)).toMatchObject({ size: 8, indexBytes: 1, usable: 4, entries: 1 });
      heap.check();
    });

    it('grows at GROWTH_RATE = used * 3: 8 slots to 5 entries, then 16, 32, 64, 128, 256 (2-byte indices), 512', () => {
      const d = heap.newDict();
      const changes: number[][] = [];
      let size = 0;
      for (let n = 1; n <= 300; n++) {
        setInts(d, n - 1);
        const { size: now, indexBytes, usable, entries } = heap.dictLayout(d);
        if (now !== size) changes.push([n, now, indexBytes, usable, entries]);
        size = now;
      }
      expect(changes).toEqual([
        [1, 8, 1, 4, 1], [6, 16, 1, 4, 6], [11, 32, 1, 10, 11], [22, 64, 1, 20, 22],
        [43, 128, 1, 42, 43], [86, 256, 2, 84, 86], [171, 512, 2, 170, 171],
      ]);
      expect(heap.length(d)).toBe(300);
      heap.check();
    });

    it('probes 5i + perturb + 1: keys 0 and 8 collide in slot 0, and 8 lands in slot 1', () => {
      const d = heap.newDict();
      setInts(d, 0, 8);
      expect(heap.dictLayout(d)).toEqual({ size: 8, indexBytes: 1, usable: 3, entries: 2, indices: [0, 1, -1, -1, -1, -1, -1, -1] });
    });

    it('leaves a DUMMY in a deleted key\'s slot, and a resize compacts the entries in order', () => {
      const d = heap.newDict();
      setInts(d, ...range(0, 5));
      delInts(d, 2);
      expect(heap.dictLayout(d)).toEqual({ size: 8, indexBytes: 1, usable: 0, entries: 5, indices: [0, 1, -2, 3, 4, -1, -1, -1] });
      expect(heap.dictGet(d, heap.newInt(2))).toBeNull();
      expect(heap.length(d)).toBe(4);
      // No entry is usable: the table is rebuilt at calculate_log2_keysize(4 * 3) = 16 slots.
      setInts(d, 7);
      expect(heap.dictLayout(d)).toEqual({
        size: 16, indexBytes: 1, usable: 5, entries: 5, indices: [0, 1, -1, 2, 3, -1, -1, 4, -1, -1, -1, -1, -1, -1, -1, -1],
      });
      setInts(d, 9);
      expect(heap.dictLayout(d).indices).toEqual([0, 1, -1, 2, 3, -1, -1, 4, -1, 5, -1, -1, -1, -1, -1, -1]);
      expect(heap.dictKeys(d).map((k) => heap.intValue(k))).toEqual([0, 1, 3, 4, 7, 9]);
      heap.check();
    });

    it('keeps insertion order across resizes and deletions', () => {
      const d = heap.newDict();
      const order = range(0, 200).map((i) => (i * 7919) % 1000);
      for (const k of order) heap.dictSet(d, `key ${k}`, heap.newInt(k));
      const deleted = new Set(order.filter((_k, i) => i % 3 === 0));
      for (const k of deleted) expect(heap.dictDelete(d, `key ${k}`)).toBe(true);
      for (const k of range(1000, 1100)) heap.dictSet(d, `key ${k}`, heap.newInt(k));
      const expected = [...order.filter((k) => !deleted.has(k)), ...range(1000, 1100)];
      const items = heap.dictItems(d);
      expect(items.map(([k]) => heap.strValue(k))).toEqual(expected.map((k) => `key ${k}`));
      expect(items.map(([, v]) => heap.intValue(v))).toEqual(expected);
      expect(heap.length(d)).toBe(expected.length);
      heap.check();
    });

    it('finds the one key left after 99 deletions, and adds the next without a resize (70 usable)', () => {
      const d = heap.newDict();
      setInts(d, ...range(0, 100));
      delInts(d, ...range(0, 99));
      const layout = heap.dictLayout(d);
      expect([layout.size, layout.indexBytes, layout.usable, layout.entries]).toEqual([256, 2, 70, 100]);
      expect(layout.indices.filter((ix) => ix === -2)).toHaveLength(99);
      expect(heap.intValue(heap.dictGet(d, heap.newInt(99))!)).toBe(2099);
      setInts(d, 1000);
      expect(heap.dictLayout(d)).toMatchObject({ size: 256, usable: 69, entries: 101 });
      for (const k of range(0, 99)) expect(heap.dictGet(d, heap.newInt(k))).toBeNull();
      heap.check();
    });

    it('shrinks when it grows again after deletions: the new size is calculate_log2_keysize(used * 3)', () => {
      const d = heap.newDict();
      setInts(d, ...range(0, 21)); // 32 slots, usable 0 after 21
      delInts(d, ...range(0, 20));
      expect(heap.dictLayout(d)).toMatchObject({ size: 32, usable: 0, entries: 21 });
      setInts(d, 500); // used 1: 1 * 3 -> the minimum, 8 slots
      expect(heap.dictLayout(d)).toMatchObject({ size: 8, usable: 3, entries: 2 });
      expect(heap.dictKeys(d).map((k) => heap.intValue(k))).toEqual([20, 500]);
      heap.check();
    });

    it('compares keys by value: equal strs and equal ints are one key; a str and an int never', () => {
      const d = heap.newDict();
      const one = heap.newInt(1);
      const big = heap.newInt(2n ** 40n);
      heap.dictSet(d, 'x', one);
      heap.dictSet(d, heap.newStr('x'), big); // another str object, equal: replaces the value
      expect(heap.length(d)).toBe(1);
      expect(heap.dictGet(d, 'x')).toBe(big);
      heap.dictSet(d, 1n, one);
      heap.dictSet(d, '1', big);
      expect(heap.length(d)).toBe(3);
      expect(heap.dictGet(d, heap.newInt(1))).toBe(one);
      expect(heap.dictGet(d, 2n ** 40n)).toBeNull();
      heap.dictSet(d, 2n ** 40n, one);
      expect(heap.dictGet(d, heap.newInt(2n ** 40n))).toBe(one);
      heap.check();
    });

    it('hashes ints as a 32-bit CPython does: -1 and -2 share hash -2, and 2^31 - 1 hashes to 0, as 0 does', () => {
      // All four in a table of 8: 0 and 2^31 - 1 both start at slot 0, -1 and -2 both at slot 6 (-2 & 7).
      const d = heap.newDict();
      for (const k of [0n, 2n ** 31n - 1n, -1n, -2n]) heap.dictSet(d, k, heap.none());
      const { indices } = heap.dictLayout(d);
      expect(indices[0]).toBe(0);
      expect(indices[6]).toBe(2);
      // The second of each pair moved on by the probe: perturb = hash >> 5 as an unsigned 32-bit word.
      expect(indices.filter((ix) => ix >= 0).sort()).toEqual([0, 1, 2, 3]);
      const slotOf = (entry: number) => indices.indexOf(entry);
      expect(slotOf(1)).toBe(1); // (0 * 5 + 0 + 1) & 7
      // -2 meets slot 6 again while perturb is 2^k - 1 with k >= 3 (0x7ffffff, 0x3fffff, 0x1ffff,
      // 0xfff, 0x7f: 5 * 6 + perturb + 1 = 6 mod 8); perturb 3 then gives (30 + 3 + 1) & 7 = 2.
      // A 64-bit hash (perturb 0x7ffffffffffffff, ...) would take other slots.
      expect(slotOf(3)).toBe(2);
      heap.check();
    });

    it('holds its references: exact refcounts through set, replace and delete', () => {
      const d = heap.newDict();
      const key = heap.newStr('k');
      const a = heap.newList();
      const b = heap.newList();
      heap.dictSet(d, key, a);
      expect([heap.refcount(key), heap.refcount(a)]).toEqual([2, 2]);
      heap.dictSet(d, 'k', b);
      expect([heap.refcount(key), heap.refcount(a), heap.refcount(b)]).toEqual([2, 1, 2]);
      expect(heap.dictDelete(d, key)).toBe(true);
      expect(heap.dictDelete(d, key)).toBe(false);
      expect([heap.refcount(key), heap.refcount(b)]).toEqual([1, 1]);
      heap.dictSet(d, key, a);
      heap.decref(d);
      expect([heap.refcount(key), heap.refcount(a)]).toEqual([1, 1]);
      heap.check();
    });

    it('is collected in a cycle: d -> list -> d is 2 objects, and what they held is freed', () => {
      // d = {'self': l, 'n': 12345}; l = [d]
      const d = heap.newDict();
      const l = heap.newList([d]);
      const n = heap.newInt(12345);
      heap.dictSet(d, 'self', l);
      heap.dictSet(d, 'n', n);
      heap.decref(l);
      heap.decref(d);
      expect(heap.gc.collect()).toBe(2);
      expect(heap.isObject(d)).toBe(false);
      expect(heap.refcount(n)).toBe(1);
      heap.check();
    });

    it('is collected when it holds itself, with 1000 entries: 1', () => {
      const d = heap.newDict();
      for (let i = 0; i < 1000; i++) heap.dictSet(d, `k${i}`, d);
      expect(heap.refcount(d)).toBe(1001);
      heap.decref(d);
      expect(heap.gc.collect()).toBe(1);
      expect(heap.isObject(d)).toBe(false);
      heap.check();
    });

    it('keeps a dict referred to from outside the cycle, and what it reaches', () => {
      // outer (held) -> d <-> inner
      const outer = heap.newList();
      const d = heap.newDict();
      const inner = heap.newDict();
      heap.dictSet(d, 'inner', inner);
      heap.dictSet(inner, 'back', d);
      heap.listAppend(outer, d);
      heap.decref(d);
      heap.decref(inner);
      expect(heap.gc.collect()).toBe(0);
      expect(heap.gc.getReferents(d)).toContain(inner);
      expect(heap.gc.isTracked(d)).toBe(true);
      heap.decref(outer);
      expect(heap.gc.collect()).toBe(2);
      heap.check();
    });

    it('refuses keys that are neither str nor int, and other misuse, with typed errors and the heap unchanged', () => {
      const d = heap.newDict();
      const list = heap.newList();
      expect(() => heap.dictSet(d, list, list)).toThrow(/is not a str or an int/);
      expect(() => heap.dictSet(d, heap.newFloat(1.5), list)).toThrow(TypeError);
      expect(() => heap.dictGet(list, 'x')).toThrow(/is not a dict/);
      expect(() => heap.dictSet(d, 'x', 12345678)).toThrow(/bad-value|not a live object|InvalidObject/i);
      expect(() => heap.dictSet(d, {} as never, list)).toThrow(TypeError);
      expect(() => heap.getRef(d, 0)).toThrow(TypeError);
      expect(() => heap.setRef(d, 0, list)).toThrow(TypeError);
      expect(heap.length(d)).toBe(0);
      expect(heap.refcount(list)).toBe(1);
      heap.check();
    });

    it('finds a dict whose table was overwritten: check() names the dict table', () => {
      const d = heap.newDict();
      setInts(d, 0, 1, 2);
      const keysBlock = new Uint32Array(heap.memory.buffer)[(d + 12) >>> 2];
      new Uint32Array(heap.memory.buffer)[(keysBlock + 8) >>> 2] = 7; // usable + nentries != 5
      expect(() => heap.check()).toThrow(/dict table/);
    });
  });
}
