// Reports of a comparison: the summary table for a terminal, and report/index.html, a single
// self-contained page (Chart.js inlined, data embedded) that works opened from disk, offline.
//
// The page holds: the summary table; per workload, live bytes and each allocator's footprint
// along the trace; fragmentation per workload and allocator; and per pymalloc allocator and
// workload, a map of its arenas at the end of the workload (one cell per pool, coloured by
// state and fullness), where an arena kept alive by a handful of blocks stands out.

import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import type { Comparison } from './compare.js';
import type { NativeResult } from './native.js';
import type { ArenaMap } from './pymalloc.js';
import type { ReplayResult } from './replay.js';

const MiB = 1024 * 1024;

// ---- the terminal table -------------------------------------------------------------------------

function mib(bytes: number): string {
  return (bytes / MiB).toFixed(2);
}

type Row = ReplayResult | NativeResult;

const COLUMNS: readonly { title: string; cell: (row: Row) => string; left?: boolean }[] = [
  { title: 'workload', cell: (r) => r.workload, left: true },
  { title: 'allocator', cell: (r) => r.allocator, left: true },
  { title: 'ops', cell: (r) => String(r.ops) },
  { title: 'ns/op', cell: (r) => (r.nsPerOp === null ? '-' : r.nsPerOp.toFixed(1)) },
  { title: 'peak live MiB', cell: (r) => mib(r.peakLiveBytes) },
  { title: 'peak footprint MiB', cell: (r) => mib(r.peakFootprintBytes) },
  { title: 'fragmentation', cell: (r) => (r.failure !== undefined ? 'FAILED' : r.fragmentation === null ? 'n/a' : r.fragmentation.toFixed(2)) },
  { title: 'at peak live MiB', cell: (r) => ('footprintAtPeakLiveBytes' in r ? mib(r.footprintAtPeakLiveBytes) : '-') },
  { title: 'final MiB', cell: (r) => mib(r.finalFootprintBytes) },
];

/** The rows of one workload: the Wasm allocators, then the native reference. */
function rowsByWorkload(comparison: Comparison): Row[][] {
  return comparison.workloads.map(({ name }) => [
    ...comparison.results.filter((r) => r.workload === name),
    ...comparison.native.filter((r) => r.workload === name),
  ]);
}

