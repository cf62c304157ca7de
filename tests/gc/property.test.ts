// Random object graphs, partly released, then collected: what survives is exactly what the
// test's own references reach, and every refcount is exactly the references to the object.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { Heap } from '../../src/index.js';

type Shape = 'node' | 'list' | 'tuple' | 'int';

interface Graph {
  shapes: Shape[];
  /** [from, to] pairs: a reference from object `from` (a container) to object `to`. */
  edges: [number, number][];
  /** Whether the test keeps its own reference to each object. */
  held: boolean[];
}

const SLOTS = 3;

const graphs = fc
  .integer({ min: 1, max: 24 })
  .chain((n) =>
    fc.record({
      shapes: fc.array(fc.constantFrom<Shape>('node', 'node', 'list', 'tuple', 'int'), { minLength: n, maxLength: n }),
      edges: fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1)), { maxLength: 3 * n }),
      held: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
    }),
  );

async function run(heap: Heap, graph: Graph): Promise<void> {
  const Node = heap.defineType({ name: 'Node', refSlots: SLOTS });
  heap.gc.disable();
  const { shapes, held } = graph;
  const n = shapes.length;
  // Tuples have a fixed length: give each one slot per edge it will hold.
  const out: number[][] = shapes.map(() => []);
  for (const [from, to] of graph.edges) {
    if (shapes[from] === 'int') continue;
    if (shapes[from] === 'node' && out[from].length === SLOTS) continue;
    out[from].push(to);
  }
  const objects = shapes.map((shape, i) =>
    shape === 'node' ? heap.newObject(Node)
      : shape === 'list' ? heap.newList()
        : shape === 'tuple' ? heap.newTuple(out[i].length)
          : heap.newInt(1_000_000 + i),
  );
  out.forEach((targets, i) => targets.forEach((t, slot) => {
    if (shapes[i] === 'list') heap.listAppend(objects[i], objects[t]);
    else heap.setRef(objects[i], slot, objects[t]);
  }));
  heap.check();

  // Reachable from what the test holds.
  const reachable = new Set<number>();
  const stack = [...held.keys()].filter((i) => held[i]);
  while (stack.length) {
    const i = stack.pop()!;
    if (reachable.has(i)) continue;
    reachable.add(i);
    stack.push(...out[i]);
  }
  // What refcounting alone frees once the test lets go: nothing refers to it any more.
  const incoming = new Array<number>(n).fill(0);
  out.forEach((targets) => targets.forEach((t) => incoming[t]++));
  const freed = new Set<number>();
  const queue = [...incoming.keys()].filter((i) => !held[i] && incoming[i] === 0);
  while (queue.length) {
    const i = queue.pop()!;
    freed.add(i);
    for (const t of out[i]) if (--incoming[t] === 0 && !held[t]) queue.push(t);
  }

  for (let i = 0; i < n; i++) if (!held[i]) heap.decref(objects[i]);
  // The collector counts what it found: garbage in cycles, ints (never tracked) aside.
  const cyclicGarbage = shapes.filter((shape, i) => shape !== 'int' && !reachable.has(i) && !freed.has(i)).length;
  expect(heap.gc.collect()).toBe(cyclicGarbage);
  heap.check();

  for (let i = 0; i < n; i++) {
    expect(heap.isObject(objects[i])).toBe(reachable.has(i));
    if (!reachable.has(i)) continue;
    const references = out.reduce((sum, targets, from) =>
      sum + (reachable.has(from) ? targets.filter((t) => t === i).length : 0), 0);
    expect(heap.refcount(objects[i])).toBe(references + (held[i] ? 1 : 0));
  }
  const survivors = new Set([...reachable].map((i) => objects[i]));
  expect(heap.gc.getObjects().every((o) => survivors.has(o))).toBe(true);
}

describe('random graphs', () => {
  it('survivors are exactly the reachable objects, refcounts exact (release)', async () => {
    await fc.assert(fc.asyncProperty(graphs, async (graph) => run(await Heap.create(), graph)), { numRuns: 200 });
  });

  it('survivors are exactly the reachable objects, refcounts exact (debug)', async () => {
    await fc.assert(fc.asyncProperty(graphs, async (graph) => run(await Heap.create({ build: 'debug' }), graph)), { numRuns: 50 });
  });
});
