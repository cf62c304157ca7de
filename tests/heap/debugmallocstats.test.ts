import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { Heap } from '../../src/index.js';
import { parse } from './mallocstats.js';

describe.each(['cpython-3.7', 'cpython-3.12'] as const)('debugMallocStats on %s', (preset) => {
  it('parses back to the same numbers as stats(), its byte lines adding up to Total', async () => {
    const heap = await Heap.create({ preset });
    const keep: number[] = [];
    for (let i = 0; i < 20000; i++) {
      const p = heap.malloc(1 + ((i * 2654435761) >>> 0) % 512);
      if (i % 3) heap.free(p);
      else keep.push(p);
    }
    const stats = heap.stats();
    const { header, rows, summary } = parse(heap.debugMallocStats());
    expect(header).toBe(`Small block threshold = 512, in ${heap.config.numClasses} size classes.`);
    expect(rows).toEqual(
      stats.sizeClasses
        .filter((c) => c.pools > 0)
        .map((c) => ({ index: c.index, size: c.size, pools: c.pools, inUse: c.blocksInUse, avail: c.blocksAvailable })),
    );
    expect(rows.reduce((n, r) => n + r.inUse, 0)).toBe(keep.length);
    const { arenaSize, poolSize } = heap.config;
    const arenas = stats.arenas.current;
    expect(summary.get('# arenas allocated current')).toBe(arenas);
    expect(summary.get(`${arenas} arenas * ${arenaSize} bytes/arena`)).toBe(arenas * arenaSize);
    const byteLines = [
      '# bytes in allocated blocks',
      '# bytes in available blocks',
      `${stats.bytes.freePools} unused pools * ${poolSize} bytes`,
      '# bytes lost to pool headers',
      '# bytes lost to quantization',
      '# bytes lost to arena alignment',
    ].map((label) => summary.get(label)!);
    expect(byteLines.every((n) => Number.isInteger(n))).toBe(true);
    expect(byteLines.reduce((a, b) => a + b, 0)).toBe(summary.get('Total'));
    expect(summary.get('Total')).toBe(arenas * arenaSize);
    expect(summary.get('# bytes in allocated blocks')).toBe(rows.reduce((n, r) => n + r.inUse * r.size, 0));
  });
});

const python = spawnSync('python3', ['-c', 'import sys; sys._debugmallocstats()'], { encoding: 'utf8' });

describe.skipIf(python.status !== 0)('against the real CPython on this machine', () => {
  it('prints the same header, columns and summary lines in the same order', async () => {
    const heap = await Heap.create({ preset: 'cpython-3.12' });
    for (let i = 0; i < 1000; i++) heap.malloc(1 + (i % 512));
    const ours = parse(heap.debugMallocStats());
    const theirs = parse(python.stderr || python.stdout);
    expect(ours.header.replace(/\d+/g, 'N')).toBe(theirs.header.replace(/\d+/g, 'N'));
    expect(heap.debugMallocStats().split('\n').slice(1, 4)).toEqual(
      (python.stderr || python.stdout).split('\n').slice(1, 4),
    );
    expect(ours.labels).toEqual(theirs.labels);
  });
});
