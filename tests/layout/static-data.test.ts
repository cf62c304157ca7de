// A module over a shared memory re-applies its active data segments at every instantiation
// (README, "Sharing a heap between workers"): static data must be constant. memory.data(size)
// reserves zeroed static memory, which only mutable state needs; state belongs in the heap
// header (assembly/memory/header.ts). This test finds every such reservation in the core.
import { describe, it, expect } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ASSEMBLY = fileURLToPath(new URL('../../assembly', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : []);
}

/** The active data segments of a wasm binary: [offset, length] of each. */
function dataSegments(bytes: Uint8Array): [number, number][] {
  let at = 8;
  const leb = () => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[at++];
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return value;
    }
  };
  const segments: [number, number][] = [];
  while (at < bytes.length) {
    const id = bytes[at++];
    const size = leb();
    const end = at + size;
    if (id === 11) {
      for (let n = leb(); n > 0; n--) {
        const flags = leb();
        expect(flags).toBe(0); // active, memory 0, i32.const offset
        expect(bytes[at++]).toBe(0x41);
        const offset = leb();
        expect(bytes[at++]).toBe(0x0b);
        const length = leb();
        segments.push([offset, length]);
        at += length;
      }
    }
    at = end;
  }
  return segments;
}

describe('static data', () => {
  it('reserves no zeroed (mutable) static memory anywhere in the core', () => {
    const found = sources(ASSEMBLY).flatMap((file) =>
      readFileSync(file, 'utf8').split('\n').flatMap((line, i) =>
        /memory\.data\(\s*<?[^[<]*>?\s*[\d(A-Za-z_]/.test(line) && !line.trim().startsWith('//') && !line.trim().startsWith('*')
          ? [`${file.slice(ASSEMBLY.length + 1)}:${i + 1}: ${line.trim()}`] : []));
    expect(found).toEqual([]);
  });

  it.each(['release', 'debug'])('puts every data segment of the %s shared build above the header and the IO buffer', (build) => {
    const config = JSON.parse(readFileSync(new URL('../../asconfig.json', import.meta.url), 'utf8')) as { options: { memoryBase: number } };
    const segments = dataSegments(readFileSync(new URL(`../../build/pymalloc.${build}.shared.wasm`, import.meta.url)));
    for (const [offset] of segments) expect(offset).toBeGreaterThanOrEqual(config.options.memoryBase);
  });
});