/** The summary table, as printed on a terminal. */
export function formatSummary(comparison: Comparison): string {
  const cells = rowsByWorkload(comparison).map((rows) => rows.map((row) => COLUMNS.map((c) => c.cell(row))));
  const widths = COLUMNS.map((c, i) => Math.max(c.title.length, ...cells.flat().map((row) => row[i].length)));
  const line = (values: readonly string[]) =>
    values.map((v, i) => (COLUMNS[i].left ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ').trimEnd();
  const out = [line(COLUMNS.map((c) => c.title)), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const group of cells) {
    for (const row of group) out.push(line(row));
    out.push('');
  }
  out.push('footprint: the module\'s whole Wasm memory, replayed one op per call with nothing but the allocator in it');
  out.push('(Wasm memory never shrinks, so final = peak); fragmentation = peak footprint / peak live bytes (Johnstone &');
  out.push('Wilson), n/a below 64 KiB live. ns/op: median of the timed runs in Wasm, after an untimed warm-up run.');
  if (comparison.native.length > 0) {
    out.push(`native rows: glibc malloc in a C program, not Wasm; footprint = mallinfo2 arena + hblkhd at its peak.`);
  }
  for (const { workload, failure } of [...comparison.results, ...comparison.native]) {
    if (failure !== undefined) out.push(`FAILED on ${workload}: ${failure.message}`);
  }
  for (const { allocator, reason } of comparison.skipped) out.push(`${allocator}: ${reason}`);
  return out.join('\n');
}

// ---- the HTML page ------------------------------------------------------------------------------

/** Chart.js's UMD build, from node_modules, for inlining. */
function chartJsSource(): string {
  const require = createRequire(import.meta.url);
  const entry = require.resolve('chart.js');
  return readFileSync(join(dirname(entry), 'chart.umd.min.js'), 'utf8');
}

/** Script text that cannot end the <script> element it is inlined in. */
function scriptSafe(source: string): string {
  return source.replace(/<\/(script)/gi, '<\\/$1');
}

/** JSON that cannot end the <script> element it is inlined in: every '<' escaped. */
function jsonSafe(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Arenas whose blocks fill at most this fraction of the pools they have carved are "pinned". */
const PINNED_FILL = 0.05;

interface MapSummary {
  arenas: number;
  shown: number;
  blocks: number;
  pinned: number;
}

function summarizeMap(map: ArenaMap): MapSummary {
  let blocks = 0;
  let pinned = 0;
  for (const arena of map.arenas) {
    let used = 0;
    let capacity = 0;
    for (const pool of arena.pools) {
      used += pool.blocksInUse;
      capacity += pool.capacity;
    }
    blocks += used;
    if (used > 0 && used <= capacity * PINNED_FILL) pinned++;
  }
  return { arenas: map.arenasAttached, shown: map.arenas.length, blocks, pinned };
}

/** What the page's script draws from: the results without what it does not need. */
function pageData(comparison: Comparison) {
  return {
    workloads: comparison.workloads,
    results: comparison.results.map(({ arenaMap, debugMallocStats: _stats, ...rest }) => ({
      ...rest,
      arenaMap: arenaMap && {
        ...summarizeMap(arenaMap),
        poolSize: arenaMap.poolSize,
        arenaSize: arenaMap.arenaSize,
        // Per arena: [index, [[state, blockSize, blocksInUse, capacity] per pool]].
        rows: arenaMap.arenas.map((a) => [a.index, a.pools.map((p) => [['never-used', 'empty', 'used', 'full'].indexOf(p.state), p.blockSize, p.blocksInUse, p.capacity])]),
      },
    })),
    native: comparison.native,
  };
}

function summaryTableHtml(comparison: Comparison): string {
  const head = COLUMNS.map((c) => `<th>${escapeHtml(c.title)}</th>`).join('');
  const body = rowsByWorkload(comparison)
    .flatMap((rows) =>
      rows.map((row) => {
        const native = !('samples' in row);
        const cells = COLUMNS.map((c) => `<td${c.left ? '' : ' class="n"'}>${escapeHtml(c.cell(row))}</td>`).join('');
        return `<tr${native ? ' class="native"' : ''}>${cells}</tr>`;
      }),
    )
    .join('\n');
  return `<table id="summary"><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 13px; } td, th { padding: 2px 8px; border-bottom: 1px solid #eee; }
th { text-align: left; background: #f4f4f4; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.native td { font-style: italic; color: #555; }
.chart { position: relative; height: 320px; margin: 1em 0 2em; }
.note { color: #555; font-size: 13px; max-width: 60em; }
.legend span { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; vertical-align: middle; border: 1px solid #999; }
canvas.arenas { border: 1px solid #ddd; image-rendering: pixelated; }
details { margin: .5em 0; }
`;

/** Draws every chart and arena map from the embedded data; sets window.chartsRendered. */
const PAGE_SCRIPT = `
const data = JSON.parse(document.getElementById('data').textContent);
const MiB = 1024 * 1024;
const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
const allocators = [...new Set(data.results.map((r) => r.allocator))];
const colour = (name) => palette[allocators.indexOf(name) % palette.length];
Chart.defaults.animation = false;
let charts = 0;
data.workloads.forEach((workload, w) => {
  const results = data.results.filter((r) => r.workload === workload.name);
  if (results.length === 0) return;
  const first = results[0].samples;
  const datasets = [{
    label: 'live bytes requested', borderColor: '#000', borderDash: [6, 3], pointRadius: 0, borderWidth: 2,
    data: first.op.map((op, i) => ({ x: op, y: first.liveBytes[i] / MiB })),
  }, ...results.map((r) => ({
    label: r.allocator + ' footprint', borderColor: colour(r.allocator), pointRadius: 0, borderWidth: 1.5,
    data: r.samples.op.map((op, i) => ({ x: op, y: r.samples.footprintBytes[i] / MiB })),
  }))];
  new Chart(document.getElementById('curve-' + w), {
    type: 'line', data: { datasets },
    options: { maintainAspectRatio: false, parsing: false, normalized: true,
      scales: { x: { type: 'linear', title: { display: true, text: 'op' } }, y: { title: { display: true, text: 'MiB' }, beginAtZero: true } },
      plugins: { title: { display: true, text: workload.name + ': live bytes and footprint along the trace' } } },
  });
  charts++;
});
const labels = data.workloads.map((w) => w.name);
const fragSets = allocators.map((a) => ({ label: a, backgroundColor: colour(a),
  data: labels.map((w) => { const r = data.results.find((x) => x.workload === w && x.allocator === a); return r ? r.fragmentation : null; }) }));
if (data.native.length > 0) fragSets.push({ label: 'native glibc (not Wasm)', backgroundColor: '#bbb', borderColor: '#555', borderWidth: 1,
  data: labels.map((w) => { const r = data.native.find((x) => x.workload === w); return r ? r.fragmentation : null; }) });
new Chart(document.getElementById('fragmentation'), {
  type: 'bar', data: { labels, datasets: fragSets },
  options: { maintainAspectRatio: false, scales: { y: { type: 'logarithmic', title: { display: true, text: 'peak footprint / peak live (log scale)' } } },
    plugins: { title: { display: true, text: 'Fragmentation (Johnstone & Wilson): 1 is perfect' } } },
});
charts++;
const CELL = 12;
const stateColour = (state, used, capacity) => {
  if (state === 0) return '#f2f2f2';
  if (state === 1) return '#bfe0ff';
  if (state === 3) return '#8b0000';
  const fill = capacity > 0 ? used / capacity : 0;
  return 'hsl(' + (50 - 45 * fill) + ', 95%, ' + (70 - 30 * fill) + '%)';
};
let maps = 0;
document.querySelectorAll('canvas.arenas').forEach((canvas) => {
  const map = data.results[Number(canvas.dataset.result)].arenaMap;
  const pools = map.rows.length > 0 ? map.rows[0][1].length : 0;
  const columns = Math.min(pools, 64);
  const rowsPerArena = Math.ceil(pools / columns) || 1;
  canvas.width = Math.max(1, columns * CELL);
  canvas.height = Math.max(1, map.rows.length * (rowsPerArena * CELL + 3));
  const g = canvas.getContext('2d');
  map.rows.forEach(([, poolRecords], a) => {
    poolRecords.forEach(([state, , used, capacity], p) => {
      g.fillStyle = stateColour(state, used, capacity);
      const x = (p % columns) * CELL, y = a * (rowsPerArena * CELL + 3) + Math.floor(p / columns) * CELL;
      g.fillRect(x, y, CELL - 1, CELL - 1);
    });
  });
  canvas.title = 'one row per arena, one cell per pool';
  maps++;
});
window.chartsRendered = charts;
window.arenaMapsRendered = maps;
`;

function arenaSections(comparison: Comparison): string {
  const sections: string[] = [];
  comparison.results.forEach((result, i) => {
    const map = result.arenaMap;
    if (map === undefined) return;
    const s = summarizeMap(map);
    const kib = (n: number) => `${n / 1024} KiB`;
    const truncated = s.shown < s.arenas ? ` (the first ${s.shown} shown)` : '';
    sections.push(`<details${sections.length === 0 ? ' open' : ''}><summary>${escapeHtml(result.allocator)} on ${escapeHtml(result.workload)}: ${s.arenas} arenas${truncated}, ${s.blocks} blocks in use, <b>${s.pinned}</b> arenas pinned by blocks filling ≤ ${PINNED_FILL * 100}% of their carved pools</summary>
<p class="note">Arenas of ${kib(map.arenaSize)}, pools of ${kib(map.poolSize)}, at the end of the workload before the final frees.</p>
<canvas class="arenas" data-result="${i}"></canvas></details>`);
  });
  if (sections.length === 0) return '<p>No pymalloc allocator was run.</p>';
  return `<p class="legend">pool state:<span style="background:#f2f2f2"></span>never used<span style="background:#bfe0ff"></span>empty
<span style="background:hsl(50,95%,70%)"></span>used, nearly empty<span style="background:hsl(5,95%,40%)"></span>used, nearly full<span style="background:#8b0000"></span>full</p>
<p class="note">An arena is returned only when all its pools are empty: a row with a single coloured cell is an arena (and its memory) kept by a few live blocks.</p>
${sections.join('\n')}`;
}

/** The whole page. */
export function renderReport(comparison: Comparison, generated = new Date()): string {
  const curves = comparison.workloads
    .map((w, i) => `<h3>${escapeHtml(w.name)}</h3><p class="note">${escapeHtml(w.description)}; ${w.ops} ops.</p><div class="chart"><canvas id="curve-${i}"></canvas></div>`)
    .join('\n');
  const skipped = comparison.skipped.map((s) => `<li>${escapeHtml(s.allocator)}: ${escapeHtml(s.reason)}</li>`).join('');
  const data = jsonSafe(pageData(comparison));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pymalloc-wasm: allocator comparison</title>
<style>${STYLE}</style></head><body>
<h1>Allocator comparison</h1>
<p class="note">Generated ${escapeHtml(generated.toISOString())} by pymalloc-wasm on Node ${escapeHtml(process.version)}.
Every Wasm allocator runs the same ops on fresh instances. <b>Footprint</b> is the module's whole Wasm memory
(memory.buffer.byteLength), replayed one op per call with nothing but the allocator in it; Wasm memory never shrinks, so the
final footprint after every block is freed equals the peak. <b>Fragmentation</b> is peak footprint / peak live bytes requested
(Johnstone &amp; Wilson, ISMM 1998; n/a below 64 KiB live); the two peaks may come at different times. <b>ns/op</b> is the median
of the timed runs of the driver's loop in Wasm, after an untimed warm-up run. Rows in italics are <b>native glibc, not Wasm</b>
(a C program replaying the same ops; footprint = the exact peak of mallinfo2 arena + hblkhd).</p>
${skipped ? `<ul>${skipped}</ul>` : ''}
<h2>Summary</h2>
${summaryTableHtml(comparison)}
<h2>Footprint and live bytes along each workload</h2>
${curves}
<h2>Fragmentation</h2>
<div class="chart"><canvas id="fragmentation"></canvas></div>
<h2>pymalloc's arenas</h2>
${arenaSections(comparison)}
<script>${scriptSafe(chartJsSource())}</script>
<script type="application/json" id="data">${data}</script>
<script>${PAGE_SCRIPT}</script>
</body></html>
`;
}

/** Writes index.html and results.json into `dir`; returns the page's path. */
export async function writeReport(dir: string, comparison: Comparison): Promise<string> {
  await mkdir(dir, { recursive: true });
  const page = join(dir, 'index.html');
  await writeFile(page, renderReport(comparison));
  const { results, native, skipped, workloads } = comparison;
  const plain = results.map(({ samples: _samples, arenaMap: _map, debugMallocStats: _stats, ...rest }) => rest);
  await writeFile(join(dir, 'results.json'), JSON.stringify({ workloads, results: plain, native, skipped }, null, 2) + '\n');
  return page;
}
