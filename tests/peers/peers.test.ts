// The allocator modules behind src/tools/compare/allocators.ts. Needs scripts/build-peers.sh to have run: tlsf and
// bump must be there, dlmalloc and mimalloc are tested when their toolchain was available.

import { describe, expect, it } from 'vitest';

import {
  ALLOCATOR_NAMES,
  builtAllocators,
  loadAllocator,
  type WasmAllocator,
} from '../../src/tools/compare/allocators.js';
import { AllocatorError, AllocatorUnavailableError, UsageError } from '../../src/tools/compare/errors.js';
import { OP_ALLOC, OP_FIELDS, OP_FREE, OP_REALLOC } from '../../src/tools/trace/format.js';

const MiB = 1 << 20;
const MIN_ALIGNMENT = 8;
const REPLAY_DONE = -1;

const built = builtAllocators();

type Op = readonly [kind: number, id: number, size: number];

/** Copies ops into the peer's op buffer and runs them. */
function replay(peer: WasmAllocator, ops: readonly Op[]): number {
  peer.replayOps().set(ops.flat());
  return peer.replayRun(ops.length);
}

/** The live blocks after `ops`, by id, with their requested sizes. */
function liveSizes(ops: readonly Op[]): Map<number, number> {
  const live = new Map<number, number>();
  for (const [kind, id, size] of ops) {
    if (kind === OP_FREE) live.delete(id);
    else live.set(id, size);
  }
  return live;
}

/** Sizes that straddle the interesting thresholds: 0, pymalloc's 512, a wasm page, 1 MiB. */
const FIRST_BATCH: readonly Op[] = [
  [OP_ALLOC, 0, 0],
  [OP_ALLOC, 1, 1],
  [OP_ALLOC, 2, 24],
  [OP_ALLOC, 3, 512],
  [OP_ALLOC, 4, 513],
  [OP_ALLOC, 5, 65536],
  [OP_ALLOC, 6, MiB],
  [OP_ALLOC, 7, 40],
  [OP_FREE, 1, 0],
  [OP_ALLOC, 1, 7],
];

/** Grows, shrinks and moves blocks the test has filled, and reallocs an id never allocated. */
const SECOND_BATCH: readonly Op[] = [
  [OP_REALLOC, 2, 100],
  [OP_REALLOC, 3, 8],
  [OP_REALLOC, 4, 3000],
  [OP_REALLOC, 7, 40],
  [OP_REALLOC, 8, 33],
  [OP_FREE, 5, 0],
  [OP_FREE, 9, 0],
];

const MAX_IDS = 16;

describe('peer builds', () => {
  it('always include tlsf and bump', () => {
    expect(built).toEqual(expect.arrayContaining(['tlsf', 'bump']));
  });

  it('reports a missing module by peer and by the command that builds it', async () => {
    const load = loadAllocator('tlsf', { wasmDir: '/nonexistent' });
    await expect(load).rejects.toThrow(AllocatorUnavailableError);
    await expect(load).rejects.toThrow(/^tlsf: not built: run `npm run build:peers` in a checkout/);
    await expect(loadAllocator('mimalloc', { wasmDir: '/nonexistent' })).rejects.toThrow(/^mimalloc: not built: run `pymalloc peers --build`/);
  });

  it('rejects an unknown peer name', async () => {
    await expect(loadAllocator('jemalloc' as 'tlsf')).rejects.toThrow(UsageError);
  });
});

