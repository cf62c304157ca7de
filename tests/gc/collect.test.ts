// The cycle collector, in the manner of CPython's Lib/test/test_gc.py: build a graph, drop
// the references the test holds, and assert the exact count gc.collect() returns.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { Heap, type ObjectType } from '../../src/index.js';

for (const build of ['release', 'debug'] as const) {
  describe(`gc.collect (${build} build)`, () => {
    let heap: Heap;
    let Node: ObjectType;
    /** What finalizers and callbacks threw (an expect() failing inside one lands here). */
    let unraisable: unknown[];

    beforeEach(async () => {
      heap = await Heap.create({ build });
      Node = heap.defineType({ name: 'Node', refSlots: 2, dataBytes: 8 });
      heap.gc.disable();
      unraisable = [];
      heap.unraisableHook = (info) => unraisable.push(info.error);
    });

    afterEach(() => {
      expect(unraisable).toEqual([]);
    });

    it('collects a self-cycle: 1', () => {
      // a -> a
      const a = heap.newObject(Node);
      heap.setRef(a, 0, a);
      heap.decref(a);
      expect(heap.gc.collect()).toBe(1);
      expect(heap.isObject(a)).toBe(false);
      heap.check();
    });

    it('collects a two-object cycle: 2 (the example of the issue)', () => {
      // a <-> b
      const a = heap.newObject(Node);
      const b = heap.newObject(Node);
      heap.setRef(a, 0, b);
      heap.setRef(b, 0, a);
      expect(heap.refcount(a)).toBe(2);
      heap.decref(a);
      heap.decref(b);
      expect(heap.isObject(a)).toBe(true);
      expect(heap.gc.collect()).toBe(2);
      expect(heap.isObject(a) || heap.isObject(b)).toBe(false);
      heap.check();
    });

    it('keeps a cycle reachable from a held object: 0', () => {
      // held -> a <-> b
      const held = heap.newObject(Node);
      const a = heap.newObject(Node);
      const b = heap.newObject(Node);
      heap.setRef(held, 0, a);
      heap.setRef(a, 0, b);
      heap.setRef(b, 0, a);
      heap.decref(a);
      heap.decref(b);
      expect(heap.gc.collect()).toBe(0);
      expect(heap.refcount(a)).toBe(2);
      expect(heap.refcount(b)).toBe(1);
      heap.decref(held);
      expect(heap.gc.collect()).toBe(2);
      heap.check();
    });

    it('collects a cycle through a list (test_list)', () => {
      // l -> [l]: the list's item array is a separate block
      const l = heap.newList();
      heap.listAppend(l, l);
      heap.decref(l);
      expect(heap.gc.collect()).toBe(1);
      heap.check();
    });

    it('collects a cycle through a tuple and a list (test_tuple)', () => {
      // l -> [t], t -> (l,)
      const l = heap.newList();
      const t = heap.newTuple([l]);
      heap.listAppend(l, t);
      heap.decref(t);
      heap.decref(l);
      expect(heap.gc.collect()).toBe(2);
      heap.check();
    });

    it('frees non-cycle garbage by refcount, without the collector', () => {
      const a = heap.newObject(Node);
      const b = heap.newObject(Node);
      const n = heap.newInt(123456);
      heap.setRef(a, 0, b);
      heap.setRef(b, 0, n);
      heap.decref(b);
      heap.decref(n);
      heap.decref(a);
      expect(heap.isObject(a) || heap.isObject(b) || heap.isObject(n)).toBe(false);
      expect(heap.gc.collect()).toBe(0);
    });

    it('runs a finalizer in a cycle once, then frees the cycle (test_finalizer)', () => {
      const finalized: number[] = [];
      const F = heap.defineType({ name: 'F', refSlots: 1, finalizer: (o) => finalized.push(o) });
      // a <-> b, both with finalizers
      const a = heap.newObject(F);
      const b = heap.newObject(F);
      heap.setRef(a, 0, b);
      heap.setRef(b, 0, a);
      heap.decref(a);
      heap.decref(b);
      expect(heap.gc.collect()).toBe(2);
      expect(finalized.sort()).toEqual([a, b].sort());
      expect(heap.isObject(a)).toBe(false);
      heap.check();
    });

    it('sees the object intact in the finalizer', () => {
      let seen: number | null = -1;
      const F = heap.defineType({ name: 'F', refSlots: 1, dataBytes: 4, finalizer: (o) => {
        seen = heap.getRef(o, 0);
        expect(heap.gc.isFinalized(o)).toBe(true);
      } });
      const a = heap.newObject(F);
      heap.setRef(a, 0, a);
      heap.decref(a);
      heap.gc.collect();
      expect(seen).toBe(a);
    });

    it('keeps a resurrected object, and finalizes it only once (test_resurrection_only_happens_once_per_object)', () => {
      const resurrected: number[] = [];
      let calls = 0;
      const Lazarus = heap.defineType({ name: 'Lazarus', refSlots: 1, finalizer: (o) => {
        calls++;
        heap.incref(o);
        resurrected.push(o);
      } });
      const laz = heap.newObject(Lazarus);
      heap.setRef(laz, 0, laz);
      heap.decref(laz);
      expect(heap.gc.collect()).toBe(0);
      expect(calls).toBe(1);
      expect(heap.isObject(laz)).toBe(true);
      expect(heap.refcount(laz)).toBe(2);
      heap.check();
      heap.decref(resurrected.pop()!);
      expect(heap.gc.collect()).toBe(1);
      expect(calls).toBe(1);
      expect(heap.isObject(laz)).toBe(false);
    });

    it('keeps everything a resurrected object reaches (test_resurrection_is_transitive)', () => {
      const kept: number[] = [];
      const Z = heap.defineType({ name: 'Z', refSlots: 1, finalizer: (o) => {
        heap.incref(o);
        kept.push(o);
      } });
      // z -> a <-> b, z -> z
      const z = heap.newObject(Z);
      const a = heap.newObject(Node);
      const b = heap.newObject(Node);
      heap.setRef(z, 0, a);
      heap.setRef(a, 0, b);
      heap.setRef(b, 0, a);
      heap.setRef(b, 1, z);
      heap.decref(a);
      heap.decref(b);
      heap.decref(z);
      expect(heap.gc.collect()).toBe(0);
      expect([z, a, b].every((o) => heap.isObject(o))).toBe(true);
      heap.check();
      heap.decref(kept.pop()!);
      expect(heap.gc.collect()).toBe(3);
    });

    it('does not let a resurrection block other garbage (test_resurrection_does_not_block_cleanup_of_other_objects)', () => {
      const N = 100;
      const zs: number[] = [];
      const Z = heap.defineType({ name: 'Z', refSlots: 1, finalizer: (o) => {
        heap.incref(o);
        zs.push(o);
      } });
      const stats = () => heap.gc.getStats()[2];
      const selfLoop = (type: ObjectType) => {
        const o = heap.newObject(type);
        heap.setRef(o, 0, o);
        heap.decref(o);
      };
      for (let i = 0; i < N; i++) selfLoop(Node);
      expect(heap.gc.collect()).toBe(N);
      expect(stats()).toEqual({ collections: 1, collected: N, uncollectable: 0 });

      selfLoop(Z);
      expect(heap.gc.collect()).toBe(0);
      expect(stats().collected).toBe(N);

      for (let i = 0; i < N; i++) selfLoop(Node);
      selfLoop(Z);
      expect(heap.gc.collect()).toBe(N);
      expect(stats().collected).toBe(2 * N);

      for (const z of zs.splice(0)) heap.decref(z);
      expect(heap.gc.collect()).toBe(2);
      expect(stats()).toEqual({ collections: 4, collected: 2 * N + 2, uncollectable: 0 });
      heap.check();
    });

    it('clears a weakref to garbage and runs its callback (test_callback_in_cycle)', () => {
      const calls: number[] = [];
      // a <-> b; wr -> a (weak); the test holds wr
      const a = heap.newObject(Node);
      const b = heap.newObject(Node);
      heap.setRef(a, 0, b);
      heap.setRef(b, 0, a);
      const wr = heap.weakref(a, (ref) => {
        calls.push(ref);
        expect(heap.weakrefGet(ref)).toBe(null);
      });
      expect(heap.weakrefGet(wr)).toBe(a);
      heap.decref(a);
      heap.decref(b);
      expect(heap.gc.collect()).toBe(2);
      expect(calls).toEqual([wr]);
      expect(heap.weakrefGet(wr)).toBe(null);
      heap.decref(wr);
      heap.check();
    });

    it('runs no callback for a weakref that is garbage itself', () => {
      const calls: number[] = [];
      // a -> wr (weak) -> a, a -> a
      const a = heap.newObject(Node);
      heap.setRef(a, 0, a);
      const wr = heap.weakref(a, (ref) => calls.push(ref));
      heap.setRef(a, 1, wr);
      heap.decref(wr);
      heap.decref(a);
      expect(heap.gc.collect()).toBe(2);
      expect(calls).toEqual([]);
      heap.check();
    });

    it('runs a weakref callback when refcounting frees the referent', () => {
      const calls: number[] = [];
      const a = heap.newObject(Node);
      const wr = heap.weakref(a, (ref) => calls.push(ref));
      heap.decref(a);
      expect(calls).toEqual([wr]);
      expect(heap.weakrefGet(wr)).toBe(null);
      heap.decref(wr);
    });

    it('does not let a collection in a weakref callback find the dying referent', () => {
      // a -> b; wr -> a (weak). decref(a) runs wr's callback, which collects, while a is
      // at refcount 0: a must already be out of the generation lists.
      const a = heap.newObject(Node);
      const b = heap.newObject(Node);
      heap.setRef(a, 0, b);
      heap.decref(b);
      let found = -1;
      const wr = heap.weakref(a, () => {
        found = heap.gc.collect();
        heap.check();
      });
      heap.decref(a);
      expect(found).toBe(0);
      expect(heap.isObject(b)).toBe(false);
      heap.decref(wr);
      heap.check();
    });

    it('puts the garbage in gc.garbage with DEBUG_SAVEALL (test_saveall)', () => {
      // a <-> b
      const a = heap.newObject(Node);
      const b = heap.newObject(Node);
      heap.setRef(a, 0, b);
      heap.setRef(b, 0, a);
      heap.decref(a);
      heap.decref(b);
      heap.gc.setDebug(heap.gc.DEBUG_SAVEALL);
      expect(heap.gc.collect()).toBe(2);
      expect(heap.gc.garbage.sort()).toEqual([a, b].sort());
      expect(heap.gc.isTracked(a)).toBe(true);
      expect(heap.refcount(a)).toBe(2);
      expect(heap.gc.collect()).toBe(0);
      heap.check();
      heap.gc.setDebug(0);
      heap.gc.clearGarbage();
      expect(heap.gc.garbage).toEqual([]);
      expect(heap.gc.collect()).toBe(2);
      heap.check();
    });

    it('keeps frozen objects out of reach of collections (test_freeze)', () => {
      const a = heap.newObject(Node);
      heap.setRef(a, 0, a);
      const b = heap.newObject(Node);
      heap.gc.freeze();
      expect(heap.gc.getFreezeCount()).toBe(2);
      expect(heap.gc.getObjects()).toEqual([]);
      expect(heap.gc.getCount()).toEqual([0, 0, 0]);
      heap.decref(a);
      expect(heap.gc.collect()).toBe(0);
      expect(heap.isObject(a)).toBe(true);
      heap.gc.unfreeze();
      expect(heap.gc.getFreezeCount()).toBe(0);
      expect(heap.gc.getObjects(2).sort()).toEqual([a, b].sort());
      expect(heap.gc.collect()).toBe(1);
      heap.decref(b);
      heap.check();
    });

    it('tracks only what can be part of a cycle (test_is_tracked)', () => {
      const Leaf = heap.defineType({ name: 'Leaf', dataBytes: 16, weakrefable: false });
      const leaf = heap.newObject(Leaf);
      const n = heap.newInt(1 << 20);
      const s = heap.newStr('spam');
      expect(heap.gc.isTracked(leaf)).toBe(false);
      expect(heap.gc.isTracked(n)).toBe(false);
      expect(heap.gc.isTracked(s)).toBe(false);
      const node = heap.newObject(Node);
      const l = heap.newList();
      expect(heap.gc.isTracked(node)).toBe(true);
      expect(heap.gc.isTracked(l)).toBe(true);
      // A tuple of atomic values is untracked by the first collection that sees it ...
      const t = heap.newTuple([n, s]);
      expect(heap.gc.isTracked(t)).toBe(true);
      heap.gc.collect();
      expect(heap.gc.isTracked(t)).toBe(false);
      // ... and tracked again once it holds something that may be.
      heap.setRef(t, 0, node);
      expect(heap.gc.isTracked(t)).toBe(true);
      heap.check();
    });

    it('lists objects, referrers and referents (test_get_referents, test_get_referrers)', () => {
      const a = heap.newObject(Node);
      const b = heap.newObject(Node);
      const n = heap.newInt(7);
      heap.setRef(a, 0, b);
      heap.setRef(a, 1, n);
      expect(heap.gc.getObjects().sort()).toEqual([a, b].sort());
      expect(heap.gc.getObjects(0).length).toBe(2);
      expect(heap.gc.getObjects(1)).toEqual([]);
      expect(heap.gc.getReferents(a)).toEqual([b, n]);
      expect(heap.gc.getReferents(n)).toEqual([]);
      expect(heap.gc.getReferrers(b)).toEqual([a]);
      expect(heap.gc.getReferrers(n, b)).toEqual([a]);
      const big = heap.newList();
      for (let i = 0; i < 20000; i++) heap.listAppend(big, n);
      expect(heap.gc.getReferents(big).length).toBe(20000);
    });

    it('counts allocations and collections as CPython does (test_get_count)', () => {
      heap.gc.collect();
      expect(heap.gc.getCount()).toEqual([0, 0, 0]);
      const a = heap.newObject(Node);
      const b = heap.newList();
      heap.newInt(1 << 30); // ints are not GC objects: not counted
      expect(heap.gc.getCount()).toEqual([2, 0, 0]);
      heap.decref(b);
      expect(heap.gc.getCount()).toEqual([1, 0, 0]);
      heap.gc.collect(0);
      expect(heap.gc.getCount()).toEqual([0, 1, 0]);
      heap.gc.collect(1);
      expect(heap.gc.getCount()).toEqual([0, 0, 1]);
      heap.decref(a);
    });

    it('prints CPython\'s DEBUG_STATS and DEBUG_COLLECTABLE lines', () => {
      let out = '';
      heap.gc.stderr = (text) => {
        out += text;
      };
      const a = heap.newObject(Node);
      heap.setRef(a, 0, a);
      heap.decref(a);
      heap.newObject(Node);
      heap.gc.setDebug(heap.gc.DEBUG_STATS | heap.gc.DEBUG_COLLECTABLE);
      expect(heap.gc.collect()).toBe(1);
      expect(out).toMatch(new RegExp(
        '^gc: collecting generation 2\\.\\.\\.\\n' +
        'gc: objects in each generation: 2 0 0\\n' +
        'gc: objects in permanent generation: 0\\n' +
        `gc: collectable <Node 0x${a.toString(16)}>\\n` +
        'gc: done, 1 unreachable, 0 uncollectable, \\d+\\.\\d{4}s elapsed\\n$',
      ));
    });

    it('calls gc.callbacks with start and stop (test_gc_callbacks)', () => {
      const events: unknown[] = [];
      heap.gc.callbacks.push((phase, info) => events.push([phase, info]));
      const a = heap.newObject(Node);
      heap.setRef(a, 0, a);
      heap.decref(a);
      heap.gc.collect(1);
      expect(events).toEqual([
        ['start', { generation: 1, collected: 0, uncollectable: 0 }],
        ['stop', { generation: 1, collected: 1, uncollectable: 0 }],
      ]);
    });

    it('reports a finalizer that throws, and completes the collection', () => {
      const reports: { error: unknown; object: number; message: string }[] = [];
      heap.unraisableHook = (info) => reports.push(info);
      const Bad = heap.defineType({ name: 'Bad', refSlots: 1, finalizer: () => {
        throw new Error('boom');
      } });
      const a = heap.newObject(Bad);
      const b = heap.newObject(Bad);
      heap.setRef(a, 0, b);
      heap.setRef(b, 0, a);
      heap.decref(a);
      heap.decref(b);
      expect(heap.gc.collect()).toBe(2);
      expect(reports.map((r) => (r.error as Error).message)).toEqual(['boom', 'boom']);
      expect(reports[0].message).toMatch(/^Exception ignored in: <finalizer of <Bad object at 0x[0-9a-f]{8}>>$/);
      expect(heap.isObject(a) || heap.isObject(b)).toBe(false);
      heap.check();
    });

    it('returns 0 from a collect() called while collecting', () => {
      let inner = -1;
      const F = heap.defineType({ name: 'F', refSlots: 1, finalizer: () => {
        inner = heap.gc.collect();
        heap.check();
      } });
      const a = heap.newObject(F);
      heap.setRef(a, 0, a);
      heap.decref(a);
      expect(heap.gc.collect()).toBe(1);
      expect(inner).toBe(0);
    });

    it('refuses bad generations and thresholds', () => {
      expect(() => heap.gc.collect(3)).toThrow(RangeError);
      expect(() => heap.gc.getObjects(-1)).toThrow(RangeError);
      expect(() => heap.gc.setThreshold(-1)).toThrow(RangeError);
      heap.gc.setThreshold(100);
      expect(heap.gc.getThreshold()).toEqual([100, 10, 10]);
      heap.gc.setThreshold(5, 6, 7);
      expect(heap.gc.getThreshold()).toEqual([5, 6, 7]);
      expect(heap.gc.isEnabled()).toBe(false);
      heap.gc.enable();
      expect(heap.gc.isEnabled()).toBe(true);
    });
  });
}
