// Reports of a comparison: the summary table for a terminal, and report/index.html, a single
// self-contained page (Chart.js inlined, data embedded) that works opened from disk, offline.
//
// The page answers "which allocator is most compact, which fastest, on this workload" first: two
// matrices (workloads x allocators, fragmentation and ns/op, the best of each row marked, ratios
// to pymalloc-3.12 beneath). Then per workload, live bytes and each allocator's footprint along
// the trace; fragmentation per workload and allocator; per pymalloc allocator and workload, a
// map of its arenas at the end (one cell per pool, coloured by state and fullness), where an
// arena kept alive by a handful of blocks stands out; and last the full table.
//
// Readability rules of the charts: bump (a pointer that never frees: 4x to 460x the live bytes)
// starts hidden, since its scale would squash every other line against the axis (its legend
// entry shows it); axes end at the data; fragmentation is linear from 1; each allocator has
// its own colour and dash pattern.

import { readFileSync, type Stats } from 'node:fs';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

import { PEER_NOTES } from './allocators.js';
import { comparisonDocument, type Comparison, type WorkloadInfo } from './compare.js';
import { ReportDirectoryError } from './errors.js';
import type { NativeResult } from './native.js';
import type { ArenaMap } from './pymalloc.js';
import type { ReplayResult } from './replay.js';

const MiB = 1024 * 1024;

// ---- the terminal table -------------------------------------------------------------------------

function mib(bytes: number): string {
  return (bytes / MiB).toFixed(2);
}

type Row = ReplayResult | NativeResult;

/** The allocator the matrices give ratios to. */
export const REFERENCE_ALLOCATOR = 'pymalloc-3.12';

/** Allocators drawn hidden at first: their scale would hide everyone else's differences. */
export const HIDDEN_AT_FIRST: readonly string[] = ['bump'];

/** A workload's name as shown: a shipped or given trace by its file's base name. */
export function workloadLabel(name: string): string {
  const match = /^trace:(?:.*\/)?([^/]+?)(?:\.trace)?(?:\.gz)?$/.exec(name);
  return match ? `trace:${match[1]}` : name;
}

/** A matrix cell: a figure, or why there is none ("-": not run, "FAILED", "n/a": too small to tell). */
interface Cell {
  value?: number;
  text: string;
  /** The spread behind a median, as "min-max". */
  spread?: string;
}

/** One matrix: a row per workload, a cell per allocator. */
interface Matrix {
  title: string;
  allocators: string[];
  rows: { workload: string; cells: Cell[]; best: number }[];
}

interface Figure {
  title: string;
  value: (row: Row) => number | null;
  spread?: (row: Row) => [number | null, number | null];
  digits: number;
}

const FIGURES: readonly Figure[] = [
  { title: 'fragmentation (peak footprint / peak live; lower is better)', value: (r) => r.fragmentation, digits: 2 },
  { title: 'ns per op (median of the timed runs, min-max beneath; lower is better)', value: (r) => r.nsPerOp, spread: (r) => [r.nsPerOpMin, r.nsPerOpMax], digits: 1 },
];

function cellOf(row: Row | undefined, figure: Figure): Cell {
  if (row === undefined) return { text: '-' };
  if (row.failure !== undefined) return { text: 'FAILED' };
  const value = figure.value(row);
  if (value === null) return { text: 'n/a' };
  const [min, max] = figure.spread?.(row) ?? [null, null];
  const spread = min !== null && max !== null ? `${min.toFixed(figure.digits)}-${max.toFixed(figure.digits)}` : undefined;
  return { value, text: value.toFixed(figure.digits), ...(spread !== undefined && { spread }) };
}

function matrix(comparison: Comparison, figure: Figure): Matrix {
  const allocators = [...new Set(comparison.results.map((r) => r.allocator as string))];
  const wasm = allocators.length;
  if (comparison.native.length > 0) allocators.push(comparison.native[0].allocator);
  const rows = comparison.workloads.map(({ name }) => {
    const all: Row[] = [...comparison.results, ...comparison.native];
    const cells = allocators.map((allocator) => cellOf(all.find((r) => r.workload === name && r.allocator === allocator), figure));
    // The best of the row among the Wasm allocators: native glibc is the reference, not a contender.
    const best = Math.min(...cells.slice(0, wasm).flatMap((c) => (c.value !== undefined ? [c.value] : [])));
    return { workload: workloadLabel(name), cells, best };
  });
  return { title: figure.title, allocators, rows };
}

function matrices(comparison: Comparison): Matrix[] {
  return FIGURES.map((figure) => matrix(comparison, figure));
}

