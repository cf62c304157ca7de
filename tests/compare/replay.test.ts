// The replay harness, the workloads and pymalloc's arena map, on traces small enough that the
// right answers are known.

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { builtAllocators } from '../../src/tools/compare/allocators.js';
import { planComparison } from '../../src/tools/compare/compare.js';
import { UsageError } from '../../src/tools/compare/errors.js';
import { replay } from '../../src/tools/compare/replay.js';
import { resolveWorkload, SYNTHETIC_WORKLOADS, type Workload } from '../../src/tools/compare/workloads.js';
import { OP_ALLOC, OP_FIELDS, OP_FREE } from '../../src/tools/trace/format.js';
import { textWorkload } from './helpers.js';

const MiB = 1 << 20;
const built = builtAllocators();

function trace(lines: string[]): string {
  return ['# pymalloc-trace v1', ...lines].join('\n') + '\n';
}

async function collect(workload: Workload): Promise<number[]> {
  const all: number[] = [];
  for await (const chunk of workload.chunks()) all.push(...chunk);
  return all;
}

describe('replay', () => {
  it('gives every allocator the same live-byte curve', async () => {
    const workload = resolveWorkload('cpython-mix', { scale: 0.02 });
    const results = await Promise.all(built.map((name) => replay(name, workload, { samples: 50, timing: false })));
    const [first, ...rest] = results;
    expect(first.samples.op.length).toBeGreaterThan(40);
    for (const result of rest) {
      expect(result.samples.op).toEqual(first.samples.op);
      expect(result.samples.liveBytes).toEqual(first.samples.liveBytes);
      expect(result.peakLiveBytes).toBe(first.peakLiveBytes);
      expect(result.ops).toBe(first.ops);
    }
    expect(first.samples.liveBytes.at(-1)).toBe(0); // the appended frees free everything
  });

  it('measures peak live bytes exactly, and the footprint at that moment', async () => {
    // Live bytes: 100, 1100, 1000, 1500 (peak, after op 4), 500, then the frees of the end.
    const workload = textWorkload('hand', trace(['a 0 100', 'a 1 1000', 'f 0', 'a 0 500', 'f 1']));
    const result = await replay('bump', workload, { timing: false });
    expect(result.peakLiveBytes).toBe(1500);
    expect(result.peakLiveOp).toBe(4);
    expect(result.ops).toBe(6); // one free appended for id 0
    expect(result.workloadOps).toBe(5);
    expect(result.fragmentation).toBeNull(); // 1500 bytes live: too little to measure
    expect(result.fragmentationNote).toMatch(/^n\/a: peak live 1500 bytes is below 64 KiB/);
    expect(result.finalFootprintBytes).toBe(result.peakFootprintBytes); // Wasm memory never shrinks
    expect(result.peakFootprintBytes).toBeGreaterThanOrEqual(result.initialFootprintBytes);
    expect(result.nsPerOp).toBeNull();
    expect(result.timedRuns).toBe(0);
  });

  it('puts N blocks of one size class in exactly the arenas they need (pymalloc-3.12)', async () => {
    // 3.12: 16 KiB pools with a 32-byte header hold 255 blocks of 64 bytes; 64 pools an arena.
    const perArena = 255 * 64;
    const blocks = 2 * perArena + 1;
    const lines = Array.from({ length: blocks }, (_, id) => `a ${id} 64`);
    const result = await replay('pymalloc-3.12', textWorkload('one-class', trace(lines)), { timing: false });
    const map = result.arenaMap!;
    expect(map.arenasAttached).toBe(3);
    const states = map.arenas.map((arena) => arena.pools.map((p) => p.state));
    expect(states[0].every((s) => s === 'full')).toBe(true);
    expect(states[1].every((s) => s === 'full')).toBe(true);
    expect(states[2][0]).toBe('used');
    expect(states[2].slice(1).every((s) => s === 'never-used')).toBe(true);
    expect(map.arenas[2].pools[0]).toMatchObject({ blockSize: 64, blocksInUse: 1, capacity: 255 });
    expect(result.peakLiveBytes).toBe(blocks * 64);
    expect(result.peakFootprintBytes).toBeGreaterThanOrEqual(3 * MiB);
    expect(result.peakFootprintBytes).toBeLessThan(5 * MiB);
  });

  it('shows one live block pinning a whole arena', async () => {
    // Two arenas of 64-byte blocks, then every block freed but the last of the first arena.
    const perArena = 255 * 64;
    const lines = Array.from({ length: 2 * perArena }, (_, id) => `a ${id} 64`);
    for (let id = 0; id < 2 * perArena; id++) if (id !== perArena - 1) lines.push(`f ${id}`);
    const result = await replay('pymalloc-3.12', textWorkload('pinned', trace(lines)), { timing: false });
    // The second arena, wholly free, is released (another arena follows it in usable_arenas);
    // the first stays for the sake of one 64-byte block.
    const [arena, ...others] = result.arenaMap!.arenas;
    expect(others).toEqual([]);
    expect(arena.pools.reduce((n, p) => n + p.blocksInUse, 0)).toBe(1);
    expect(arena.pools.filter((p) => p.state === 'used')).toHaveLength(1);
    expect(arena.pools.filter((p) => p.state === 'empty')).toHaveLength(63);
  });

  it('gives a failure row naming the op, the live bytes and the reason when an allocation fails', async () => {
    const workload = textWorkload('too-big', trace(['a 0 16', 'a 1 4294901000']));
    for (const name of built.filter((n) => n !== 'tlsf')) {
      const result = await replay(name, workload, { timing: false });
      expect(result.failure, name).toMatchObject({ pass: 'footprint', op: 1, liveBytes: 16, reason: 'address-space' });
      expect(result.failure!.message).toContain(`${name}: op 1 failed: alloc of 4294901000 bytes for id 1`);
      expect(result.ops).toBe(1);
      expect(result.nsPerOp).toBeNull();
    }
  });

  it('reports a trap inside the allocator as its failure, not a crash', async () => {
    // TLSF aborts (unreachable) on a request above its 1 GiB block limit.
    const result = await replay('tlsf', textWorkload('trap', trace(['a 0 8', 'a 1 1500000000'])));
    expect(result.failure).toMatchObject({ pass: 'footprint', op: 1, liveBytes: 8, reason: 'trap' });
    expect(result.failure!.message).toMatch(/the module trapped \(.*unreachable/);
    expect(result.timedRuns).toBe(0);
  });
});

describe('workloads', () => {
  it('are reproducible from their seed and recycle ids', async () => {
    for (const name of SYNTHETIC_WORKLOADS) {
      const a = await collect(resolveWorkload(name, { scale: 0.01, seed: 7 }));
      const b = await collect(resolveWorkload(name, { scale: 0.01, seed: 7 }));
      const c = await collect(resolveWorkload(name, { scale: 0.01, seed: 8 }));
      expect(a, name).toEqual(b);
      expect(a, name).not.toEqual(c);
      const shape = await resolveWorkload(name, { scale: 0.01, seed: 7 }).shape();
      expect(shape.ops * OP_FIELDS).toBe(a.length);
      let live = 0;
      let peak = 0;
      for (let i = 0; i < a.length; i += OP_FIELDS) {
        if (a[i] === OP_ALLOC) live++;
        if (a[i] === OP_FREE) live--;
        peak = Math.max(peak, live);
      }
      expect(shape.idLimit, name).toBe(peak);
      expect(shape.liveAtEnd, name).toBe(live);
    }
  });

  it('refuse unknown names, listing the valid ones', () => {
    expect(() => resolveWorkload('rampp')).toThrow(UsageError);
    expect(() => resolveWorkload('rampp')).toThrow(
      /ramp, peak, plateau, uniform, cpython-mix, lifo, interleaved, trace:python-json, trace:py-ast, trace:perl-hash, trace:sqlite, trace:jq-group, trace:git-log, trace:cc1, trace:<path>/,
    );
  });

  it('find a shipped trace by its name, and a file of that name first', async () => {
    const shipped = resolveWorkload('trace:sqlite');
    expect(shipped.description).toBe('the shipped trace sqlite (traces/README.md)');
    expect((await shipped.shape()).ops).toBe(344002);
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'shipped-'));
    const cwd = process.cwd();
    try {
      process.chdir(dir);
      await writeFile('sqlite', '# pymalloc-trace v1\na 0 8\nf 0\n');
      const local = resolveWorkload('trace:sqlite');
      expect(local.description).toBe('the trace sqlite');
      expect((await local.shape()).ops).toBe(2);
    } finally {
      process.chdir(cwd);
    }
    expect(() => planComparison({ workloads: ['ramp'], allocators: ['jemalloc'] })).toThrow(/unknown allocator "jemalloc": valid names are pymalloc-3.12, pymalloc-3.7, pymalloc-tuned, tlsf, bump, dlmalloc, mimalloc/);
  });

  it('reports allocators that are not built and runs the others', async () => {
    const { mkdtemp, copyFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'peers-'));
    await copyFile(new URL('../../build/peers/tlsf.wasm', import.meta.url), join(dir, 'tlsf.wasm'));
    const plan = planComparison({ workloads: ['ramp'], allocators: ['tlsf', 'dlmalloc'], wasmDir: dir });
    expect(plan.allocators).toEqual(['tlsf']);
    expect(plan.skipped).toEqual([
      {
        allocator: 'dlmalloc',
        reason: 'not built: run `pymalloc peers --build` (it needs clang, lld, wasi-libc, libclang-rt-dev-wasm32: apt-get install clang lld wasi-libc libclang-rt-dev-wasm32)',
      },
    ]);
  });
});
