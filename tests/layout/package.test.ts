// The package's entries as a user's project sees them after `npm install pymalloc-wasm`: a temp
// project whose node_modules/pymalloc-wasm is this package (built: dist/), importing the
// subpaths by name from plain Node and type-checking against the declarations they export.

import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** What the user's program does with each subpath; the same text is run and type-checked. */
const PROGRAM = `
import { Heap } from 'pymalloc-wasm';
import { convertTrace, openTrace, parseTraceText, writeTrace, record, type TraceSummary } from 'pymalloc-wasm/trace';
import { compare, replay, resolveWorkload, SYNTHETIC_WORKLOADS, type Comparison, type ReplayResult } from 'pymalloc-wasm/compare';
import { registerHeapMetrics, type HeapMetrics } from 'pymalloc-wasm/metrics';

const { ops } = parseTraceText('# pymalloc-trace v1\\na 0 100\\na 1 28\\nf 0\\n');
await writeTrace('written.trace.gz', ops);
const summary: TraceSummary = await convertTrace('written.trace.gz', 'converted.trace');
let chunks = 0;
for await (const chunk of openTrace('converted.trace')) chunks += chunk.ops.length > 0 ? 1 : 0;
const result: ReplayResult = await replay('pymalloc-3.12', resolveWorkload('trace:converted.trace'), { timing: false });
const comparison: Comparison = await compare({ workloads: ['lifo'], allocators: ['bump'], scale: 0.01 });
const heap = await Heap.create();
const metrics: HeapMetrics = registerHeapMetrics(heap);
console.log(JSON.stringify({
  summary: [summary.format, summary.ops, summary.idLimit, summary.liveAtEnd],
  chunks,
  replayed: [result.allocator, result.ops, result.peakLiveBytes],
  compared: comparison.results.map((r) => r.workload + ' on ' + r.allocator),
  synthetic: SYNTHETIC_WORKLOADS.length,
  record: typeof record,
  heap: heap.usableSize(heap.malloc(36)),
  metrics: metrics.names.includes('pymalloc_committed_bytes'),
}));
// @ts-expect-error: the declarations are real, not any: chunkOps is a number
openTrace('converted.trace', { chunkOps: 'many' });
`;

let project: string;

beforeAll(async () => {
  project = await mkdtemp(join(tmpdir(), 'pymalloc-user-'));
  await mkdir(join(project, 'node_modules'));
  await symlink(ROOT, join(project, 'node_modules', 'pymalloc-wasm'), 'dir');
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'user', type: 'module', private: true }));
});

describe('the package subpaths', () => {
  it("'pymalloc-wasm/trace', 'pymalloc-wasm/compare' and 'pymalloc-wasm/metrics' are importable by name from plain Node", async () => {
    // Node strips nothing: run the program with its types and the @ts-expect-error line removed.
    const js = PROGRAM.replace(/, type \w+/g, '').replace(/: (TraceSummary|ReplayResult|Comparison|HeapMetrics)\b/g, '').replace(/\/\/ @ts-expect-error.*\n.*\n/, '');
    await writeFile(join(project, 'main.mjs'), js);
    const out = execFileSync(process.execPath, ['main.mjs'], { cwd: project, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({
      summary: ['pymalloc', 3, 2, 1],
      chunks: 1,
      replayed: ['pymalloc-3.12', 4, 128],
      compared: ['lifo on bump'],
      synthetic: 7,
      record: 'function',
      heap: 48,
      metrics: true,
    });
    expect((await readFile(join(project, 'written.trace.gz')))[0]).toBe(0x1f);
  });

  it('type-check against the declarations package.json exports for them', async () => {
    await writeFile(join(project, 'main.ts'), PROGRAM);
    await writeFile(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true,
          types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')],
        },
        files: ['main.ts'],
      }),
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const out = execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: project, encoding: 'utf8' });
    expect(out).toBe('');
  });

  it('declare the subpaths with their types in package.json', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
    expect(pkg.exports['./trace']).toEqual({ types: './dist/tools/trace/index.d.ts', import: './dist/tools/trace/index.js' });
    expect(pkg.exports['./compare']).toEqual({ types: './dist/tools/compare/index.d.ts', import: './dist/tools/compare/index.js' });
    expect(pkg.exports['./metrics']).toEqual({ types: './dist/tools/metrics/index.d.ts', import: './dist/tools/metrics/index.js' });
  });
});