describe.each(ALLOCATOR_NAMES)('peer %s', (name) => {
  const missing = !built.includes(name);

  it.skipIf(missing)('churns and returns a nonzero checksum', async () => {
    const peer = await loadAllocator(name);
    expect(peer.churn(1000, 20000, 12345, 512)).not.toBe(0);
    expect(peer.churn(2000, 20000, 777, 64)).not.toBe(0);
  });

  it.skipIf(missing)('churns the same addresses in every fresh instance', async () => {
    const first = (await loadAllocator(name)).churn(500, 5000, 99, 300);
    const second = (await loadAllocator(name)).churn(500, 5000, 99, 300);
    expect(second).toBe(first);
  });

  it.skipIf(missing)('replays into aligned blocks that do not overlap', async () => {
    const peer = await loadAllocator(name);
    peer.replayInit(MAX_IDS);
    const baseline = peer.memory.buffer.byteLength;
    expect(replay(peer, FIRST_BATCH)).toBe(REPLAY_DONE);

    const memory = () => new Uint8Array(peer.memory.buffer);
    const firstLive = liveSizes(FIRST_BATCH);
    for (const [id, size] of firstLive) {
      const address = peer.replayTable()[id];
      if (size > 0) expect(memory()[address]).toBe(1);
      memory().fill(id, address, address + size);
    }
    expect(replay(peer, SECOND_BATCH)).toBe(REPLAY_DONE);

    const ops = [...FIRST_BATCH, ...SECOND_BATCH];
    const live = liveSizes(ops);
    const table = peer.replayTable();
    expect(table[5]).toBe(0);
    expect(table[9]).toBe(0);
    const blocks = [...live].map(([id, size]) => ({ id, size, address: table[id] }));
    for (const { id, size, address } of blocks) {
      expect(address, `id ${id}`).not.toBe(0);
      expect(address % MIN_ALIGNMENT, `id ${id}`).toBe(0);
      const kept = Math.min(size, firstLive.get(id) ?? 0);
      const bytes = memory().subarray(address, address + kept);
      expect(bytes.slice(1).every((byte) => byte === id), `id ${id} kept its contents`).toBe(true);
    }
    blocks.sort((a, b) => a.address - b.address);
    for (let i = 1; i < blocks.length; i++) {
      const previous = blocks[i - 1];
      expect(previous.address + Math.max(previous.size, 1)).toBeLessThanOrEqual(blocks[i].address);
    }
    expect(peer.memory.buffer.byteLength - baseline).toBeGreaterThanOrEqual(MiB);
  });

  it.skipIf(missing)('reports the first op it cannot run', async () => {
    const peer = await loadAllocator(name);
    peer.replayInit(4);
    expect(replay(peer, [[OP_ALLOC, 0, 8], [OP_ALLOC, 4, 8]])).toBe(1);
    expect(replay(peer, [[OP_ALLOC, 1, 8], [7, 1, 8]])).toBe(1);
    peer.replayOps().fill(0).fill(OP_FREE, 0, OP_FIELDS);
    expect(peer.replayRun(peer.replayCapacity + 1)).toBe(peer.replayCapacity);
  });

  // Regression: clang removed the driver's start-up malloc/free pair as dead code, so dlmalloc
  // first ran after the id table and op buffer were reserved, took them for free memory, and
  // handed out blocks on top of them:
  //
  //   __heap_base              id table  op buffer       memory end
  //   ├──── dlmalloc's first top chunk, reaching past both ────┤
  it.skipIf(missing)('allocates nothing on top of the id table or the op buffer', async () => {
    const peer = await loadAllocator(name);
    peer.replayInit(MAX_IDS);
    const table = peer.replayTable();
    const ops = peer.replayOps();
    const scratchStart = Math.min(table.byteOffset, ops.byteOffset);
    const scratchEnd = Math.max(...[table, ops].map((view) => view.byteOffset + view.byteLength));
    const sizes = [8, 100, 1000, 20000, 70000, 200000];
    expect(replay(peer, sizes.map((size, id): Op => [OP_ALLOC, id, size]))).toBe(REPLAY_DONE);
    sizes.forEach((size, id) => {
      const address = peer.replayTable()[id];
      const clear = address + size <= scratchStart || address >= scratchEnd;
      expect(clear, `id ${id}: ${size} bytes at ${address}`).toBe(true);
    });
  });

  it.skipIf(missing)('rebuilds its views after memory grows', async () => {
    const peer = await loadAllocator(name);
    peer.replayInit(MAX_IDS);
    const before = peer.replayOps();
    expect(before.length).toBe(peer.replayCapacity * OP_FIELDS);
    expect(replay(peer, [[OP_ALLOC, 0, 16 * MiB]])).toBe(REPLAY_DONE);
    const after = peer.replayOps();
    expect(after.buffer).toBe(peer.memory.buffer);
    expect(Array.from(after.subarray(0, OP_FIELDS))).toEqual([OP_ALLOC, 0, 16 * MiB]);
  });

  it.skipIf(missing)('keeps the id table it reserved first', async () => {
    const peer = await loadAllocator(name);
    peer.replayInit(MAX_IDS);
    expect(() => peer.replayInit(MAX_IDS / 2)).not.toThrow();
    expect(() => peer.replayInit(MAX_IDS * 2)).toThrow(AllocatorError);
    expect(peer.replayTable().length).toBe(MAX_IDS);
  });
});
