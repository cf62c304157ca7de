// The native glibc reference: its footprint is the exact peak of what malloc took from the
// kernel, caught where it happens (a block mmapped and freed between two ops is still seen);
// too little live gives no ratio; timings come with their spread.

import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

import { nativeReplay } from '../../src/tools/compare/native.js';
import { textWorkload } from './helpers.js';

const MiB = 1 << 20;

function hasGcc(): boolean {
  try {
    execFileSync('gcc', ['--version']);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!hasGcc())('the native replay', () => {
  it('sees a 95 MiB block that lives for one op among thousands', async () => {
    const lines: string[] = [];
    for (let id = 0; id < 5000; id++) lines.push(`a ${id} ${16 + (id % 200)}`);
    lines.push(`a 5000 ${95 * MiB}`, 'f 5000');
    for (let id = 0; id < 5000; id++) lines.push(`f ${id}`);
    const result = (await nativeReplay(textWorkload('one-big-block', `${lines.join('\n')}\n`), { repeat: 3 }))!;
    expect(result.failure).toBeUndefined();
    expect(result.ops).toBe(10_002);
    expect(result.peakLiveBytes).toBeGreaterThan(95 * MiB);
    // glibc mmaps the block: its page-rounded chunk, plus the small blocks' heap.
    expect(result.peakFootprintBytes).toBeGreaterThanOrEqual(95 * MiB + 4096);
    expect(result.peakFootprintBytes).toBeLessThan(96 * MiB + 1024 * 1024);
    expect(result.fragmentation).toBeGreaterThanOrEqual(1);
    expect(result.finalFootprintBytes).toBeLessThan(MiB); // the mmapped chunk went back
    expect(result.timedRuns).toBe(3);
    expect(result.nsPerOpMin!).toBeLessThanOrEqual(result.nsPerOp!);
    expect(result.nsPerOp!).toBeLessThanOrEqual(result.nsPerOpMax!);
  });

  it('says n/a rather than a ratio when too little is live', async () => {
    const result = (await nativeReplay(textWorkload('tiny', 'a 0 100\na 1 2000\nf 0\n'), { repeat: 1 }))!;
    expect(result.peakLiveBytes).toBe(2100);
    expect(result.peakFootprintBytes).toBeGreaterThan(0);
    expect(result.fragmentation).toBeNull();
    expect(result.fragmentationNote).toMatch(/^n\/a: peak live 2100 bytes/);
  });
});