/** The ratio of a cell to the reference allocator's in the same row, as "x0.93". */
function ratioText(m: Matrix, cells: Cell[], i: number): string {
  const ref = m.allocators.indexOf(REFERENCE_ALLOCATOR);
  const value = cells[i].value;
  const reference = ref < 0 ? undefined : cells[ref].value;
  if (i === ref || value === undefined || !reference) return '';
  return `x${(value / reference).toFixed(2)}`;
}

function formatMatrix(m: Matrix): string[] {
  const head = ['workload', ...m.allocators];
  const body = m.rows.map((row) => [
    row.workload,
    ...row.cells.map((c, i) => `${c.text}${c.value === row.best ? '*' : ' '}${ratioText(m, row.cells, i).padStart(6)}`),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (values: string[]) => values.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ').trimEnd();
  return [m.title, line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)];
}

const COLUMNS: readonly { title: string; cell: (row: Row) => string; left?: boolean }[] = [
  { title: 'workload', cell: (r) => workloadLabel(r.workload), left: true },
  { title: 'allocator', cell: (r) => r.allocator, left: true },
  { title: 'ns/op', cell: (r) => (r.nsPerOp === null ? '-' : r.nsPerOp.toFixed(1)) },
  { title: 'min-max', cell: (r) => (r.nsPerOpMin === null || r.nsPerOpMax === null ? '-' : `${r.nsPerOpMin.toFixed(1)}-${r.nsPerOpMax.toFixed(1)}`) },
  { title: 'in grow', cell: (r) => ('growNsPerOp' in r && r.growNsPerOp !== null ? r.growNsPerOp.toFixed(1) : '-') },
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

/** What the importer of a trace workload had to mend, in words; undefined when it mended nothing. */
export function importNote(workload: WorkloadInfo): string | undefined {
  const skipped = workload.skippedFrees ?? 0;
  const implied = workload.impliedFrees ?? 0;
  if (skipped === 0 && implied === 0) return undefined;
  const parts = [
    ...(skipped > 0 ? [`${skipped} ${skipped === 1 ? 'free of a block' : 'frees of blocks'} allocated before tracing began skipped`] : []),
    ...(implied > 0 ? [`${implied} untraced ${implied === 1 ? 'free' : 'frees'} implied (an address allocated again while live)`] : []),
  ];
  return `${workload.name}: ${parts.join(', ')}`;
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
  out.push('ops per workload (each replay runs them, then one free per block still live, so that the');
  out.push('final footprint is the peak):');
  for (const w of comparison.workloads) out.push(`  ${workloadLabel(w.name)}: ${w.ops} ops + ${w.appendedFrees} frees appended`);
  out.push('');
  for (const m of matrices(comparison)) out.push(...formatMatrix(m), '');
  out.push(`* best Wasm allocator of the row; xN.NN: ratio to ${REFERENCE_ALLOCATOR}.`);
  out.push('footprint: the module\'s whole Wasm memory, replayed one op per call with nothing but the allocator in it');
  out.push('(Wasm memory never shrinks, so final = peak); fragmentation = peak footprint / peak live bytes (Johnstone &');
  out.push('Wilson), n/a below 64 KiB live. ns/op: median of the timed runs in Wasm, after an untimed warm-up run;');
  out.push('min-max: the fastest and slowest run; in grow: the part of ns/op spent in the ops that grew memory.');
  if (comparison.native.length > 0) {
    out.push(`native rows: glibc malloc in a C program, not Wasm; footprint = mallinfo2 arena + hblkhd at its peak.`);
  }
  for (const { workload, failure } of [...comparison.results, ...comparison.native]) {
    if (failure !== undefined) out.push(`FAILED on ${workload}: ${failure.message}`);
  }
  for (const workload of comparison.workloads) {
    const note = importNote(workload);
    if (note !== undefined) out.push(note);
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
    workloads: comparison.workloads.map((w) => ({ ...w, label: workloadLabel(w.name) })),
    hiddenAtFirst: HIDDEN_AT_FIRST,
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

function matrixHtml(m: Matrix, id: string): string {
  const head = ['workload', ...m.allocators].map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = m.rows
    .map((row) => {
      const cells = row.cells
        .map((c, i) => {
          const best = c.value !== undefined && c.value === row.best;
          const lines = [c.spread, ratioText(m, row.cells, i)].filter((x) => x).map((x) => `<br><small>${escapeHtml(x!)}</small>`).join('');
          return `<td class="n${best ? ' best' : ''}"${best ? ' title="best of the row"' : ''}>${escapeHtml(c.text)}${best ? ' ★' : ''}${lines}</td>`;
        })
        .join('');
      return `<tr><td>${escapeHtml(row.workload)}</td>${cells}</tr>`;
    })
    .join('\n');
  return `<h3>${escapeHtml(m.title)}</h3><table class="matrix" id="${id}"><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 13px; } td, th { padding: 2px 8px; border-bottom: 1px solid #eee; }
th { text-align: left; background: #f4f4f4; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.native td { font-style: italic; color: #555; }
table.matrix td.best { font-weight: bold; background: #e6f4ea; } table.matrix small { color: #666; }
.chart { position: relative; height: 320px; margin: 1em 0 2em; }
.note { color: #555; font-size: 13px; max-width: 60em; }
.legend span { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; vertical-align: middle; border: 1px solid #999; }
.legend span.gradient { width: 96px; }
canvas.arenas { border: 1px solid #ddd; image-rendering: pixelated; }
details { margin: .5em 0; }
`;

/** Draws every chart and arena map from the embedded data; sets window.chartsRendered. */
const PAGE_SCRIPT = `
const data = JSON.parse(document.getElementById('data').textContent);
const MiB = 1024 * 1024;
const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
const dashes = [[], [8, 4], [2, 3], [10, 3, 2, 3], [4, 4], [12, 6], [1, 2], [6, 2, 2, 2]];
const allocators = [...new Set(data.results.map((r) => r.allocator))];
const colour = (name) => palette[allocators.indexOf(name) % palette.length];
const dash = (name) => dashes[allocators.indexOf(name) % dashes.length];
const hiddenAtFirst = (name) => data.hiddenAtFirst.includes(name);
Chart.defaults.animation = false;
let charts = 0;
window.footprintCharts = [];
data.workloads.forEach((workload, w) => {
  const results = data.results.filter((r) => r.workload === workload.name);
  if (results.length === 0) return;
  const first = results[0].samples;
  const lastOp = first.op[first.op.length - 1];
  const datasets = [{
    label: 'live bytes requested', borderColor: '#000', borderDash: [6, 3], pointRadius: 0, borderWidth: 2,
    data: first.op.map((op, i) => ({ x: op, y: first.liveBytes[i] / MiB })),
  }, ...results.map((r) => ({
    label: r.allocator + ' footprint', allocator: r.allocator, borderColor: colour(r.allocator), borderDash: dash(r.allocator),
    pointRadius: 0, borderWidth: 2, hidden: hiddenAtFirst(r.allocator),
    data: r.samples.op.map((op, i) => ({ x: op, y: r.samples.footprintBytes[i] / MiB })),
  }))];
  window.footprintCharts.push(new Chart(document.getElementById('curve-' + w), {
    type: 'line', data: { datasets },
    options: { maintainAspectRatio: false, parsing: false, normalized: true,
      scales: { x: { type: 'linear', min: 0, max: lastOp, title: { display: true, text: 'op' } },
        y: { bounds: 'data', beginAtZero: true, title: { display: true, text: 'MiB' } } },
      plugins: { title: { display: true, text: workload.label + ': live bytes and footprint along the trace' } } },
  }));
  charts++;
});
const labels = data.workloads.map((w) => w.label);
const fragSets = allocators.map((a) => ({ label: a, backgroundColor: colour(a), hidden: hiddenAtFirst(a),
  data: data.workloads.map((w) => { const r = data.results.find((x) => x.workload === w.name && x.allocator === a); return r ? r.fragmentation : null; }) }));
if (data.native.length > 0) fragSets.push({ label: 'native glibc (not Wasm)', backgroundColor: '#bbb', borderColor: '#555', borderWidth: 1,
  data: data.workloads.map((w) => { const r = data.native.find((x) => x.workload === w.name); return r ? r.fragmentation : null; }) });
window.fragmentationChart = new Chart(document.getElementById('fragmentation'), {
  type: 'bar', data: { labels, datasets: fragSets },
  options: { maintainAspectRatio: false, scales: { y: { type: 'linear', min: 1, bounds: 'data', title: { display: true, text: 'peak footprint / peak live' } } },
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
    sections.push(`<details${sections.length === 0 ? ' open' : ''}><summary>${escapeHtml(result.allocator)} on ${escapeHtml(workloadLabel(result.workload))}: ${s.arenas} arenas${truncated}, ${s.blocks} blocks in use, <b>${s.pinned}</b> arenas pinned by blocks filling ≤ ${PINNED_FILL * 100}% of their carved pools</summary>
<p class="note">Arenas of ${kib(map.arenaSize)}, pools of ${kib(map.poolSize)}, at the end of the workload before the final frees.</p>
<canvas class="arenas" data-result="${i}"></canvas></details>`);
  });
  if (sections.length === 0) return '<p>No pymalloc allocator was run.</p>';
  return `<p class="legend">pool state:<span style="background:#f2f2f2"></span>never used<span style="background:#bfe0ff"></span>empty
<span class="gradient" style="background:linear-gradient(to right, hsl(50,95%,70%), hsl(27.5,95%,55%), hsl(5,95%,40%))"></span>used, from one block in use to all but one<span style="background:#8b0000"></span>full</p>
<p class="note">An arena is returned only when all its pools are empty: a row with a single coloured cell is an arena (and its memory) kept by a few live blocks.</p>
${sections.join('\n')}`;
}

/** What to know about an allocator run, before reading its figures (PEER_NOTES). */
function peerNotesHtml(comparison: Comparison): string {
  const run = new Set<string>(comparison.results.map((r) => r.allocator));
  const notes = Object.entries(PEER_NOTES).filter(([name]) => run.has(name));
  if (notes.length === 0) return '';
  return `<h3>About the allocators</h3>\n${notes.map(([name, note]) => `<p class="note"><b>${escapeHtml(name)}</b>: ${escapeHtml(note!)}</p>`).join('\n')}`;
}

function opsText(w: WorkloadInfo): string {
  return `${w.ops.toLocaleString('en-US')} ops, then ${w.appendedFrees.toLocaleString('en-US')} frees appended for the blocks still live`;
}

/** The whole page. */
export function renderReport(comparison: Comparison, generated = new Date()): string {
  const curves = comparison.workloads
    .map((w, i) => {
      const note = importNote(w);
      const mended = note === undefined ? '' : ` The importer mended the trace: ${escapeHtml(note.slice(w.name.length + 2))}.`;
      return `<h3>${escapeHtml(workloadLabel(w.name))}</h3><p class="note">${escapeHtml(w.description)}; ${opsText(w)}.${mended}</p><div class="chart"><canvas id="curve-${i}"></canvas></div>`;
    })
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
<h2>At a glance</h2>
<p class="note">★ marks the best Wasm allocator of each row (native glibc is the reference, not a contender); the small line is
the ratio to ${REFERENCE_ALLOCATOR}. Every row's op count is in its workload's section below.</p>
${matrices(comparison).map((m, i) => matrixHtml(m, i === 0 ? 'matrix-fragmentation' : 'matrix-ns')).join('\n')}
${peerNotesHtml(comparison)}
<h2>Footprint and live bytes along each workload</h2>
<p class="note">${HIDDEN_AT_FIRST.join(', ')} starts hidden: its footprint (many times the live bytes) would squash every
other line against the axis. Click a legend entry to show or hide a line; the axes follow what is shown.</p>
${curves}
<h2>Fragmentation</h2>
<div class="chart"><canvas id="fragmentation"></canvas></div>
<h2>pymalloc's arenas</h2>
${arenaSections(comparison)}
<h2>All figures</h2>
${summaryTableHtml(comparison)}
<script>${scriptSafe(chartJsSource())}</script>
<script type="application/json" id="data">${data}</script>
<script>${PAGE_SCRIPT}</script>
</body></html>
`;
}

/** The file's status, or undefined when there is no such file (or a parent is not a directory). */
async function statIfExists(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}

/**
 * Makes `dir` and its missing parents and checks that a file can be written in it, so that a
 * comparison with a bad --out fails before it runs, not after. Tricky: each missing directory
 * is made by its own non-recursive mkdir, because Node's recursive mkdir never returns when
 * mkdir fails with ENOENT under a parent that exists, as it does everywhere under /proc.
 * @throws ReportDirectoryError naming the directory and the problem
 */
export async function prepareReportDirectory(dir: string): Promise<void> {
  try {
    const missing: string[] = [];
    let at = resolve(dir);
    let found: Stats | undefined;
    while ((found = await statIfExists(at)) === undefined) {
      missing.unshift(at);
      at = dirname(at); // ends at the root, which exists
    }
    if (!found.isDirectory()) throw new ReportDirectoryError(dir, `${at} is not a directory`);
    for (const directory of missing) await mkdir(directory);
    const probe = join(dir, `.pymalloc-write-test-${process.pid}`);
    await writeFile(probe, '');
    await rm(probe);
  } catch (error) {
    if (error instanceof ReportDirectoryError) throw error;
    throw new ReportDirectoryError(dir, (error as Error).message, { cause: error });
  }
}

/** Writes index.html and results.json into `dir` (made if need be); returns the page's path. */
export async function writeReport(dir: string, comparison: Comparison): Promise<string> {
  await prepareReportDirectory(dir);
  const page = join(dir, 'index.html');
  await writeFile(page, renderReport(comparison));
  await writeFile(join(dir, 'results.json'), JSON.stringify(comparisonDocument(comparison), null, 2) + '\n');
  return page;
}
