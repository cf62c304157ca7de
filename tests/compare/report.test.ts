// The HTML report, opened from disk in Debian's headless Chromium (scripts/install-chromium.sh):
// the charts and arena maps must have rendered, offline, and a screenshot must be a real PNG.

import { existsSync } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';

import { compare } from '../../src/tools/compare/compare.js';
import { renderReport, writeReport } from '../../src/tools/compare/report.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OUT = join(ROOT, 'build', 'test-report');
const SCREENSHOT = join(ROOT, 'build', 'test-report', 'screenshot.png');
const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

const WORKLOADS = ['peak', 'interleaved'];
const ALLOCATORS = ['pymalloc-3.12', 'pymalloc-3.7', 'tlsf', 'bump'];

let page: string;

beforeAll(async () => {
  const comparison = await compare({ workloads: WORKLOADS, allocators: ALLOCATORS, scale: 0.1, native: true });
  await mkdir(OUT, { recursive: true });
  page = await writeReport(OUT, comparison);
});

describe('the report page', () => {
  it('is self-contained: no script, style or image is fetched', async () => {
    const html = await readFile(page, 'utf8');
    expect(html).not.toMatch(/<script[^>]+src=/);
    expect(html).not.toMatch(/<link[^>]+href=/);
    expect(html).not.toMatch(/https?:\/\/[^"'\s]*\.(js|css)/);
    expect(html).toContain('native glibc (not Wasm)');
  });

  it("says what to know about mimalloc's large blocks when mimalloc ran, and only then", async () => {
    const withMimalloc = renderReport(await compare({ workloads: ['lifo'], allocators: ['mimalloc', 'bump'], scale: 0.01 }));
    expect(withMimalloc).toContain('<h3>About the allocators</h3>');
    expect(withMimalloc).toContain('mimalloc 2.0.9 on wasm32 never reuses the memory of a freed block larger than 2 MiB');
    expect(renderReport(await compare({ workloads: ['lifo'], allocators: ['bump'], scale: 0.01 }))).not.toContain('About the allocators');
  });

  it('escapes what could end its scripts', async () => {
    const comparison = await compare({ workloads: ['lifo'], allocators: ['bump'], scale: 0.01 });
    comparison.workloads[0].description = '</script><b>';
    const html = renderReport(comparison);
    expect(html).not.toContain('</script><b>');
  });
});

describe.skipIf(!hasChromium)('the report in headless Chromium', () => {
  let browser: Browser;
  let tab: Page;
  const errors: string[] = [];

  beforeAll(async () => {
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    tab = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    tab.on('pageerror', (error) => errors.push(String(error)));
    // Offline: any request beyond the page itself fails the test.
    await tab.route('**/*', (route) => (route.request().url().startsWith('file:') ? route.continue() : route.abort()));
    await tab.goto(pathToFileURL(page).href);
    await tab.waitForFunction(() => (window as unknown as { chartsRendered?: number }).chartsRendered !== undefined, null, { timeout: 20_000 });
  });

  afterAll(async () => {
    await browser?.close();
  });

  it('renders one curve per workload, the fragmentation bars and the arena maps', async () => {
    expect(errors).toEqual([]);
    const counts = await tab.evaluate(() => {
      const w = window as unknown as { chartsRendered: number; arenaMapsRendered: number; Chart: { instances: object } };
      return { charts: w.chartsRendered, instances: Object.keys(w.Chart.instances).length, maps: w.arenaMapsRendered };
    });
    expect(counts).toEqual({ charts: WORKLOADS.length + 1, instances: WORKLOADS.length + 1, maps: 2 * WORKLOADS.length });
  });

  it('draws on every canvas', async () => {
    const inked = await tab.evaluate(() =>
      Array.from(document.querySelectorAll('canvas')).map((canvas) => {
        const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
        let painted = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) painted++;
        return painted;
      }),
    );
    expect(inked.length).toBe(WORKLOADS.length + 1 + 2 * WORKLOADS.length);
    for (const painted of inked) expect(painted).toBeGreaterThan(100);
  });

  it('answers at a glance: a fragmentation and an ns/op matrix, one row per workload, the best marked', async () => {
    const matrices = await tab.evaluate(() =>
      ['matrix-fragmentation', 'matrix-ns'].map((id) => {
        const table = document.getElementById(id)!;
        const head = Array.from(table.querySelectorAll('thead th')).map((th) => th.textContent);
        const rows = Array.from(table.querySelectorAll<HTMLTableRowElement>('tbody tr')).map((tr) => ({
          workload: tr.cells[0].textContent,
          best: Array.from(tr.querySelectorAll('td.best')).map((td) => head[(td as HTMLTableCellElement).cellIndex]),
          values: Array.from(tr.querySelectorAll('td.n')).map((td) => Number.parseFloat(td.textContent!)),
        }));
        return { head, rows };
      }),
    );
    for (const { head, rows } of matrices) {
      expect(head).toEqual(['workload', ...ALLOCATORS, 'native glibc (not Wasm)']);
      expect(rows.map((r) => r.workload)).toEqual(WORKLOADS);
      for (const row of rows) {
        // The best is the smallest Wasm figure of the row (the last column is native glibc).
        const wasm = row.values.slice(0, ALLOCATORS.length);
        const best = Math.min(...wasm);
        expect(row.best).toEqual(ALLOCATORS.filter((_, i) => wasm[i] === best));
      }
    }
    for (const value of matrices[0].rows.flatMap((r) => r.values)) expect(value).toBeGreaterThanOrEqual(1);
  });

  it('keeps every shown footprint line apart from the others, and would not with bump shown', async () => {
    // Two allocators whose peak footprints differ by 10% or more must be drawn at least 4 px
    // apart at their peaks: otherwise one line hides the other on the chart.
    const apart = await tab.evaluate(() => {
      type Point = { y: number };
      type Dataset = { allocator?: string; data: Point[] };
      type ChartLike = {
        data: { datasets: Dataset[] };
        isDatasetVisible(i: number): boolean;
        setDatasetVisibility(i: number, visible: boolean): void;
        update(): void;
        scales: { y: { getPixelForValue(v: number): number } };
      };
      const squashed = (chart: ChartLike) => {
        const peaks = chart.data.datasets
          .map((d, i) => ({ d, i }))
          .filter(({ d, i }) => d.allocator !== undefined && chart.isDatasetVisible(i))
          .map(({ d }) => ({ allocator: d.allocator!, peak: Math.max(...d.data.map((p) => p.y)) }));
        const pairs: string[] = [];
        for (const a of peaks) {
          for (const b of peaks) {
            if (a.allocator >= b.allocator || Math.abs(a.peak - b.peak) < 0.1 * Math.max(a.peak, b.peak)) continue;
            const px = Math.abs(chart.scales.y.getPixelForValue(a.peak) - chart.scales.y.getPixelForValue(b.peak));
            if (px < 4) pairs.push(`${a.allocator}/${b.allocator}`);
          }
        }
        return pairs;
      };
      const charts = (window as unknown as { footprintCharts: ChartLike[] }).footprintCharts;
      const shown = charts.map(squashed);
      const withBump = charts.map((chart) => {
        chart.data.datasets.forEach((d, i) => d.allocator === 'bump' && chart.setDatasetVisibility(i, true));
        chart.update();
        const pairs = squashed(chart);
        chart.data.datasets.forEach((d, i) => d.allocator === 'bump' && chart.setDatasetVisibility(i, false));
        chart.update();
        return pairs;
      });
      return { shown, withBump };
    });
    expect(apart.shown).toEqual(WORKLOADS.map(() => []));
    // bump on interleaved reaches hundreds of times the live bytes: the others collapse.
    expect(apart.withBump[WORKLOADS.indexOf('interleaved')].length).toBeGreaterThan(0);
  });

  it('makes a screenshot that is a real PNG', async () => {
    await tab.screenshot({ path: SCREENSHOT, fullPage: true });
    const png = await readFile(SCREENSHOT);
    expect([...png.subarray(0, 8)]).toEqual(PNG_SIGNATURE);
    expect(png.subarray(12, 16).toString('latin1')).toBe('IHDR');
    expect(png.readUInt32BE(16)).toBe(1200);
    expect(png.readUInt32BE(20)).toBeGreaterThan(1500);
    expect((await stat(SCREENSHOT)).size).toBeGreaterThan(50_000);
  });
});

if (!hasChromium) {
  describe('the report in headless Chromium', () => {
    it.skip(`needs ${CHROMIUM}: run scripts/install-chromium.sh`, () => {});
  });
}
