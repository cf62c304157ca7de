// Which peers reuse the memory of a freed large block: one block allocated and freed again and
// again, nothing else live. mimalloc 2.0.9 on wasm32 does not for blocks over 2 MiB (its huge
// segments go back to an OS layer that cannot take memory back: PEER_NOTES.mimalloc); every
// other peer but bump does, and so does mimalloc below 2 MiB.

import { describe, expect, it } from 'vitest';

import { builtAllocators, PEER_NOTES } from '../../src/tools/compare/allocators.js';
import { replay } from '../../src/tools/compare/replay.js';
import type { Workload } from '../../src/tools/compare/workloads.js';
import { parseTraceText } from '../../src/tools/trace/index.js';

const MiB = 1 << 20;
const ROUNDS = 30;
const built = builtAllocators();

function churnOne(size: number): Workload {
  const lines = ['# pymalloc-trace v1', 'a 0 64'];
  for (let round = 0; round < ROUNDS; round++) lines.push(`a 1 ${size}`, 'f 1');
  const { ops, summary } = parseTraceText(lines.join('\n') + '\n', { source: `churn ${size}` });
  return {
    name: `one block of ${size} bytes, ${ROUNDS} times`,
    description: '',
    async *chunks() {
      yield ops;
    },
    shape: async () => ({ ops: summary.ops, idLimit: summary.idLimit, liveAtEnd: summary.liveAtEnd }),
  };
}

describe('a large block freed and allocated again', () => {
  it('is reused by every peer but bump, and by mimalloc only up to 2 MiB', async () => {
    for (const allocator of built.filter((name) => name !== 'bump')) {
      for (const size of [MiB + MiB / 2, 2 * MiB - 4096, 3 * MiB, 12 * MiB]) {
        const result = await replay(allocator, churnOne(size), { timing: false });
        const reused = result.peakFootprintBytes < size + 16 * MiB;
        const expected = allocator !== 'mimalloc' || size <= 2 * MiB;
        expect(reused, `${allocator}, ${size} bytes: ${result.peakFootprintBytes} bytes of memory`).toBe(expected);
        if (!expected) expect(result.peakFootprintBytes).toBeGreaterThanOrEqual(ROUNDS * size);
      }
    }
  }, 60_000);

  it('is explained for mimalloc where the report can show it', () => {
    expect(PEER_NOTES.mimalloc).toMatch(/never reuses the memory of a freed block larger than 2 MiB/);
  });
});
