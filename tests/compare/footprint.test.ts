// The footprint a comparison reports is the allocator's alone. Checked against a reference replay
// written here from scratch: the allocator's module instantiated with its own WASI stubs,
// nothing else in its memory, one call per op, the id table in a Map; its peak footprint is the
// module's memory at the end (Wasm memory never shrinks). The tool must find the same peak
// footprint and the same fragmentation, for every allocator built, on a real trace, a synthetic
// workload and a trace of large blocks; and the harness's own memory must not move the figures.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

import { builtAllocators } from '../../src/tools/compare/allocators.js';
import { compare } from '../../src/tools/compare/compare.js';
import { replay } from '../../src/tools/compare/replay.js';
import { resolveWorkload, type Workload } from '../../src/tools/compare/workloads.js';
import { OP_ALLOC, OP_FIELDS, OP_FREE } from '../../src/tools/trace/format.js';
import { textWorkload } from './helpers.js';

const WASM_PAGE = 65536;
const MiB = 1 << 20;
const built = builtAllocators();

interface Reference {
  peakFootprintBytes: number;
  peakLiveBytes: number;
  /** Ops after which memory had grown. */
  grows: number;
}

interface PeerExports {
  memory: WebAssembly.Memory;
  peer_malloc(size: number): number;
  peer_free(address: number): void;
  peer_realloc(address: number, size: number): number;
}

/** The fewest WASI functions that let the C peers start: no arguments, no environment, no output. */
function wasiStubs(memory: () => WebAssembly.Memory): Record<string, (...args: number[]) => number> {
  const zeroPair = (a: number, b: number) => {
    new DataView(memory().buffer).setUint32(a, 0, true);
    new DataView(memory().buffer).setUint32(b, 0, true);
    return 0;
  };
  return {
    args_sizes_get: zeroPair,
    environ_sizes_get: zeroPair,
    args_get: () => 0,
    environ_get: () => 0,
    clock_time_get: (_clock, _precision, at) => (new DataView(memory().buffer).setBigUint64(at, 0n, true), 0),
    random_get: () => 0,
    fd_write: (_fd, iovecs, count, writtenAt) => {
      const view = new DataView(memory().buffer);
      let total = 0;
      for (let i = 0; i < count; i++) total += view.getUint32(iovecs + 8 * i + 4, true);
      view.setUint32(writtenAt, total, true);
      return 0;
    },
    fd_close: () => 8,
    fd_fdstat_get: () => 8,
    fd_seek: () => 70,
    sched_yield: () => 0,
    proc_exit: () => {
      throw new Error('proc_exit');
    },
  };
}

/** The reference: one call per op on a fresh instance, peak live bytes counted here. */
async function referenceReplay(allocator: string, workload: Workload): Promise<Reference> {
  const bytes = readFileSync(fileURLToPath(new URL(`../../build/peers/${allocator}.wasm`, import.meta.url)));
  let peer: PeerExports | undefined;
  const module = await WebAssembly.compile(bytes);
  const imports: WebAssembly.Imports = WebAssembly.Module.imports(module).length === 0 ? {} : { wasi_snapshot_preview1: wasiStubs(() => peer!.memory) };
  peer = (await WebAssembly.instantiate(module, imports)).exports as unknown as PeerExports;
  const addresses = new Map<number, number>();
  const sizes = new Map<number, number>();
  let live = 0;
  let peakLiveBytes = 0;
  let peakFootprintBytes = peer.memory.buffer.byteLength;
  let grows = 0;
  for await (const chunk of workload.chunks()) {
    for (let i = 0; i < chunk.length; i += OP_FIELDS) {
      const [kind, id, size] = chunk.subarray(i, i + OP_FIELDS);
      if (kind === OP_FREE) {
        peer.peer_free(addresses.get(id)!);
        live -= sizes.get(id)!;
        addresses.delete(id);
        sizes.delete(id);
      } else {
        const address = kind === OP_ALLOC ? peer.peer_malloc(size) : peer.peer_realloc(addresses.get(id)!, size);
        if (address === 0 && size !== 0) throw new Error(`${allocator}: op failed`);
        live += size - (sizes.get(id) ?? 0);
        addresses.set(id, address);
        sizes.set(id, size);
      }
      peakLiveBytes = Math.max(peakLiveBytes, live);
      if (peer.memory.buffer.byteLength > peakFootprintBytes) grows++;
      peakFootprintBytes = Math.max(peakFootprintBytes, peer.memory.buffer.byteLength);
    }
  }
  for (const address of addresses.values()) peer.peer_free(address);
  peakFootprintBytes = Math.max(peakFootprintBytes, peer.memory.buffer.byteLength);
  return { peakFootprintBytes, peakLiveBytes, grows };
}

