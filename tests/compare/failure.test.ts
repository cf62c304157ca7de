// A replay that cannot finish is that allocator's failure row, and the other rows still
// complete. The allocators that run out do so on purpose: copies of their modules whose memory
// section is given a small maximum, so memory.grow fails well before wasm32's 4 GiB.

import { copyFile, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

import { builtAllocators, declaredMaxPages } from '../../src/tools/compare/allocators.js';
import { compare, comparisonDocument, failedResults } from '../../src/tools/compare/compare.js';
import { formatSummary } from '../../src/tools/compare/report.js';
import { TRACE_PREFIX } from '../../src/tools/compare/workloads.js';

const PEERS = fileURLToPath(new URL('../../build/peers/', import.meta.url));
const WASM_PAGE = 65536;
const HEADROOM_PAGES = 48;
const BLOCK = 4096;
const BLOCKS = 2048; // 8 MiB live, well past the 3 MiB of headroom
const built = builtAllocators();
const LIMITED = ['pymalloc-3.12', 'tlsf', 'dlmalloc'].filter((name) => built.includes(name as never));
const EXPECTED_REASON: Record<string, string> = { 'pymalloc-3.12': 'max-memory', dlmalloc: 'max-memory', tlsf: 'trap' };

function leb(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

function readLeb(bytes: Uint8Array, at: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (;;) {
    const byte = bytes[at++];
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if ((byte & 0x80) === 0) return [value, at];
  }
}

/** The module with its one memory given maximum = initial + extra pages; returns it and the maximum. */
function withMaximum(bytes: Uint8Array, extraPages: number): [Uint8Array, number] {
  for (let at = 8; at < bytes.length; ) {
    const [size, body] = readLeb(bytes, at + 1);
    if (bytes[at] === 5) {
      const [, flagsAt] = readLeb(bytes, body); // one memory
      const [, initialAt] = readLeb(bytes, flagsAt);
      const [initial] = readLeb(bytes, initialAt);
      const maximum = initial + extraPages;
      const section = [1, 1, ...leb(initial), ...leb(maximum)];
      const patched = Uint8Array.from([...bytes.subarray(0, at), 5, ...leb(section.length), ...section, ...bytes.subarray(body + size)]);
      return [patched, maximum];
    }
    at = body + size;
  }
  throw new Error('no memory section');
}

let dir: string;
const maximum = new Map<string, number>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peers-limited-'));
  for (const name of built) {
    if (LIMITED.includes(name)) {
      const [patched, pages] = withMaximum(new Uint8Array(await readFile(join(PEERS, `${name}.wasm`))), HEADROOM_PAGES);
      expect(declaredMaxPages(patched)).toBe(pages);
      maximum.set(name, pages);
      await writeFile(join(dir, `${name}.wasm`), patched);
    } else {
      await copyFile(join(PEERS, `${name}.wasm`), join(dir, `${name}.wasm`));
    }
  }
  const lines = ['# pymalloc-trace v1'];
  for (let id = 0; id < BLOCKS; id++) lines.push(`a ${id} ${BLOCK}`);
  for (let id = 0; id < BLOCKS; id++) lines.push(`f ${id}`);
  await writeFile(join(dir, 'blocks.trace'), lines.join('\n') + '\n');
});

describe('an allocator that runs out', () => {
  it('gives its own failure row; every other allocator completes', async () => {
    const comparison = await compare({ workloads: [`${TRACE_PREFIX}${join(dir, 'blocks.trace')}`], wasmDir: dir, repeat: 1 });
    expect(comparison.results.map((r) => r.allocator)).toEqual(built);
    expect(failedResults(comparison).map((r) => r.allocator).sort()).toEqual([...LIMITED].sort());
    for (const result of comparison.results) {
      if (!LIMITED.includes(result.allocator)) {
        expect(result.failure, result.allocator).toBeUndefined();
        expect(result.ops).toBe(2 * BLOCKS);
        expect(result.timedRuns).toBe(1);
        continue;
      }
      const failure = result.failure!;
      const limitBytes = maximum.get(result.allocator)! * WASM_PAGE;
      expect(failure.pass).toBe('footprint');
      expect(failure.reason, result.allocator).toBe(EXPECTED_REASON[result.allocator]);
      // The trace allocates block after block: op n fails with n blocks live.
      expect(failure.liveBytes).toBe(failure.op * BLOCK);
      expect(failure.liveBytes).toBeGreaterThan(HEADROOM_PAGES * WASM_PAGE / 2);
      expect(failure.footprintBytes).toBeLessThanOrEqual(limitBytes);
      expect(failure.message).toContain(`${result.allocator}: op ${failure.op} failed: alloc of ${BLOCK} bytes for id ${failure.op}`);
      expect(failure.message).toContain(`below the module's maximum of ${(limitBytes / (1 << 20)).toFixed(1)} MiB`);
      expect(result.ops).toBe(failure.op);
      expect(result.peakLiveBytes).toBe(failure.liveBytes);
      expect(result.nsPerOp).toBeNull();
      expect(result.timedRuns).toBe(0);
    }
  }, 60_000);

  it('carries the failure to the JSON and the table', async () => {
    const comparison = await compare({ workloads: [`${TRACE_PREFIX}${join(dir, 'blocks.trace')}`], allocators: ['tlsf', 'bump'], wasmDir: dir, repeat: 1 });
    const [tlsf, bump] = comparisonDocument(comparison, { wasmDir: dir }).results;
    expect(tlsf.failure?.reason).toBe('trap');
    expect(bump).not.toHaveProperty('failure');
    const table = formatSummary(comparison);
    expect(table).toMatch(/tlsf +- .* FAILED/);
    expect(table).toContain('FAILED on trace:');
    expect(table).toMatch(/tlsf: op \d+ failed: .*: the module trapped/);
  }, 60_000);
});
