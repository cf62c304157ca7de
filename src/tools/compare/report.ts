// Reports of a comparison: the summary table for a terminal, and report/index.html, a single
// self-contained page (Chart.js inlined, data embedded) that works opened from disk, offline.
//
// The page answers "which allocator is most compact, which fastest, on this workload" first: two
// matrices (workloads x allocators, fragmentation and ns/op, the best of each row marked, ratios
// to pymalloc-3.12 beneath). Then per workload, live bytes and each allocator's footprint along
// the trace; fragmentation per workload and allocator; per pymalloc allocator and workload, a
// map of its arenas at the end (one cell per pool, coloured by state and fullness), where an
// arena kept alive by a handful of blocks stands out; per trace workload with call sites, live
// bytes by site at the peak and, per pymalloc allocator, the arenas each site's blocks hold at
// the end; when a race was run with the comparison (`pymalloc compare` runs a short one), the
// race the GIL prevents: lost updates per run under 'gil', 'free-threaded' and 'none', and
// throughput against workers; and last the full table.
//
// Readability rules of the charts: bump (a pointer that never frees: 4x to 460x the live bytes)
// starts hidden, since its scale would squash every other line against the axis (its legend
// entry shows it); axes end at the data; fragmentation is linear from 1; each allocator has
// its own colour and dash pattern.

import { readFileSync, type Stats } from 'node:fs';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

import { raceDocument, type RaceReport } from '../race/race.js';
import { SitesMissingError } from '../trace/errors.js';
import { NO_SITE } from '../trace/format.js';
import { siteStatistics, type SiteStatistic } from '../trace/sites.js';
import { PEER_NOTES } from './allocators.js';
import { comparisonDocument, type Comparison, type WorkloadInfo } from './compare.js';
import { ReportDirectoryError } from './errors.js';
import type { NativeResult } from './native.js';
import type { ArenaMap } from './pymalloc.js';
import type { ReplayResult } from './replay.js';
import { TRACE_PREFIX, tracePath } from './workloads.js';

const MiB = 1024 * 1024;

// ---- the terminal table -------------------------------------------------------------------------

function mib(bytes: number): string {
  return (bytes / MiB).toFixed(2);
}

type Row = ReplayResult | NativeResult;

/** The allocator the matrices give ratios to. */
const REFERENCE_ALLOCATOR = 'pymalloc-3.12';

/** Allocators drawn hidden at first: their scale would hide everyone else's differences. */
const HIDDEN_AT_FIRST: readonly string[] = ['bump'];

