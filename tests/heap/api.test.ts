import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Heap } from '../../src/index.js';

describe('calloc', () => {
  it('zeroes a reused dirty block', async () => {
    const heap = await Heap.create();
    const p = heap.malloc(96);
    heap.bytes(p).fill(0xff);
    heap.free(p);
    const q = heap.calloc(12, 8);
    expect(q).toBe(p);
    expect(heap.read(q, 96).every((b) => b === 0)).toBe(true);
    const raw = heap.malloc(5000);
    heap.bytes(raw).fill(0xee);
    heap.free(raw);
    const zeroed = heap.calloc(1000, 5);
    expect(heap.read(zeroed, 5000).every((b) => b === 0)).toBe(true);
    heap.check();
  });
});

describe('realloc follows CPython', () => {
  it('keeps a small block in place unless it would shrink by 25% or more', async () => {
    const heap = await Heap.create({ preset: 'cpython-3.7' });
    const p = heap.malloc(100); // class 104
    heap.write(p, [1, 2, 3, 4]);
    expect(heap.realloc(p, 104)).toBe(p);
    expect(heap.realloc(p, 79)).toBe(p); // 4 * 79 > 3 * 104
    const moved = heap.realloc(p, 78); // 4 * 78 == 3 * 104: moves to class 80
    expect(moved).not.toBe(p);
    expect(heap.usableSize(moved)).toBe(80);
    expect([...heap.read(moved, 4)]).toEqual([1, 2, 3, 4]);
    const grown = heap.realloc(moved, 105);
    expect(heap.usableSize(grown)).toBe(112);
    expect([...heap.read(grown, 4)]).toEqual([1, 2, 3, 4]);
    heap.check();
  });

  it('moves small blocks to the raw allocator and keeps raw blocks there', async () => {
    const heap = await Heap.create();
    const p = heap.malloc(500);
    heap.bytes(p, 500).fill(9);
    const raw = heap.realloc(p, 5000);
    expect(heap.owns(raw)).toBe(false);
    expect(heap.read(raw, 500).every((b) => b === 9)).toBe(true);
    expect(heap.stats().raw.blocks).toBe(1);
    // CPython lets the raw allocator keep a raw block, however small it becomes.
    const shrunk = heap.realloc(raw, 10);
    expect(heap.owns(shrunk)).toBe(false);
    expect(heap.read(shrunk, 10).every((b) => b === 9)).toBe(true);
    // A small block realloc'd to 0 bytes goes to the raw allocator, as malloc(0) does.
    const zero = heap.realloc(heap.malloc(8), 0);
    expect(heap.owns(zero)).toBe(false);
    expect(heap.realloc(0, 40)).toBeGreaterThan(0);
    heap.check();
  });

  it('grows a raw block in place when the memory after it is free', async () => {
    const heap = await Heap.create();
    const p = heap.malloc(10000);
    heap.bytes(p, 10000).fill(3);
    expect(heap.realloc(p, 50000)).toBe(p);
    expect(heap.usableSize(p)).toBeGreaterThanOrEqual(50000);
    expect(heap.read(p, 10000).every((b) => b === 3)).toBe(true);
    expect(heap.realloc(p, 2000)).toBe(p);
    expect(heap.usableSize(p)).toBeLessThan(2100);
    heap.check();
  });
});

describe('batches', () => {
  it('allocate and free more requests than one IO buffer holds', async () => {
    const heap = await Heap.create();
    const sizes = Uint32Array.from({ length: 40000 }, (_, i) => 1 + ((i * 37) % 700));
    const addresses = heap.mallocMany(sizes);
    expect(addresses).toHaveLength(40000);
    expect(new Set(addresses).size).toBe(40000);
    for (let i = 0; i < 40000; i += 997) expect(heap.usableSize(addresses[i])).toBeGreaterThanOrEqual(sizes[i]);
    const stats = heap.stats();
    const small = sizes.filter((n) => n <= 512).length;
    expect(stats.sizeClasses.reduce((n, c) => n + c.blocksInUse, 0)).toBe(small);
    expect(stats.raw.blocks).toBe(40000 - small);
    heap.check();
    heap.freeMany(addresses);
    expect(heap.stats().raw.blocks).toBe(0);
    expect(heap.stats().sizeClasses.every((c) => c.blocksInUse === 0)).toBe(true);
    heap.check();
  });

  it('fills a caller-supplied array and accepts plain arrays', async () => {
    const heap = await Heap.create();
    const out = new Uint32Array(4);
    expect(heap.mallocMany([1, 2, 3], out)).toBe(out);
    expect(out[3]).toBe(0);
    expect(() => heap.mallocMany([1, 2, 3], new Uint32Array(2))).toThrow(RangeError);
    heap.freeMany([...out.subarray(0, 3)]);
    heap.check();
  });
});

