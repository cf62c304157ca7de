import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

import { replay, resolveWorkload } from '../../src/tools/compare/index.js';
import { markParetoFront, sweep, type SweepPoint } from '../../src/tools/compare/sweep.js';
import { renderSweepReport } from '../../src/tools/compare/sweep-report.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'src', 'tools', 'cli', 'index.ts');
const TSX = join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs');

function pymalloc(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', TSX, CLI, ...args], { cwd: ROOT, env: { ...process.env, CI: 'true' } }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr });
    });
  });
}

function point(label: string, nsPerOp: number, fragmentation: number, setting = true): SweepPoint {
  return {
    label,
    nsPerOp,
    fragmentation,
    pareto: false,
    workloads: [],
    ...(setting && { setting: { policy: 'tuned' as const, alignment: 8, poolSize: 4096, arenaSize: 262144, smallRequestThreshold: 512 } }),
  };
}

describe('the Pareto front', () => {
  it('holds exactly the settings no other setting beats on both figures; peers are never on it', () => {
    const points = [point('a', 10, 1.5), point('b', 12, 1.2), point('c', 11, 1.6), point('d', 10, 1.5), point('e', 13, 1.2), point('peer', 5, 1.0, false)];
    markParetoFront(points);
    // c is beaten by a on both; e by b on speed at equal fragmentation; a and d tie and stay.
    expect(points.filter((p) => p.pareto).map((p) => p.label)).toEqual(['a', 'b', 'd']);
  });
});

describe('sweep', () => {
  it('replays each setting on the sweep modules: a setting equal to a preset has its fragmentation exactly', async () => {
    const result = await sweep({ alignments: [8, 16], poolSizes: [4096, 32768], arenaSizes: [262144, 2097152], workloads: ['trace:perl-hash'], repeat: 1, threads: 2, peers: [] });
    expect(result.points).toHaveLength(16);
    expect(result.points.slice(0, 4).map((p) => p.label)).toEqual(['cpython 8/4K/256K', 'cpython 8/4K/2M', 'cpython 8/32K/256K', 'cpython 8/32K/2M']);
    const workload = resolveWorkload('trace:perl-hash');
    const cpython37 = await replay('pymalloc-3.7', workload, { repeat: 1, timing: false });
    const tuned = await replay('pymalloc-tuned', workload, { repeat: 1, timing: false });
    const byLabel = new Map(result.points.map((p) => [p.label, p]));
    expect(byLabel.get('cpython 8/4K/256K')!.fragmentation).toBe(cpython37.fragmentation);
    expect(byLabel.get('tuned 16/32K/2M')!.fragmentation).toBe(tuned.fragmentation);
    for (const p of result.points) {
      expect(p.workloads).toHaveLength(1);
      expect(p.nsPerOp).toBeGreaterThan(0);
    }
    expect(result.points.some((p) => p.pareto)).toBe(true);
  });

  it('leaves out a pool larger than its arena, naming why, and refuses a geometry no grid can hold', async () => {
    const result = await sweep({ poolSizes: [524288], arenaSizes: [262144, 1048576], policies: ['tuned'], workloads: ['trace:perl-hash'], repeat: 1, threads: 1, peers: [] });
    expect(result.points.map((p) => p.label)).toEqual(['tuned 8/512K/1M']);
    expect(result.skipped).toEqual([{ label: 'tuned 8/512K/256K', reason: 'options.poolSize must be a power of two from 4096 to options.arenaSize' }]);
    await expect(sweep({ poolSizes: [3000], workloads: ['trace:perl-hash'] })).rejects.toThrow(/options.poolSize must be a power of two/);
    await expect(sweep({ policies: ['fast' as 'tuned'] })).rejects.toThrow(RangeError);
    // Workloads are resolved before any replay runs.
    await expect(sweep({ workloads: ['trace:/nonexistent.trace.gz'], threads: 1 })).rejects.toThrow(/trace file not found: \/nonexistent.trace.gz/);
    await expect(sweep({ workloads: ['bogus'], threads: 1 })).rejects.toThrow(/unknown workload "bogus"/);
  });

  it('draws its scatter: the front, the other settings and the peers as three data sets', () => {
    const points = [point('tuned 8/4K/256K', 10, 1.5), point('cpython 8/4K/256K', 12, 1.6), point('mimalloc', 6, 3, false)];
    markParetoFront(points);
    const html = renderSweepReport({ workloads: ['trace:cc1'], repeat: 1, points, skipped: [] });
    const data = JSON.parse(/<script type="application\/json" id="data">(.*?)<\/script>/s.exec(html)![1]);
    expect(data).toEqual({
      front: [{ x: 10, y: 1.5, label: 'tuned 8/4K/256K' }],
      others: [{ x: 12, y: 1.6, label: 'cpython 8/4K/256K' }],
      peers: [{ x: 6, y: 3, label: 'mimalloc' }],
    });
    expect(html).toContain('<canvas id="sweep">');
  });
});

describe('pymalloc sweep', () => {
  it('prints the table and writes sweep.html and sweep.json', async () => {
    const out = await mkdtemp(join(tmpdir(), 'pymalloc-sweep-'));
    const run = await pymalloc('sweep', '--pool-size', '4K', '--arena-size', '256K', '--policy', 'tuned', '--workload', 'trace:perl-hash', '--repeat', '1', '--threads', '1', '--out', out);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^\* tuned 8\/4K\/256K +\d+\.\d +\d\.\d{3}$/m);
    const saved = JSON.parse(await readFile(join(out, 'sweep.json'), 'utf8'));
    expect(saved.points.map((p: SweepPoint) => p.label)).toContain('tuned 8/4K/256K');
    expect(await readFile(join(out, 'sweep.html'), 'utf8')).toContain('Sweep of pymalloc');
  });

  it('exits 2 on a size or a policy it does not know', async () => {
    const size = await pymalloc('sweep', '--pool-size', '4X');
    expect(size.code).toBe(2);
    expect(size.stderr).toContain('"4X" is not a size');
    const policy = await pymalloc('sweep', '--policy', 'fast');
    expect(policy.code).toBe(2);
    expect(policy.stderr).toContain('unknown policy fast (valid: cpython, tuned)');
  });
});