/** A workload's name as shown: a shipped or given trace by its file's base name. */
function workloadLabel(name: string): string {
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
export function chartJsSource(): string {
  const require = createRequire(import.meta.url);
  const entry = require.resolve('chart.js');
  return readFileSync(join(dirname(entry), 'chart.umd.min.js'), 'utf8');
}

/** Script text that cannot end the <script> element it is inlined in. */
export function scriptSafe(source: string): string {
  return source.replace(/<\/(script)/gi, '<\\/$1');
}

/** JSON that cannot end the <script> element it is inlined in: every '<' escaped. */
export function jsonSafe(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

export function escapeHtml(text: string): string {
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

// ---- call sites: live bytes by site at the peak, arenas held by each site's blocks -----------------

/** Sites drawn in a workload's chart; the rest are summed as one bar. */
export const TOP_SITES = 15;

/** One bar: a site (or the rest, summed) and its live bytes at the peak. */
export interface SiteBar {
  label: string;
  liveBytes: number;
  liveBlocks: number;
}

/**
 * What a site's blocks hold of one pymalloc allocator's arenas at the end of the workload:
 * `arenas` attached arenas hold at least one of its blocks; `onlyArenas` of them hold no block
 * of any other site, so those arenas (onlyArenas × arenaSize bytes) are kept alive by this
 * site alone.
 */
export interface SitePinning {
  label: string;
  blocks: number;
  arenas: number;
  onlyArenas: number;
}

export interface AllocatorPinning {
  allocator: string;
  arenaSize: number;
  /** Arenas attached at the end of the workload, and how many of them the map recorded. */
  arenasAttached: number;
  arenasMapped: number;
  /** Blocks live at the end, and how many of them lie outside every mapped arena (raw allocator). */
  blocks: number;
  outsideArenas: number;
  /** Mapped arenas holding no live block (kept attached by the allocator itself). */
  emptyArenas: number;
  /** Sites holding an arena, most arenas held alone first. */
  sites: SitePinning[];
}

/** A trace workload's sites: the chart's bars and, per pymalloc allocator, the pinning table. */
export interface WorkloadSites {
  workload: string;
  /** Ops up to the peak, and the live bytes then. */
  peakOp: number;
  liveBytes: number;
  /** Sites with live bytes at the peak: the TOP_SITES largest, then "other (N sites)" if any. */
  bars: SiteBar[];
  pinning: AllocatorPinning[];
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** A site as a bar is labelled: "function (file:line)", else "function (module+address)", raw. */
export function siteLabel(statistic: SiteStatistic): string {
  const { site, file, line } = statistic;
  const fn = statistic.function;
  if (site === undefined) return '<unknown caller>';
  const where = file !== undefined ? `${file}:${line}` : `${site.module === '' ? '' : `${basename(site.module)}+`}${site.address}`;
  return fn === undefined ? where : `${fn} (${where})`;
}

function siteBars(sites: readonly SiteStatistic[]): SiteBar[] {
  const live = sites.filter((s) => s.liveBytes > 0);
  const bars = live.slice(0, TOP_SITES).map((s) => ({ label: siteLabel(s), liveBytes: s.liveBytes, liveBlocks: s.liveBlocks }));
  const rest = live.slice(TOP_SITES);
  if (rest.length > 0) {
    bars.push({
      label: `other (${rest.length} ${rest.length === 1 ? 'site' : 'sites'})`,
      liveBytes: rest.reduce((sum, s) => sum + s.liveBytes, 0),
      liveBlocks: rest.reduce((sum, s) => sum + s.liveBlocks, 0),
    });
  }
  return bars;
}

/** The index of the arena (sorted by address) holding `address`, or -1. */
function arenaHolding(starts: readonly number[], arenaSize: number, address: number): number {
  let low = 0;
  let high = starts.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    if (address < starts[middle]) high = middle - 1;
    else if (address >= starts[middle] + arenaSize) low = middle + 1;
    else return middle;
  }
  return -1;
}

/** Which sites' blocks each arena of one pymalloc run holds at the end of the workload. */
function pinningOf(result: ReplayResult, blockSites: Uint32Array, labels: Map<number, string>): AllocatorPinning | undefined {
  const { arenaMap, liveBlocks } = result;
  if (arenaMap === undefined || liveBlocks === undefined) return undefined;
  const { arenaSize } = arenaMap;
  const starts = arenaMap.arenas.map((a) => a.address).sort((a, b) => a - b);
  const sitesOfArena = starts.map(() => new Set<number>());
  const blocksOfSite = new Map<number, number>();
  let outsideArenas = 0;
  liveBlocks.ids.forEach((id, i) => {
    const arena = arenaHolding(starts, arenaSize, liveBlocks.addresses[i]);
    if (arena < 0) {
      outsideArenas++;
      return;
    }
    const site = blockSites[id] ?? NO_SITE;
    sitesOfArena[arena].add(site);
    blocksOfSite.set(site, (blocksOfSite.get(site) ?? 0) + 1);
  });
  const held = new Map<number, { arenas: number; onlyArenas: number }>();
  for (const sites of sitesOfArena) {
    for (const site of sites) {
      const entry = held.get(site) ?? { arenas: 0, onlyArenas: 0 };
      entry.arenas++;
      if (sites.size === 1) entry.onlyArenas++;
      held.set(site, entry);
    }
  }
  const sites = [...held].map(([site, { arenas, onlyArenas }]) => ({
    label: labels.get(site) ?? '<unknown caller>', blocks: blocksOfSite.get(site)!, arenas, onlyArenas,
  }));
  sites.sort((a, b) => b.onlyArenas - a.onlyArenas || b.arenas - a.arenas || b.blocks - a.blocks);
  return {
    allocator: result.allocator, arenaSize, arenasAttached: arenaMap.arenasAttached, arenasMapped: arenaMap.arenas.length,
    blocks: liveBlocks.ids.length, outsideArenas, emptyArenas: sitesOfArena.filter((s) => s.size === 0).length, sites,
  };
}

/**
 * The call sites of every trace workload that has them: its live bytes by site at the peak, and
 * per pymalloc allocator run on it, the arenas each site's blocks hold at the end of the workload.
 * @throws TraceFileError, TraceFormatError as openTrace
 */
export async function workloadSites(comparison: Comparison): Promise<WorkloadSites[]> {
  const found: WorkloadSites[] = [];
  for (const { name } of comparison.workloads) {
    if (!name.startsWith(TRACE_PREFIX)) continue;
    const { path } = tracePath(name.slice(TRACE_PREFIX.length));
    let peak;
    try {
      peak = await siteStatistics(path, { at: 'peak' });
    } catch (error) {
      if (error instanceof SitesMissingError) continue;
      throw error;
    }
    const end = await siteStatistics(path, { at: 'end' });
    const labels = new Map(end.sites.map((s) => [s.site?.id ?? NO_SITE, siteLabel(s)]));
    const pinning = comparison.results
      .filter((r) => r.workload === name)
      .flatMap((r) => pinningOf(r, end.blockSites, labels) ?? []);
    found.push({ workload: name, peakOp: peak.opsAtMoment, liveBytes: peak.liveBytes, bars: siteBars(peak.sites), pinning });
  }
  return found;
}

function pinningTableHtml(p: AllocatorPinning, id: string): string {
  const mib = (arenas: number) => ((arenas * p.arenaSize) / MiB).toFixed(2);
  const rows = p.sites
    .map((s) => `<tr><td>${escapeHtml(s.label)}</td><td class="n">${s.blocks}</td><td class="n">${s.arenas}</td><td class="n">${mib(s.arenas)}</td><td class="n">${s.onlyArenas}</td><td class="n">${mib(s.onlyArenas)}</td></tr>`)
    .join('\n');
  const unmapped = p.arenasMapped < p.arenasAttached ? ` (the first ${p.arenasMapped} mapped and attributed)` : '';
  const heading = `<h4>${escapeHtml(p.allocator)}: ${p.arenasAttached} ${p.arenasAttached === 1 ? 'arena' : 'arenas'} of ${p.arenaSize / 1024} KiB attached${unmapped}, ${p.emptyArenas} holding no live block; ${p.blocks} blocks live, ${p.outsideArenas} of them outside the arenas</h4>`;
  if (rows === '') return `${heading}\n<p class="note">No live block lies in an arena.</p>`;
  return `${heading}
<table class="pinning" id="${id}"><thead><tr><th>site</th><th>blocks in arenas</th><th>arenas holding its blocks</th><th>MiB</th><th>arenas kept alive only by its blocks</th><th>MiB</th></tr></thead><tbody>
${rows}
</tbody></table>`;
}

function sitesSectionHtml(comparison: Comparison, sites: readonly WorkloadSites[]): string {
  if (sites.length === 0) return '';
  const sections = sites.map((w, i) => {
    const index = comparison.workloads.findIndex((x) => x.name === w.workload);
    const tables = w.pinning.map((p) => pinningTableHtml(p, `pinning-${index}-${p.allocator}`)).join('\n');
    return `<h3>${escapeHtml(workloadLabel(w.workload))}</h3>
<p class="note">${(w.liveBytes / MiB).toFixed(2)} MiB live at the peak, after op ${w.peakOp.toLocaleString('en-US')}.</p>
<div class="chart" style="height: ${80 + 24 * w.bars.length}px"><canvas id="sites-${i}"></canvas></div>
${tables}`;
  });
  return `<h2>Live bytes by call site</h2>
<p class="note">For each trace recorded with call sites (<code>pymalloc sites TRACE</code> lists them all): the bytes
live at the peak by the code that allocated them, the ${TOP_SITES} largest sites and the rest summed. A site is the
allocator's immediate caller as mtrace saw it: <i>function (file:line)</i> where the module has debug info, else the
function (the nearest dynamic symbol, when known) and the raw module+address. A realloc moves its block to the realloc's site.</p>
<p class="note">Beneath, per pymalloc allocator, what each site's blocks pin at the end of the workload (before the appended
frees): an arena is attached while any of its blocks is live, so a site <b>holds</b> each attached arena with at least one of
its live blocks in it, and <b>keeps alive alone</b> each arena whose live blocks are all its own: those arenas (and their
bytes, arenas × arena size) would be returned if that site's blocks were freed. Blocks above the small-request threshold
come from the raw allocator, outside the arenas, and are counted apart.</p>
${sections.join('\n')}`;
}

// ---- the race the GIL prevents (pymalloc race) --------------------------------------------------

function raceRowsHtml(race: RaceReport): string {
  const count = (n: number | null) => (n === null ? '-' : n.toLocaleString('en-US'));
  return race.results
    .map((r) => `<tr><td>${r.test}</td><td>${r.mode}</td><td class="n">${r.runs}</td><td class="n">${count(r.expected)}</td><td class="n">${count(r.observed)}</td><td class="n">${count(r.lostUpdates)}</td><td class="n">${r.test === 'alloc' ? count(r.duplicateBlocks) : '-'}</td><td>${r.checkPassed ? 'passed' : '<b>FAILED</b>'}</td><td class="n">${r.nsPerOp.toFixed(1)}</td></tr>`)
    .join('\n');
}

function raceSectionHtml(race: RaceReport | undefined): string {
  if (race === undefined) return '';
  const { workers, ops, runs } = race.settings;
  const failures = race.failures
    .map((f) => `<li>${escapeHtml(`${f.test} ${f.mode} run ${f.run}, ${f.where}: ${f.name}`)}${f.invariant === null ? '' : ` (invariant: <b>${escapeHtml(f.invariant)}</b>)`}: ${escapeHtml(f.message)}</li>`)
    .join('\n');
  const throughput = race.price.length === 0 ? '' : `<div class="chart"><canvas id="race-throughput"></canvas></div>
<p class="note">Throughput of the alloc loop (malloc and free calls) over all workers, the median of ${runs} runs: under the GIL
and on the free-threaded heap with 1 to ${workers} workers, against an unshared heap in one thread (the dashed line).
Under the GIL every call takes and releases the lock; more workers only take turns, and each turn handed to another worker
costs a cache-line transfer, so its line does not rise. On the free-threaded heap each worker allocates from pools of its
own, without a lock, and its line rises with the cores.</p>`;
  return `<h2>The race the GIL prevents</h2>
<p class="note">${workers} workers on one shared heap (<code>pymalloc race --workers ${workers} --ops ${ops} --runs ${runs}</code>),
under <code>concurrency: 'gil'</code>, <code>'free-threaded'</code> (atomic increfs to the shared count, malloc and free in
per-thread pools, both lock-free) and <code>'none'</code> (no lock at all), each run in fresh workers released
together at a barrier so that their loops overlap. <b>refcount</b>: every worker increfs one shared object ${ops.toLocaleString('en-US')}
times; an incref is a plain load, add and store, so two workers doing it at once lose one of the two. <b>alloc</b>: every worker
mallocs and frees tagged blocks; pymalloc's free lists and pool counts are plain linked lists and integers, so two workers
in the same size class at once can take the same block, or lose a count, and heap.check() finds the structure broken. How
many updates are lost depends on how often the workers really ran at the same moment: on a loaded machine, some runs lose none.</p>
<div class="chart"><canvas id="race-refcount"></canvas></div>
<div class="chart"><canvas id="race-alloc"></canvas></div>
${throughput}
<table id="race"><thead><tr><th>test</th><th>mode</th><th>run</th><th>expected</th><th>observed</th><th>lost updates</th><th>duplicate blocks</th><th>check</th><th>ns/op</th></tr></thead><tbody>
${raceRowsHtml(race)}
</tbody></table>
${failures ? `<p class="note">What the runs met (a worker stops at its first error; the run goes on):</p>\n<ul class="note">${failures}</ul>` : ''}`;
}

/** What the page's script draws from: the results without what it does not need. */
function pageData(comparison: Comparison, sites: readonly WorkloadSites[], race: RaceReport | undefined) {
  return {
    race: race === undefined ? null : raceDocument(race),
    workloads: comparison.workloads.map((w) => ({ ...w, label: workloadLabel(w.name) })),
    hiddenAtFirst: HIDDEN_AT_FIRST,
    sites: sites.map((w) => ({ label: workloadLabel(w.workload), bars: w.bars })),
    results: comparison.results.map(({ arenaMap, debugMallocStats: _stats, liveBlocks: _blocks, ...rest }) => ({
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

export const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 13px; } td, th { padding: 2px 8px; border-bottom: 1px solid #eee; }
th { text-align: left; background: #f4f4f4; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.native td { font-style: italic; color: #555; }
table.matrix td.best { font-weight: bold; background: #e6f4ea; } table.matrix small { color: #666; }
.chart { position: relative; height: 320px; margin: 1em 0 2em; }
table.pinning { margin-bottom: 1.5em; }
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
window.siteCharts = data.sites.map((w, i) => new Chart(document.getElementById('sites-' + i), {
  type: 'bar',
  data: { labels: w.bars.map((b) => b.label), datasets: [{ label: 'KiB live at the peak', backgroundColor: '#1f77b4',
    data: w.bars.map((b) => b.liveBytes / 1024), blocks: w.bars.map((b) => b.liveBlocks) }] },
  options: { indexAxis: 'y', maintainAspectRatio: false, scales: { x: { beginAtZero: true, title: { display: true, text: 'KiB' } } },
    plugins: { legend: { display: false }, title: { display: true, text: w.label + ': live bytes by call site at the peak' },
      tooltip: { callbacks: { afterLabel: (c) => c.dataset.blocks[c.dataIndex] + ' blocks' } } } },
}));
charts += window.siteCharts.length;
window.raceCharts = [];
if (data.race) {
  const raceBars = (test, title, series) => {
    const rows = data.race.results.filter((r) => r.test === test);
    const runs = [...new Set(rows.map((r) => r.runs))];
    const datasets = series.flatMap(([mode, key, label, colour]) => {
      const of = rows.filter((r) => r.mode === mode);
      return of.length === 0 ? [] : [{ label, backgroundColor: colour, data: runs.map((n) => of.find((r) => r.runs === n)?.[key] ?? null) }];
    });
    // A run whose heap.check() failed says so under its bars, naming the mode.
    const failed = (n) => rows.filter((r) => r.runs === n && !r.checkPassed).map((r) => "'" + r.mode + "': check FAILED");
    return new Chart(document.getElementById('race-' + test), {
      type: 'bar', data: { labels: runs.map((n) => ['run ' + n, ...failed(n)]), datasets },
      options: { maintainAspectRatio: false, scales: { y: { beginAtZero: true, title: { display: true, text: 'per run' } } },
        plugins: { title: { display: true, text: title } } },
    });
  };
  window.raceCharts.push(raceBars('refcount', 'refcount: increfs lost per run', [
    ['gil', 'lostUpdates', "'gil': increfs lost", '#2ca02c'], ['free-threaded', 'lostUpdates', "'free-threaded': increfs lost", '#1f77b4'],
    ['none', 'lostUpdates', "'none': increfs lost", '#d62728']]));
  window.raceCharts.push(raceBars('alloc', 'alloc: blocks the heap lost count of, and blocks handed out twice, per run', [
    ['gil', 'lostUpdates', "'gil': blocks miscounted", '#2ca02c'], ['gil', 'duplicateBlocks', "'gil': blocks handed out twice", '#98df8a'],
    ['free-threaded', 'lostUpdates', "'free-threaded': blocks miscounted", '#1f77b4'], ['free-threaded', 'duplicateBlocks', "'free-threaded': blocks handed out twice", '#aec7e8'],
    ['none', 'lostUpdates', "'none': blocks miscounted", '#d62728'], ['none', 'duplicateBlocks', "'none': blocks handed out twice", '#ff9896']]));
  const lines = [['gil', '#2ca02c'], ['free-threaded', '#1f77b4']]
    .map(([mode, colour]) => [mode, colour, data.race.price.filter((p) => p.mode === mode)])
    .filter(([, , rows]) => rows.length > 0);
  const unshared = data.race.price.find((p) => p.mode === 'unshared');
  if (lines.length > 0) {
    const most = Math.max(...lines.flatMap(([, , rows]) => rows.map((p) => p.workers)));
    const datasets = lines.map(([mode, colour, rows]) => ({ label: "shared heap, '" + mode + "'", borderColor: colour, backgroundColor: colour,
      data: rows.map((p) => ({ x: p.workers, y: p.opsPerSecond / 1e6 })) }));
    if (unshared) datasets.push({ label: 'unshared heap, one thread', borderColor: '#000', borderDash: [6, 3], pointRadius: 0,
      data: [{ x: 1, y: unshared.opsPerSecond / 1e6 }, { x: most, y: unshared.opsPerSecond / 1e6 }] });
    window.raceCharts.push(new Chart(document.getElementById('race-throughput'), {
      type: 'line', data: { datasets },
      options: { maintainAspectRatio: false, parsing: false,
        scales: { x: { type: 'linear', min: 1, max: Math.max(2, most), ticks: { stepSize: 1 }, title: { display: true, text: 'workers' } },
          y: { beginAtZero: true, title: { display: true, text: 'M ops/s, all workers' } } },
        plugins: { title: { display: true, text: 'Throughput against workers' } } },
    }));
  }
}
charts += window.raceCharts.length;
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
export function renderReport(comparison: Comparison, generated = new Date(), sites: readonly WorkloadSites[] = [], race?: RaceReport): string {
  const curves = comparison.workloads
    .map((w, i) => {
      const note = importNote(w);
      const mended = note === undefined ? '' : ` The importer mended the trace: ${escapeHtml(note.slice(w.name.length + 2))}.`;
      return `<h3>${escapeHtml(workloadLabel(w.name))}</h3><p class="note">${escapeHtml(w.description)}; ${opsText(w)}.${mended}</p><div class="chart"><canvas id="curve-${i}"></canvas></div>`;
    })
    .join('\n');
  const skipped = comparison.skipped.map((s) => `<li>${escapeHtml(s.allocator)}: ${escapeHtml(s.reason)}</li>`).join('');
  const data = jsonSafe(pageData(comparison, sites, race));
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
${sitesSectionHtml(comparison, sites)}
${raceSectionHtml(race)}
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

/**
 * Writes index.html and results.json into `dir` (made if need be), and race.json with the race
 * (`pymalloc race --json`'s document) when there is one; returns the page's path.
 */
export async function writeReport(dir: string, comparison: Comparison, race?: RaceReport): Promise<string> {
  await prepareReportDirectory(dir);
  const page = join(dir, 'index.html');
  await writeFile(page, renderReport(comparison, new Date(), await workloadSites(comparison), race));
  await writeFile(join(dir, 'results.json'), JSON.stringify(comparisonDocument(comparison), null, 2) + '\n');
  if (race !== undefined) await writeFile(join(dir, 'race.json'), JSON.stringify(raceDocument(race), null, 2) + '\n');
  return page;
}