describe('views and copies', () => {
  it('hands out live views that see writes, and copies that do not', async () => {
    const heap = await Heap.create();
    const p = heap.malloc(16);
    const view = heap.bytes(p);
    const copy = heap.read(p);
    view[0] = 42;
    expect(heap.read(p, 1)[0]).toBe(42);
    expect(copy[0]).not.toBe(42);
    expect(() => heap.bytes(p, 17)).toThrow(/length must be an integer from 0 to the block's 16 bytes/);
  });

  it('gives fresh views after memory grows', async () => {
    const heap = await Heap.create();
    const p = heap.malloc(64);
    const before = heap.bytes(p);
    const pages = heap.stats().memory.wasmPages;
    heap.malloc(8 * 1024 * 1024);
    expect(heap.stats().memory.wasmPages).toBeGreaterThan(pages);
    expect(before.length).toBe(0); // detached by memory.grow
    heap.write(p, [5, 6, 7]);
    expect([...heap.read(p, 3)]).toEqual([5, 6, 7]);
  });
});

describe('memory accounting', () => {
  it('says what is committed, in use and released', async () => {
    const heap = await Heap.create();
    const base = heap.stats().memory;
    expect(base.committedBytes).toBe(base.wasmPages * 65536);
    expect(base.committedBytes).toBe(heap.memory.buffer.byteLength);
    const p = heap.malloc(3 * 1024 * 1024);
    const grown = heap.stats().memory;
    expect(grown.inUseBytes).toBeGreaterThanOrEqual(3 * 1024 * 1024);
    heap.free(p);
    const after = heap.stats().memory;
    expect(after.committedBytes).toBe(grown.committedBytes); // wasm memory never shrinks
    expect(after.peakCommittedBytes).toBe(grown.committedBytes);
    expect(after.releasedBytes).toBeGreaterThanOrEqual(3 * 1024 * 1024);
    expect(after.inUseBytes + after.releasedBytes + after.baseBytes).toBe(after.committedBytes);
  });
});

describe('memory grown by someone else', () => {
  it('becomes a region of its own, and the heap never hands out the foreign pages', async () => {
    const heap = await Heap.create();
    const before = heap.malloc(1000);
    heap.write(before, [1, 2, 3]);
    const foreign = heap.memory.grow(2) * 65536;
    new Uint8Array(heap.memory.buffer, foreign, 2 * 65536).fill(0xab);
    const big = heap.malloc(3 * 1024 * 1024);
    expect(big >= foreign + 2 * 65536).toBe(true);
    heap.check();
    for (let i = 0; i < 100; i++) heap.malloc(40_000);
    heap.check();
    expect(new Uint8Array(heap.memory.buffer, foreign, 2 * 65536).every((b) => b === 0xab)).toBe(true);
    invalid(() => heap.free(foreign + 16));
    heap.free(big);
    expect([...heap.read(before, 3)]).toEqual([1, 2, 3]);
    heap.check();
  });
});

function invalid(call: () => void): void {
  expect(call).toThrow(/not in any arena and does not start a raw block/);
}

describe('the package', () => {
  it('is importable by name from plain Node after the build', () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const script = `
      import { Heap } from 'pymalloc-wasm';
      const heap = await Heap.create({ preset: 'cpython-3.7' });
      const p = heap.malloc(36);
      console.log(heap.usableSize(p), heap.owns(p));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
    expect(out.trim()).toBe('40 true');
  });
});
