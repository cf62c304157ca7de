import { describe, it, expect, beforeEach } from 'vitest';
import {
  Heap, InvalidAddressError, OutOfMemoryError, HeapDisposedError, type InvalidAddressReason,
} from '../../src/index.js';

/** Live blocks of every kind, each filled with its own byte, that bad calls must not disturb. */
class Witnesses {
  blocks: { address: number; size: number; fill: number }[] = [];
  constructor(readonly heap: Heap) {
    for (const [i, size] of [1, 24, 48, 100, 512, 513, 4000, 70000].entries()) this.add(size, i + 1);
  }
  add(size: number, fill: number): number {
    const address = this.heap.malloc(size);
    this.heap.bytes(address, size).fill(fill);
    this.blocks.push({ address, size, fill });
    return address;
  }
  /** The heap is valid and every witness holds its bytes. */
  intact(): void {
    this.heap.check();
    for (const { address, size, fill } of this.blocks) {
      expect(this.heap.read(address, size).every((b) => b === fill)).toBe(true);
    }
  }
}

function invalid(call: () => unknown, reason: InvalidAddressReason): void {
  let caught: unknown;
  try {
    call();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(InvalidAddressError);
  expect((caught as InvalidAddressError).reason).toBe(reason);
}

describe.each(['release', 'debug'] as const)('bad input (%s build)', (build) => {
  let heap: Heap;
  let witnesses: Witnesses;
  beforeEach(async () => {
    heap = await Heap.create({ preset: 'cpython-3.7', build });
    witnesses = new Witnesses(heap);
  });

  it.each([-1, 0.5, NaN, Infinity, 2 ** 32, -0.0001])('rejects the size %s with a RangeError', (size) => {
    expect(() => heap.malloc(size)).toThrow(RangeError);
    expect(() => heap.malloc(size)).toThrow(/size must be an integer in \[0, 2\^32\)/);
    expect(() => heap.calloc(1, size)).toThrow(RangeError);
    expect(() => heap.realloc(0, size)).toThrow(RangeError);
    expect(() => heap.mallocMany([8, size])).toThrow(/sizes\[1\] must be an integer/);
    witnesses.intact();
  });

  it('rejects sizes and addresses that are not numbers with a TypeError', () => {
    expect(() => heap.malloc('8' as unknown as number)).toThrow(TypeError);
    expect(() => heap.free(null as unknown as number)).toThrow(TypeError);
    expect(() => heap.free(-8)).toThrow(RangeError);
    witnesses.intact();
  });

  it('treats free(0) as a no-op, as C does', () => {
    heap.free(0);
    witnesses.intact();
  });

  it('rejects addresses outside any arena or raw block', () => {
    invalid(() => heap.free(16), 'not-allocated');
    invalid(() => heap.free(0xfffffff0), 'not-allocated');
    const raw = witnesses.blocks.find((b) => b.size === 4000)!.address;
    invalid(() => heap.free(raw + 16), 'not-allocated');
    invalid(() => heap.free(raw + 3), 'not-allocated');
    invalid(() => heap.usableSize(raw + 32), 'not-allocated');
    invalid(() => heap.realloc(raw + 32, 10), 'not-allocated');
    witnesses.intact();
  });

  it('rejects an address inside a pool that is not at a block boundary', () => {
    const p = witnesses.add(48, 77);
    witnesses.add(48, 78);
    invalid(() => heap.free(p + 8), 'misaligned');
    invalid(() => heap.free(p + 47), 'misaligned');
    invalid(() => heap.realloc(p + 16, 8), 'misaligned');
    witnesses.intact();
  });

  it('rejects blocks a pool never handed out, and pools never carved', () => {
    const p = heap.malloc(200);
    const pool = p - (p % 4096);
    invalid(() => heap.free(pool + 32 + 200 * 5), 'never-allocated');
    invalid(() => heap.free(pool + 16), 'never-allocated');
    let arena = pool;
    while (heap.owns(arena - 4096)) arena -= 4096;
    const lastPool = arena + 4096 * 63;
    expect(heap.owns(lastPool + 32)).toBe(true);
    invalid(() => heap.free(lastPool + 32), 'never-allocated');
    heap.free(p);
    witnesses.intact();
  });

  it('rejects a block of a pool that has become empty', () => {
    const p = heap.malloc(352);
    heap.free(p);
    invalid(() => heap.free(p), 'empty-pool');
    witnesses.intact();
  });

  it('detects freeing the block just freed, and a raw block twice', () => {
    const a = witnesses.add(64, 90);
    const b = heap.malloc(64);
    heap.free(b);
    invalid(() => heap.free(b), 'double-free');
    invalid(() => heap.usableSize(b), 'double-free');
    const raw = heap.malloc(2000);
    heap.free(raw);
    invalid(() => heap.free(raw), 'double-free');
    invalid(() => heap.realloc(raw, 3000), 'double-free');
    expect(heap.usableSize(a)).toBe(64);
    witnesses.intact();
  });

  it('keeps every block and the heap usable when maxMemory is reached', async () => {
    const small = await Heap.create({ preset: 'cpython-3.7', build, maxMemory: 4 * 1024 * 1024 });
    const mine = new Witnesses(small);
    const big: number[] = [];
    expect(() => {
      for (;;) big.push(small.malloc(256 * 1024));
    }).toThrow(OutOfMemoryError);
    mine.intact();
    expect(() => small.malloc(2 ** 32 - 1)).toThrow(OutOfMemoryError);
    expect(() => small.calloc(2 ** 20, 2 ** 20)).toThrow(OutOfMemoryError);
    // mallocMany is all or nothing.
    small.free(big.pop()!);
    const before = small.stats();
    expect(() => small.mallocMany([100, 200, 3 * 1024 * 1024])).toThrow(/mallocMany\[2\]/);
    expect(small.stats().sizeClasses).toEqual(before.sizeClasses);
    expect(small.stats().raw).toEqual(before.raw);
    const tiny: number[] = [];
    expect(() => {
      for (;;) tiny.push(small.malloc(512));
    }).toThrow(/out of memory for 512 bytes/);
    mine.intact();
    // realloc that cannot grow leaves the block where it was, with its bytes.
    const keep = mine.blocks.find((b) => b.size === 4000)!;
    expect(() => small.realloc(keep.address, 3 * 1024 * 1024)).toThrow(OutOfMemoryError);
    mine.intact();
    // Freeing makes room again.
    small.freeMany(big);
    small.freeMany(tiny);
    mine.intact();
    expect(small.usableSize(small.malloc(256 * 1024))).toBeGreaterThanOrEqual(256 * 1024);
    small.check();
  });

  it('names the failing index in freeMany and frees those before it', () => {
    const a = heap.malloc(10), b = heap.malloc(10);
    let caught: unknown;
    try {
      heap.freeMany([a, 12345, b]);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidAddressError);
    expect((caught as Error).message).toMatch(/^freeMany\[1\]\(0x00003039\)/);
    invalid(() => heap.free(a), 'double-free');
    heap.free(b);
    witnesses.intact();
  });

  it('survives thousands of random addresses: each refused, none trapping, the heap intact', () => {
    const live = new Set(witnesses.blocks.map((b) => b.address));
    for (let i = 0; i < 2000; i++) live.add(heap.malloc(1 + ((i * 7919) % 3000)));
    const end = heap.memory.buffer.byteLength;
    let x = 0x9e3779b9;
    for (let i = 0; i < 20000; i++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      // Half anywhere in memory, half near live blocks, where a mistake would hurt.
      const near = [...live][(x >>> 0) % live.size] + ((x >>> 20) % 64) - 32;
      const address = (i & 1 ? (x >>> 0) % end : near) >>> 0;
      if (live.has(address) || address === 0) continue;
      expect(() => heap.free(address)).toThrow(InvalidAddressError);
    }
    witnesses.intact();
  });

  it('refuses every call after dispose()', () => {
    heap.dispose();
    expect(() => heap.malloc(8)).toThrow(HeapDisposedError);
    expect(() => heap.stats()).toThrow(HeapDisposedError);
  });
});

describe('the debug build', () => {
  it('detects every double free, not only of the last block freed', async () => {
    const heap = await Heap.create({ build: 'debug' });
    const witnesses = new Witnesses(heap);
    const [a, b] = [heap.malloc(32), heap.malloc(32)];
    heap.malloc(32);
    heap.free(a);
    heap.free(b);
    invalid(() => heap.free(a), 'double-free');
    witnesses.intact();
  });
});

describe('options', () => {
  it.each([
    [{ preset: 'cpython-2.7' }, RangeError, /options.preset must be one of 'cpython-3.7', 'cpython-3.12'/],
    [{ alignment: 4 }, RangeError, /options.alignment must be 8 or 16/],
    [{ poolSize: 3000 }, RangeError, /options.poolSize must be a power of two/],
    [{ poolSize: 2048 }, RangeError, /options.poolSize/],
    [{ poolSize: 2 ** 21 }, RangeError, /options.poolSize .* to options.arenaSize/],
    [{ arenaSize: 32768 }, RangeError, /options.arenaSize must be a power of two from 65536/],
    [{ arenaSize: 3 * 65536 }, RangeError, /options.arenaSize/],
    [{ smallRequestThreshold: 1024 }, RangeError, /options.smallRequestThreshold must be a multiple of options.alignment/],
    [{ alignment: 16, smallRequestThreshold: 24 }, RangeError, /options.smallRequestThreshold/],
    [{ maxMemory: 1000 }, RangeError, /options.maxMemory must be an integer/],
    [{ maxMemory: 65536 }, RangeError, /options.maxMemory \(65536\) is too small/],
    [{ build: 'fast' }, RangeError, /options.build must be 'release' or 'debug'/],
    [{ arenaSzie: 65536 }, TypeError, /unknown option 'arenaSzie'/],
  ])('rejects %o', async (options, type, message) => {
    await expect(Heap.create(options as never)).rejects.toThrow(type);
    await expect(Heap.create(options as never)).rejects.toThrow(message);
  });

  it('accepts an explicit geometry over a preset', async () => {
    const heap = await Heap.create({ preset: 'cpython-3.7', alignment: 16, poolSize: 8192, arenaSize: 131072, smallRequestThreshold: 256 });
    expect(heap.config).toMatchObject({ alignment: 16, poolSize: 8192, arenaSize: 131072, numClasses: 16, poolsPerArena: 16 });
    expect(heap.owns(heap.malloc(256))).toBe(true);
    expect(heap.owns(heap.malloc(257))).toBe(false);
    heap.check();
  });
});
