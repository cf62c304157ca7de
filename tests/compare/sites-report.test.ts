// The report's call-site section: live bytes by site at the peak (a chart) and, per pymalloc
// allocator, the arenas each site's blocks hold at the end, for traces written here with known
// sites; a trace without sites gets neither. The chart is checked in headless Chromium.

import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

import { compare } from '../../src/tools/compare/compare.js';
import { renderReport, workloadSites, writeReport, TOP_SITES } from '../../src/tools/compare/report.js';

const CHROMIUM = '/usr/bin/chromium';
const SITES = 17;
const ARENA = 1024 * 1024;

let dir: string;
let chartTrace: string;
let pinTrace: string;
let plainTrace: string;

/** Site k (1..17) of a module that does not exist: k blocks of 100·k bytes, all live at the end. */
function chartTraceText(): string {
  const lines = ['# pymalloc-trace v1'];
  let id = 0;
  for (let k = 1; k <= SITES; k++) {
    lines.push(`# site ${k} 0x${(0x1000 + k).toString(16)} - /nonexistent/prog`);
    for (let b = 0; b < k; b++) lines.push(`a ${id++} ${100 * k} ${k}`);
  }
  return lines.join('\n') + '\n';
}

/**
 * Site 1 allocates one 32-byte block first (in the first arena), site 2 then 12,288 blocks of 256
 * bytes (three arenas' worth under pymalloc-3.12) and frees all but the last, site 3 one 1000-byte
 * block (above the small-request threshold: the raw allocator's).
 */
const FILLER = 12_288;
function pinTraceText(): string {
  const lines = ['# pymalloc-trace v1', '# site 1 0x10 - /nonexistent/keeper', 'a 0 32 1', '# site 2 0x20 - /nonexistent/filler'];
  for (let id = 1; id <= FILLER; id++) lines.push(`a ${id} 256 2`);
  for (let id = 1; id < FILLER; id++) lines.push(`f ${id}`);
  lines.push('# site 3 0x30 - /nonexistent/big', `a ${FILLER + 1} 1000 3`);
  return lines.join('\n') + '\n';
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sites-report-'));
  chartTrace = join(dir, 'chart.trace');
  pinTrace = join(dir, 'pin.trace');
  plainTrace = join(dir, 'plain.trace');
  await writeFile(chartTrace, chartTraceText());
  await writeFile(pinTrace, pinTraceText());
  await writeFile(plainTrace, '# pymalloc-trace v1\na 0 100\na 1 200\nf 0\n');
});

describe('the call-site section of the report', () => {
  it('has the 15 largest sites at the peak as bars and the rest summed as "other"', async () => {
    const comparison = await compare({ workloads: [`trace:${chartTrace}`], allocators: ['bump'], repeat: 1 });
    const [sites, ...more] = await workloadSites(comparison);
    expect(more).toEqual([]);
    expect(sites.peakOp).toBe((SITES * (SITES + 1)) / 2);
    const expected = [];
    for (let k = SITES; k > SITES - TOP_SITES; k--) {
      expected.push({ label: `prog+0x${(0x1000 + k).toString(16)}`, liveBytes: 100 * k * k, liveBlocks: k });
    }
    expected.push({ label: 'other (2 sites)', liveBytes: 100 * 1 + 100 * 4, liveBlocks: 3 });
    expect(sites.bars).toEqual(expected);
    expect(sites.pinning).toEqual([]);
  });

  it('is absent for a trace without sites', async () => {
    const comparison = await compare({ workloads: [`trace:${plainTrace}`, 'lifo'], allocators: ['pymalloc-3.12'], scale: 0.01, repeat: 1 });
    const sites = await workloadSites(comparison);
    expect(sites).toEqual([]);
    const html = renderReport(comparison, new Date(), sites);
    expect(html).not.toContain('Live bytes by call site');
    expect(html).not.toContain('id="sites-0"');
  });

  it("shows the arena a site's single long-lived block keeps alive under pymalloc-3.12", async () => {
    const comparison = await compare({ workloads: [`trace:${pinTrace}`], allocators: ['pymalloc-3.12'], repeat: 1 });
    const [{ pinning }] = await workloadSites(comparison);
    expect(pinning).toEqual([
      {
        allocator: 'pymalloc-3.12', arenaSize: ARENA, arenasAttached: 2, arenasMapped: 2, blocks: 3, outsideArenas: 1, emptyArenas: 0,
        sites: [
          { label: 'keeper+0x10', blocks: 1, arenas: 1, onlyArenas: 1 },
          { label: 'filler+0x20', blocks: 1, arenas: 1, onlyArenas: 1 },
        ],
      },
    ]);
  });
});

describe.skipIf(!existsSync(CHROMIUM))('the call-site chart in headless Chromium', () => {
  it('draws one horizontal bar per site, in KiB, beside the pinning table', async () => {
    const comparison = await compare({ workloads: [`trace:${chartTrace}`, `trace:${pinTrace}`], allocators: ['pymalloc-3.12'], repeat: 1 });
    const page = await writeReport(join(dir, 'report'), comparison);
    expect(await readFile(page, 'utf8')).toContain('kept alive only by its blocks');
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] });
    try {
      const tab = await browser.newPage();
      const errors: string[] = [];
      tab.on('pageerror', (error) => errors.push(String(error)));
      await tab.goto(pathToFileURL(page).href);
      await tab.waitForFunction(() => (window as unknown as { chartsRendered?: number }).chartsRendered !== undefined, null, { timeout: 20_000 });
      const drawn = await tab.evaluate(() => {
        type Drawn = { config: { options: { indexAxis: string } }; data: { labels: string[]; datasets: { data: number[] }[] } };
        const w = window as unknown as { siteCharts: Drawn[]; chartsRendered: number };
        const table = document.getElementById('pinning-1-pymalloc-3.12')!;
        return {
          charts: w.chartsRendered,
          axes: w.siteCharts.map((c) => c.config.options.indexAxis),
          labels: w.siteCharts.map((c) => c.data.labels),
          kib: w.siteCharts.map((c) => c.data.datasets[0].data),
          pinning: Array.from(table.querySelectorAll('tbody tr')).map((tr) => Array.from(tr.querySelectorAll('td')).map((td) => td.textContent)),
        };
      });
      expect(errors).toEqual([]);
      // Two footprint curves, the fragmentation bars, two site charts.
      expect(drawn.charts).toBe(5);
      expect(drawn.axes).toEqual(['y', 'y']);
      expect(drawn.labels[0]).toHaveLength(TOP_SITES + 1);
      expect(drawn.labels[0][0]).toBe('prog+0x1011');
      expect(drawn.kib[0][0]).toBe((100 * SITES * SITES) / 1024);
      // At the peak, before site 2's frees: site 3's block comes after.
      expect(drawn.labels[1]).toEqual(['filler+0x20', 'keeper+0x10']);
      expect(drawn.kib[1]).toEqual([(FILLER * 256) / 1024, 32 / 1024]);
      expect(drawn.pinning).toEqual([
        ['keeper+0x10', '1', '1', '1.00', '1', '1.00'],
        ['filler+0x20', '1', '1', '1.00', '1', '1.00'],
      ]);
    } finally {
      await browser.close();
    }
  });
});
