// The race in the comparison's report: `pymalloc compare` runs a short race and the page draws
// it (lost updates per run under 'gil', 'free-threaded' and 'none', throughput against workers), opened from disk
// in headless Chromium; --no-race leaves it out.

import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';

import { pymalloc } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);

const COMPARE = ['compare', '--workload', 'plateau', '--allocators', 'bump', '--scale', '0.01', '--no-native'];

let dir: string;
let withRace: string;
let withoutRace: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pymalloc-race-report-'));
  withRace = join(dir, 'with');
  withoutRace = join(dir, 'without');
  const [raced, plain] = await Promise.all([pymalloc(...COMPARE, '--out', withRace), pymalloc(...COMPARE, '--out', withoutRace, '--no-race')]);
  expect(raced.code).toBe(0);
  expect(plain.code).toBe(0);
});

describe('pymalloc compare and the race', () => {
  it("writes the race's document beside the report, as pymalloc race --json prints it", async () => {
    const race = JSON.parse(await readFile(join(withRace, 'race.json'), 'utf8'));
    expect(Object.keys(race)).toEqual(['results', 'price', 'failures']);
    expect(race.results).toHaveLength(2 * 3 * 3);
    for (const row of race.results.filter((r: { mode: string }) => r.mode !== 'none')) {
      expect(row).toMatchObject({ workers: 2, opsPerWorker: 200_000, lostUpdates: 0, duplicateBlocks: 0, checkPassed: true });
    }
    expect(race.price.map((p: { mode: string; workers: number }) => `${p.mode}x${p.workers}`)).toEqual(['unsharedx1', 'nonex1', 'gilx1', 'gilx2', 'free-threadedx1', 'free-threadedx2']);
    const html = await readFile(join(withRace, 'index.html'), 'utf8');
    expect(html).toContain('<h2>The race the GIL prevents</h2>');
    expect(html).toContain('pymalloc race --workers 2 --ops 200000 --runs 3');
  });

  it('leaves the race out with --no-race', async () => {
    expect(existsSync(join(withoutRace, 'race.json'))).toBe(false);
    expect(await readFile(join(withoutRace, 'index.html'), 'utf8')).not.toContain('The race the GIL prevents');
  });
});

describe.skipIf(!hasChromium)('the race section in headless Chromium', () => {
  let browser: Browser;

  beforeAll(async () => {
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
  });

  afterAll(async () => {
    await browser?.close();
  });

  async function open(report: string) {
    const tab = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    tab.on('pageerror', (error) => errors.push(String(error)));
    await tab.route('**/*', (route) => (route.request().url().startsWith('file:') ? route.continue() : route.abort()));
    await tab.goto(pathToFileURL(join(report, 'index.html')).href);
    await tab.waitForFunction(() => (window as unknown as { chartsRendered?: number }).chartsRendered !== undefined, null, { timeout: 20_000 });
    return { tab, errors };
  }

  it('draws lost updates per run for both tests, and throughput against workers with the unshared heap as a line', async () => {
    const { tab, errors } = await open(withRace);
    expect(errors).toEqual([]);
    const race = JSON.parse(await readFile(join(withRace, 'race.json'), 'utf8'));
    const charts = await tab.evaluate(() => {
      type ChartLike = { canvas: HTMLCanvasElement; data: { labels?: unknown[]; datasets: { label: string; data: unknown[] }[] } };
      const w = window as unknown as { raceCharts: ChartLike[] };
      return w.raceCharts.map((c) => ({ id: c.canvas.id, labels: c.data.labels, datasets: c.data.datasets.map((d) => ({ label: d.label, data: d.data })) }));
    });
    expect(charts.map((c) => c.id)).toEqual(['race-refcount', 'race-alloc', 'race-throughput']);
    const [refcount, alloc, throughput] = charts;
    const lost = (test: string, mode: string, key = 'lostUpdates') =>
      race.results.filter((r: { test: string; mode: string }) => r.test === test && r.mode === mode).map((r: Record<string, unknown>) => r[key]);
    expect(refcount.datasets).toEqual([
      { label: "'gil': increfs lost", data: [0, 0, 0] },
      { label: "'free-threaded': increfs lost", data: [0, 0, 0] },
      { label: "'none': increfs lost", data: lost('refcount', 'none') },
    ]);
    expect(alloc.datasets.map((d) => d.label)).toEqual([
      "'gil': blocks miscounted", "'gil': blocks handed out twice", "'free-threaded': blocks miscounted", "'free-threaded': blocks handed out twice",
      "'none': blocks miscounted", "'none': blocks handed out twice",
    ]);
    for (const exact of [0, 1, 2, 3]) expect(alloc.datasets[exact].data).toEqual([0, 0, 0]);
    expect(alloc.datasets[4].data).toEqual(lost('alloc', 'none'));
    expect(alloc.datasets[5].data).toEqual(lost('alloc', 'none', 'duplicateBlocks'));
    // A run whose check failed says so under its bars.
    race.results.filter((r: { test: string }) => r.test === 'alloc').forEach((r: { runs: number; mode: string; checkPassed: boolean }) => {
      expect((alloc.labels![r.runs - 1] as string[]).includes(`'${r.mode}': check FAILED`)).toBe(!r.checkPassed);
    });
    const mops = (p: { opsPerSecond: number }) => p.opsPerSecond / 1e6;
    const line = (mode: string) => race.price.filter((p: { mode: string }) => p.mode === mode).map((p: { workers: number; opsPerSecond: number }) => ({ x: p.workers, y: mops(p) }));
    const unshared = race.price.find((p: { mode: string }) => p.mode === 'unshared');
    expect(throughput.datasets).toEqual([
      { label: "shared heap, 'gil'", data: line('gil') },
      { label: "shared heap, 'free-threaded'", data: line('free-threaded') },
      { label: 'unshared heap, one thread', data: [{ x: 1, y: mops(unshared) }, { x: 2, y: mops(unshared) }] },
    ]);
    const rows = await tab.evaluate(() => Array.from(document.querySelectorAll('#race tbody tr')).map((tr) => tr.textContent));
    expect(rows).toHaveLength(18);
    const inked = await tab.evaluate(() =>
      ['race-refcount', 'race-alloc', 'race-throughput'].map((id) => {
        const canvas = document.getElementById(id) as HTMLCanvasElement;
        const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
        let painted = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) painted++;
        return painted;
      }),
    );
    for (const painted of inked) expect(painted).toBeGreaterThan(100);
    await tab.close();
  });

  it('draws no race chart without a race', async () => {
    const { tab, errors } = await open(withoutRace);
    expect(errors).toEqual([]);
    expect(await tab.evaluate(() => (window as unknown as { raceCharts: unknown[] }).raceCharts.length)).toBe(0);
    await tab.close();
  });
});
