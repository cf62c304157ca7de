import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { Heap, PRESETS, type PresetName } from '../../src/index.js';
import { buildFile } from '../../src/heap/builds.js';
import { resolveConfig } from '../../src/heap/config.js';

const BAD_GEOMETRY = 7;

interface Core {
  heapInit(alignmentShift: number, threshold: number, poolShift: number, arenaShift: number, maxPages: number): number;
  malloc(size: number): number;
  usableSize(address: number): number;
}

function core(file: string): Core {
  const module = new WebAssembly.Module(readFileSync(new URL(`../../build/${file}`, import.meta.url)));
  const env = Object.fromEntries(WebAssembly.Module.imports(module).map((i) => [i.name, () => 0]));
  return new WebAssembly.Instance(module, { env }).exports as unknown as Core;
}

describe('which module runs a heap', () => {
  it("runs each preset's release heap on the module built for its geometry", () => {
    expect(buildFile(resolveConfig({ preset: 'cpython-3.12' }))).toBe('pymalloc-cpython-3.12.release.wasm');
    expect(buildFile(resolveConfig({ preset: 'cpython-3.7' }))).toBe('pymalloc-cpython-3.7.release.wasm');
    expect(buildFile(resolveConfig({ preset: 'tuned' }))).toBe('pymalloc-tuned.release.wasm');
    // Options that repeat the preset's own values change nothing.
    expect(buildFile(resolveConfig({ preset: 'cpython-3.7', poolSize: 4096, alignment: 8 }))).toBe('pymalloc-cpython-3.7.release.wasm');
  });

  it('runs any other geometry, and every debug build, on the generic module of its policy', () => {
    expect(buildFile(resolveConfig({ poolSize: 4096 }))).toBe('pymalloc.release.wasm');
    expect(buildFile(resolveConfig({ preset: 'cpython-3.7', smallRequestThreshold: 256 }))).toBe('pymalloc.release.wasm');
    expect(buildFile(resolveConfig({ build: 'debug' }))).toBe('pymalloc.debug.wasm');
    expect(buildFile(resolveConfig({ preset: 'tuned', arenaSize: 1 << 20 }))).toBe('pymalloc-tuned-policy.release.wasm');
    expect(buildFile(resolveConfig({ preset: 'tuned', build: 'debug' }))).toBe('pymalloc-tuned-policy.debug.wasm');
  });

  it('gives every preset its policy: CPython for the CPython presets, the tuned one for tuned', () => {
    expect(resolveConfig({ preset: 'cpython-3.12' }).policy).toBe('cpython');
    expect(resolveConfig({ preset: 'cpython-3.7', poolSize: 8192 }).policy).toBe('cpython');
    expect(resolveConfig({ preset: 'tuned', poolSize: 16384 }).policy).toBe('tuned');
  });
});

describe.each(Object.keys(PRESETS) as PresetName[])('the %s release module', (preset) => {
  const { alignment, poolSize, arenaSize, smallRequestThreshold } = PRESETS[preset];
  const file = buildFile(resolveConfig({ preset }));

  it('sets up its own geometry and hands out blocks of its size classes', () => {
    const heap = core(file);
    expect(heap.heapInit(Math.log2(alignment), smallRequestThreshold, Math.log2(poolSize), Math.log2(arenaSize), 65535)).toBe(0);
    expect(heap.usableSize(heap.malloc(1))).toBe(alignment);
    expect(heap.usableSize(heap.malloc(alignment + 1))).toBe(2 * alignment);
  });

  it('refuses every other geometry: the fast paths run on constants', () => {
    const shifts = [Math.log2(alignment), smallRequestThreshold, Math.log2(poolSize), Math.log2(arenaSize)];
    const others: number[][] = [
      [shifts[0] === 3 ? 4 : 3, shifts[1], shifts[2], shifts[3]],
      [shifts[0], 256, shifts[2], shifts[3]],
      [shifts[0], shifts[1], shifts[2] + 1, shifts[3]],
      [shifts[0], shifts[1], shifts[2], shifts[3] + 1],
    ];
    for (const [a, t, p, r] of others) expect(core(file).heapInit(a, t, p, r, 65535)).toBe(BAD_GEOMETRY);
  });

  it('runs a heap of the preset through the Heap API, checked clean', async () => {
    const heap = await Heap.create({ preset });
    const blocks = Array.from({ length: 3000 }, (_, i) => heap.malloc(1 + ((i * 2654435761) >>> 0) % 600));
    for (const p of blocks.filter((_, i) => i % 2)) heap.free(p);
    heap.check();
    expect(heap.stats().sizeClasses.reduce((n, c) => n + c.blocksInUse, 0)).toBe(
      blocks.filter((_, i) => i % 2 === 0 && 1 + ((i * 2654435761) >>> 0) % 600 <= 512).length,
    );
  });
});