/**
 * Large blocks among small ones: mimalloc's huge segments (over 2 MiB), glibc-style mmap sizes,
 * a block grown by realloc past 16 MiB, and 4 MiB blocks freed and allocated again.
 */
function largeBlocks(): Workload {
  const lines: string[] = [];
  for (let id = 0; id < 300; id++) lines.push(`a ${id} ${16 + ((id * 37) % 500)}`);
  let id = 300;
  for (const size of [3 * MiB, 9 * MiB + 5, 600_000, 20 * MiB, 130_000]) lines.push(`a ${id++} ${size}`);
  lines.push('f 301', 'f 303');
  for (let round = 0; round < 6; round++) lines.push(`a 400 ${4 * MiB}`, 'f 400');
  lines.push(`a 401 100000`, `r 401 ${2 * MiB}`, `r 401 ${17 * MiB}`, 'r 401 1000');
  for (let small = 0; small < 300; small += 2) lines.push(`f ${small}`);
  return textWorkload('large-blocks', `${lines.join('\n')}\n`);
}

/** The same ops with every id multiplied: a far larger id table, the same allocator calls. */
function spreadIds(workload: Workload, factor: number): Workload {
  return {
    name: `${workload.name} (ids x${factor})`,
    description: workload.description,
    async *chunks() {
      for await (const chunk of workload.chunks()) {
        const copy = chunk.slice();
        for (let i = 1; i < copy.length; i += OP_FIELDS) copy[i] *= factor;
        yield copy;
      }
    },
    shape: async () => {
      const shape = await workload.shape();
      return { ...shape, idLimit: (shape.idLimit - 1) * factor + 1 };
    },
  };
}

const WORKLOADS: [string, () => Workload][] = [
  ['the real trace traces/python-json.trace.gz', () => resolveWorkload('trace:traces/python-json.trace.gz')],
  ['the synthetic cpython-mix', () => resolveWorkload('cpython-mix', { scale: 0.1 })],
  ['a trace of large blocks', largeBlocks],
];

describe('the footprint is the allocator\'s alone', () => {
  for (const [what, make] of WORKLOADS) {
    it(`matches a reference replay on ${what}, for every allocator`, async () => {
      expect(built.length).toBeGreaterThanOrEqual(4);
      for (const allocator of built) {
        const workload = make();
        const tool = await replay(allocator, workload, { timing: false });
        const reference = await referenceReplay(allocator, workload);
        expect(tool.failure, allocator).toBeUndefined();
        expect(tool.peakLiveBytes, allocator).toBe(reference.peakLiveBytes);
        expect(Math.abs(tool.peakFootprintBytes - reference.peakFootprintBytes), allocator).toBeLessThanOrEqual(WASM_PAGE);
        expect(tool.fragmentation, allocator).toBeCloseTo(reference.peakFootprintBytes / reference.peakLiveBytes, 2);
        expect(tool.fragmentation!, allocator).toBeGreaterThanOrEqual(1);
        expect(tool.grows.footprint, allocator).toBe(reference.grows);
        expect(tool.samples.footprintBytes.every((f, i) => f >= tool.samples.liveBytes[i]), allocator).toBe(true);
      }
    }, 120_000);
  }

  it('does not move when only the harness\'s id table grows', async () => {
    // The finding behind this: a larger id table in Wasm memory moved pymalloc's figures by up to 41%.
    const workload = resolveWorkload('plateau', { scale: 0.05 });
    for (const allocator of built) {
      const small = await replay(allocator, workload, { timing: false });
      const large = await replay(allocator, spreadIds(workload, 64), { timing: false });
      expect(large.peakLiveBytes, allocator).toBe(small.peakLiveBytes);
      expect(large.peakFootprintBytes, allocator).toBe(small.peakFootprintBytes);
      expect(large.footprintAtPeakLiveBytes, allocator).toBe(small.footprintAtPeakLiveBytes);
    }
  }, 120_000);

  it('never gives a fragmentation below 1, with the timing runs on (default workloads, small scale)', async () => {
    const comparison = await compare({ scale: 0.05, repeat: 1, native: true });
    const rows = [...comparison.results, ...comparison.native];
    expect(rows.length).toBeGreaterThan(built.length * 7);
    for (const row of rows) {
      expect(row.failure, `${row.workload} ${row.allocator}`).toBeUndefined();
      if (row.fragmentation === null) expect(row.peakLiveBytes).toBeLessThan(64 * 1024);
      else expect(row.fragmentation, `${row.workload} ${row.allocator}`).toBeGreaterThanOrEqual(1);
      expect(row.nsPerOp).toBeGreaterThan(0);
    }
  }, 120_000);
});
