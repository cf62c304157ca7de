import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { Heap } from '../../src/index.js';

/** One step of a random program against the heap. `pick` chooses a live block by index. */
type Op =
  | { kind: 'malloc'; size: number }
  | { kind: 'calloc'; count: number; size: number }
  | { kind: 'realloc'; pick: number; size: number }
  | { kind: 'free'; pick: number };

const size = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 520 }) },
  { weight: 2, arbitrary: fc.integer({ min: 513, max: 6000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 300_000 }) },
);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: size.map((n) => ({ kind: 'malloc' as const, size: n })) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('calloc' as const), count: fc.integer({ min: 0, max: 24 }), size: fc.integer({ min: 0, max: 48 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('realloc' as const), pick: fc.nat(), size }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }) },
);

interface Live {
  address: number;
  size: number;
  fill: number;
}

/** Checks every property the model promises, after every step. */
function verify(heap: Heap, live: Live[]): void {
  heap.check();
  const { alignment } = heap.config;
  const memory = new Uint8Array(heap.memory.buffer);
  const perClass = new Array(heap.config.numClasses).fill(0);
  let raw = 0;
  const spans: [number, number][] = [];
  for (const block of live) {
    const usable = heap.usableSize(block.address);
    expect(usable).toBeGreaterThanOrEqual(Math.max(block.size, 1));
    if (heap.owns(block.address)) {
      expect(block.address % alignment).toBe(0);
      perClass[usable / alignment - 1]++;
    } else {
      expect(block.address % 16).toBe(0);
      raw++;
    }
    spans.push([block.address, block.address + usable]);
    const step = Math.max(1, block.size >> 4);
    for (let i = 0; i < block.size; i += step) {
      if (memory[block.address + i] !== block.fill) {
        expect.fail(`block ${block.address} byte ${i}: ${memory[block.address + i]} != ${block.fill}`);
      }
    }
    if (block.size) expect(memory[block.address + block.size - 1]).toBe(block.fill);
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) expect(spans[i - 1][1]).toBeLessThanOrEqual(spans[i][0]);
  const stats = heap.stats();
  expect(stats.raw.blocks).toBe(raw);
  expect(stats.sizeClasses.map((c) => c.blocksInUse)).toEqual(perClass);
  const arenaBytes = stats.arenas.current * heap.config.arenaSize;
  const { inAllocatedBlocks, inAvailableBlocks, unusedPools, poolHeaders, quantization, arenaAlignment } = stats.bytes;
  expect(inAllocatedBlocks + inAvailableBlocks + unusedPools + poolHeaders + quantization + arenaAlignment).toBe(arenaBytes);
}

/** Runs the program; check() after every step, the whole model every `verifyEvery` steps. */
function run(heap: Heap, ops: Op[], verifyEvery = 1): void {
  const live: Live[] = [];
  let fill = 1;
  const nextFill = () => (fill = (fill % 255) + 1);
  for (const [index, step] of ops.entries()) {
    switch (step.kind) {
      case 'malloc': {
        const address = heap.malloc(step.size);
        const block = { address, size: step.size, fill: nextFill() };
        heap.bytes(address, step.size).fill(block.fill);
        live.push(block);
        break;
      }
      case 'calloc': {
        const bytes = step.count * step.size;
        const address = heap.calloc(step.count, step.size);
        expect(heap.read(address, bytes).every((b) => b === 0)).toBe(true);
        const block = { address, size: bytes, fill: nextFill() };
        heap.bytes(address, bytes).fill(block.fill);
        live.push(block);
        break;
      }
      case 'realloc': {
        if (!live.length) break;
        const block = live[step.pick % live.length];
        block.address = heap.realloc(block.address, step.size);
        const kept = Math.min(block.size, step.size);
        expect(heap.read(block.address, kept).every((b) => b === block.fill)).toBe(true);
        block.size = step.size;
        block.fill = nextFill();
        heap.bytes(block.address, block.size).fill(block.fill);
        break;
      }
      case 'free': {
        if (!live.length) break;
        const [block] = live.splice(step.pick % live.length, 1);
        heap.free(block.address);
        break;
      }
    }
    if (index % verifyEvery === 0) verify(heap, live);
    else heap.check();
  }
  verify(heap, live);
  for (const block of live) heap.free(block.address);
  verify(heap, []);
}

describe.each([
  ['cpython-3.12', 'release'],
  ['cpython-3.12', 'debug'],
  ['cpython-3.7', 'release'],
  ['cpython-3.7', 'debug'],
] as const)('random programs on %s (%s build)', (preset, build) => {
  it('keep every live block aligned, apart, intact, and counted', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 150 }), async (ops) => {
        const heap = await Heap.create({ preset, build });
        run(heap, ops);
      }),
      { numRuns: 40 },
    );
  });
});

it('a long random program on a small explicit geometry stays consistent', async () => {
  const heap = await Heap.create({ alignment: 8, poolSize: 4096, arenaSize: 65536, smallRequestThreshold: 256 });
  const ops = fc.sample(op, { numRuns: 3000, seed: 42 });
  run(heap, ops, 50);
});
