// The pymalloc command: exit codes (0 ok, 1 runtime failure, 2 usage error), the JSON shapes,
// and the messages for bad input. Runs src/tools/cli/index.ts through tsx, as dist/tools/cli/index.js runs.

import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'src', 'tools', 'cli', 'index.ts');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** tsx's loader by its path, so that the CLI runs from any directory. */
const TSX = join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs');

function pymallocIn(cwd: string, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', TSX, CLI, ...args], { cwd, env: { ...process.env, CI: 'true' } }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr });
    });
  });
}

function pymalloc(...args: string[]): Promise<Run> {
  return pymallocIn(ROOT, ...args);
}

let dir: string;

/** gcc compiles the native glibc replay; without it there are no native rows. */
const hasGcc = spawnSync('gcc', ['--version']).status === 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pymalloc-cli-'));
});

describe('pymalloc compare', () => {
  it('prints the whole result as JSON, native rows included, and writes nothing', async () => {
    const cwd = await mkdtemp(join(dir, 'json-'));
    const run = await pymallocIn(cwd, 'compare', '--workload', 'plateau,lifo', '--allocators', 'pymalloc-3.12,tlsf', '--scale', '0.01', '--seed', '7', '--json');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const document = JSON.parse(run.stdout);
    expect(Object.keys(document)).toEqual(['tool', 'environment', 'settings', 'allocators', 'workloads', 'results', 'skipped']);
    expect(document.tool).toEqual({ name: 'pymalloc-wasm', version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
    expect(document.environment).toMatchObject({ node: process.version, platform: process.platform, arch: process.arch, cores: expect.any(Number) });
    expect(document.settings).toEqual({ workloads: ['plateau', 'lifo'], allocators: ['pymalloc-3.12', 'tlsf'], seed: 7, scale: 0.01, repeat: 5, native: true });
    expect(document.allocators.map((a: { name: string; kind: string }) => `${a.name}/${a.kind}`)).toEqual([
      'pymalloc-3.12/wasm', 'tlsf/wasm', ...(hasGcc ? ['native glibc (not Wasm)/native'] : []),
    ]);
    for (const a of document.allocators) expect(a.builtFrom).not.toBe('unknown');
    expect(document.workloads.map((w: { name: string }) => w.name)).toEqual(['plateau', 'lifo']);
    const rows = document.results as Record<string, unknown>[];
    expect(rows.map((r) => `${r.kind}:${r.workload}/${r.allocator}`)).toEqual([
      'wasm:plateau/pymalloc-3.12', 'wasm:plateau/tlsf', 'wasm:lifo/pymalloc-3.12', 'wasm:lifo/tlsf',
      ...(hasGcc ? ['native:plateau/native glibc (not Wasm)', 'native:lifo/native glibc (not Wasm)'] : []),
    ]);
    for (const row of rows) {
      // Every column of the table, and the spread of the timings.
      for (const key of ['nsPerOp', 'nsPerOpMin', 'nsPerOpMax', 'timedRuns', 'peakLiveBytes', 'peakFootprintBytes', 'fragmentation', 'finalFootprintBytes']) {
        expect(row).toHaveProperty(key);
      }
      if (row.kind === 'wasm') {
        expect(row).toHaveProperty('footprintAtPeakLiveBytes');
        expect(row).toHaveProperty('growNsPerOp');
        expect(row).not.toHaveProperty('samples');
        expect(row.timedRuns).toBe(5);
      }
      expect(row.nsPerOpMin as number).toBeLessThanOrEqual(row.nsPerOp as number);
      expect(row.nsPerOp as number).toBeLessThanOrEqual(row.nsPerOpMax as number);
    }
    expect(await readdir(cwd)).toEqual([]);
  });

  it('writes the table and the report', async () => {
    const out = join(dir, 'report');
    const run = await pymalloc('compare', '--workload', 'interleaved', '--allocators', 'bump,pymalloc-3.7', '--scale', '0.01', '--out', out, '--no-native', '--no-race');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^workload +allocator +ns\/op/);
    expect(run.stdout).toContain(`report: ${join(out, 'index.html')}`);
  });

  it('exits 2 naming the valid allocators and workloads', async () => {
    const allocator = await pymalloc('compare', '--allocators', 'jemalloc', '--json');
    expect(allocator.code).toBe(2);
    expect(allocator.stderr).toContain('valid names are pymalloc-3.12, pymalloc-3.7, pymalloc-tuned, tlsf, bump, dlmalloc, mimalloc');
    const workload = await pymalloc('compare', '--workload', 'ramp,spike');
    expect(workload.code).toBe(2);
    expect(workload.stderr).toContain('unknown workload "spike": valid names are ramp, peak, plateau');
    expect((await pymalloc('frobnicate')).code).toBe(2);
    expect((await pymalloc('compare', '--bogus')).code).toBe(2);
    expect((await pymalloc('--help')).code).toBe(0);
  });
});

describe('pymalloc replay', () => {
  it('replays a trace file', async () => {
    const path = join(dir, 'small.trace');
    await writeFile(path, '# pymalloc-trace v1\na 0 32\na 1 4000\nr 0 64\nf 1\n');
    const run = await pymalloc('replay', path, '--allocators', 'pymalloc-3.12,bump', '--json');
    expect(run.code).toBe(0);
    const { results } = JSON.parse(run.stdout);
    // The two Wasm rows, then native glibc's (where gcc is): the same ops and live bytes.
    expect(results.map((r: { ops: number; peakLiveBytes: number }) => [r.ops, r.peakLiveBytes])).toEqual(hasGcc ? [[5, 4064], [5, 4064], [5, 4064]] : [[5, 4064], [5, 4064]]);
  });

  it('exits 1 when one allocator fails, and still prints every row', async () => {
    const path = join(dir, 'huge.trace');
    // 1.5 GB: above TLSF's 1 GiB block limit, which it aborts on; pymalloc takes it.
    await writeFile(path, '# pymalloc-trace v1\na 0 32\na 1 1500000000\nf 1\n');
    const run = await pymalloc('replay', path, '--allocators', 'tlsf,pymalloc-3.12', '--json', '--repeat', '1', '--no-native');
    expect(run.code).toBe(1);
    const { results } = JSON.parse(run.stdout);
    expect(results.map((r: { allocator: string }) => r.allocator)).toEqual(['tlsf', 'pymalloc-3.12']);
    expect(results[0].failure).toMatchObject({ pass: 'footprint', op: 1, liveBytes: 32, reason: 'trap' });
    expect(results[0].nsPerOp).toBeNull();
    expect(results[1].failure).toBeUndefined();
    expect(results[1].timedRuns).toBe(1);
    expect(results[1].peakFootprintBytes).toBeGreaterThan(1_500_000_000);
    expect(run.stderr).toContain('1 replay could not finish');
    expect(run.stderr).toContain('tlsf: op 1 failed: alloc of 1500000000 bytes for id 1');
  });

  it('exits 1 with the line number and the line of a malformed trace', async () => {
    const path = join(dir, 'bad.trace');
    await writeFile(path, '# pymalloc-trace v1\na 0 32\na 1 x7\n');
    const run = await pymalloc('replay', path, '--json');
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(`${path}:3: malformed line "a 1 x7"`);
  });

  it('exits 1 for a missing file', async () => {
    const run = await pymalloc('replay', join(dir, 'nope.trace'));
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('trace file not found');
  });
});

describe('pymalloc record, bench, stats', () => {
  it('exits 1 when the recorded command fails', async () => {
    const run = await pymalloc('record', '-o', join(dir, 'fail.trace'), '--', 'sh', '-c', 'exit 3');
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^pymalloc: /);
  });

  it('exits 2 without an output', async () => {
    expect((await pymalloc('record', '--', 'true')).code).toBe(2);
  });

  it('prints the bench JSON', async () => {
    const run = await pymalloc('bench', '--json', '--steps', '2000', '--runs', '1');
    expect(run.code).toBe(0);
    const { results, ...rest } = JSON.parse(run.stdout);
    expect(rest).toEqual({});
    expect(results.length).toBeGreaterThanOrEqual(6);
    for (const result of results) {
      expect(Object.keys(result)).toEqual(['name', 'allocator', 'nsPerOp']);
      expect(result.nsPerOp).toBeGreaterThan(0);
    }
  });

  it('prints sys._debugmallocstats() at the end of a workload', async () => {
    const run = await pymalloc('stats', '--workload', 'plateau', '--allocator', 'pymalloc-3.7', '--scale', '0.01');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('pymalloc-3.7 at the end of plateau');
    expect(run.stdout).toContain('# arenas allocated total');
    expect((await pymalloc('stats', '--allocator', 'tlsf')).code).toBe(2);
  });
});
