// Where a recorded program's memory goes: the live bytes of each call site at the trace's peak
// (or end), with its allocations over the whole trace, like tracemalloc's
// Snapshot.statistics('lineno'). `npx pymalloc sites TRACE`.
//
//     pass 1 (--at peak only): live bytes after every op ──> the first op at which they peak
//     pass 2: every op up to that one ──> per block: size, site ──> per site: live bytes, blocks
//             every op ──> per site: allocations and bytes allocated in all
//     symbolizeSites ──> function, file:line, or the raw module+address and why
//
// A realloc moves its block to the realloc's site (tracemalloc does the same: the block's
// traceback is the realloc's): its bytes are counted live there, and as allocated there.
// Memory: a size and a site per live id, a few numbers per site; two streams of the file.

import { formatSize } from '../../index.js';
import { SitesMissingError } from './errors.js';
import { NO_SITE, OP_ALLOC, OP_FIELDS, OP_FREE, type CallSite } from './format.js';
import { openTrace } from './reader.js';
import { symbolizeSites, type SymbolizedSite } from './symbolize.js';

export type SitesMoment = 'peak' | 'end';

/** One site's share. */
export interface SiteStatistic extends SymbolizedSite {
  /** The site as recorded; undefined for the allocations without a site (callers unknown). */
  site: CallSite | undefined;
  /** Bytes of its blocks live at the moment, and how many blocks. */
  liveBytes: number;
  liveBlocks: number;
  /** Allocations and reallocs at the site over the whole trace, and their bytes. */
  allocations: number;
  allocatedBytes: number;
}

export interface SitesReport {
  trace: string;
  at: SitesMoment;
  /** Ops replayed up to the moment (all of them for 'end'). */
  opsAtMoment: number;
  liveBytes: number;
  liveBlocks: number;
  /** Most live bytes first, then most bytes allocated. */
  sites: SiteStatistic[];
  /**
   * Per id, the site (CallSite.id, NO_SITE for none) of the block it names at the moment: of its
   * last alloc or realloc up to then. Meaningless for an id not live then.
   */
  blockSites: Uint32Array;
}

/** Grows a typed array to hold index `at`. */
function ensure<T extends Uint32Array | Float64Array>(array: T, at: number, make: (length: number) => T): T {
  if (at < array.length) return array;
  const grown = make(Math.max(at + 1, array.length * 2));
  grown.set(array);
  return grown;
}

/** The number of ops after which live bytes first reach their maximum, and the sites declared. */
async function peakOp(path: string): Promise<{ peakAt: number; sites: number }> {
  let sizes = new Float64Array(1024);
  let live = 0;
  let peak = 0;
  let peakAt = 0;
  let op = 0;
  let sites = 0;
  for await (const { ops, summary } of openTrace(path)) {
    if (summary !== undefined) sites = summary.sites;
    for (let i = 0; i < ops.length; i += OP_FIELDS, op++) {
      const kind = ops[i]!;
      const id = ops[i + 1]!;
      sizes = ensure(sizes, id, (n) => new Float64Array(n));
      if (kind === OP_FREE) {
        live -= sizes[id]!;
        sizes[id] = 0;
        continue;
      }
      live += ops[i + 2]! - (kind === OP_ALLOC ? 0 : sizes[id]!);
      sizes[id] = ops[i + 2]!;
      if (live > peak) {
        peak = live;
        peakAt = op + 1;
      }
    }
  }
  return { peakAt, sites };
}

/**
 * The sites of a trace with call-site data, by live bytes at the peak or at the end.
 * @throws SitesMissingError when the trace has none; TraceFileError, TraceFormatError as openTrace
 */
export async function siteStatistics(path: string, options: { at?: SitesMoment } = {}): Promise<SitesReport> {
  const at = options.at ?? 'peak';
  let moment = Number.POSITIVE_INFINITY;
  if (at === 'peak') {
    const peak = await peakOp(path);
    // A trace without sites is known after one pass: no second one to find it out again.
    if (peak.sites === 0) throw new SitesMissingError(path);
    moment = peak.peakAt;
  }

  const declared: CallSite[] = [];
  let blockSize = new Float64Array(1024);
  let blockSite = new Uint32Array(1024);
  let liveBytes = new Float64Array(64);
  let liveBlocks = new Uint32Array(64);
  let allocations = new Float64Array(64);
  let allocatedBytes = new Float64Array(64);
  let op = 0;
  let opsAtMoment = 0;
  let sitesDeclared = 0;
  for await (const chunk of openTrace(path)) {
    if (chunk.declaredSites !== undefined) declared.push(...chunk.declaredSites);
    if (chunk.summary !== undefined) sitesDeclared = chunk.summary.sites;
    const { ops, sites } = chunk;
    for (let i = 0; i < ops.length; i += OP_FIELDS, op++) {
      const kind = ops[i]!;
      const id = ops[i + 1]!;
      const size = ops[i + 2]!;
      const site = kind === OP_FREE || sites === undefined ? NO_SITE : sites[i / OP_FIELDS]!;
      if (kind !== OP_FREE) {
        allocations = ensure(allocations, site, (n) => new Float64Array(n));
        allocatedBytes = ensure(allocatedBytes, site, (n) => new Float64Array(n));
        allocations[site]++;
        allocatedBytes[site] += size;
      }
      if (op >= moment) continue;
      opsAtMoment = op + 1;
      blockSize = ensure(blockSize, id, (n) => new Float64Array(n));
      blockSite = ensure(blockSite, id, (n) => new Uint32Array(n));
      liveBytes = ensure(liveBytes, site, (n) => new Float64Array(n));
      liveBlocks = ensure(liveBlocks, site, (n) => new Uint32Array(n));
      if (kind !== OP_ALLOC) {
        const old = blockSite[id]!;
        liveBytes[old] -= blockSize[id]!;
        liveBlocks[old]--;
      }
      if (kind !== OP_FREE) {
        blockSize[id] = size;
        blockSite[id] = site;
        liveBytes[site] += size;
        liveBlocks[site]++;
      }
    }
  }
  if (sitesDeclared === 0) throw new SitesMissingError(path);

  const symbols = await symbolizeSites(declared);
  const statistics: SiteStatistic[] = [];
  for (let site = NO_SITE; site <= declared.length; site++) {
    const count = allocations[site] ?? 0;
    if (count === 0) continue;
    const recorded = site === NO_SITE ? undefined : declared[site - 1];
    const where = recorded === undefined ? { problem: 'the caller was not recorded' } : symbols.get(site)!;
    statistics.push({
      site: recorded,
      ...where,
      liveBytes: liveBytes[site] ?? 0,
      liveBlocks: liveBlocks[site] ?? 0,
      allocations: count,
      allocatedBytes: allocatedBytes[site] ?? 0,
    });
  }
  statistics.sort((a, b) => b.liveBytes - a.liveBytes || b.allocatedBytes - a.allocatedBytes || b.allocations - a.allocations);
  return {
    trace: path,
    at,
    opsAtMoment,
    liveBytes: statistics.reduce((sum, s) => sum + s.liveBytes, 0),
    liveBlocks: statistics.reduce((sum, s) => sum + s.liveBlocks, 0),
    sites: statistics,
    blockSites: blockSite,
  };
}

// ---- formatting, as tracemalloc prints a Statistic ----------------------------------------------

/** tracemalloc's size rule, from the library (src/heap/snapshot.ts). */
export { formatSize };

/** Where a site is: "prog.c:9 (keep_blocks)", or its raw module+address and why not. */
export function describeSite(statistic: SiteStatistic): string {
  const { site, file, line } = statistic;
  const fn = statistic.function === undefined ? '' : ` (${statistic.function})`;
  if (file !== undefined) return `${file}:${line}${fn}`;
  if (site === undefined) return `<unknown caller> [${statistic.problem}]`;
  const raw = site.module === '' ? site.address : `${site.module}+${site.address}`;
  return `${raw}${fn} [${statistic.problem}]`;
}

/** One line per site, tracemalloc's "where: size=X, count=N, average=Y", plus what it allocated. */
export function formatSiteLine(statistic: SiteStatistic): string {
  const { liveBytes, liveBlocks, allocations, allocatedBytes } = statistic;
  const average = liveBlocks > 0 ? `, average=${formatSize(liveBytes / liveBlocks)}` : '';
  return (
    `${describeSite(statistic)}: size=${formatSize(liveBytes)}, count=${liveBlocks}${average}` +
    `; allocated ${formatSize(allocatedBytes)} in ${allocations} ${allocations === 1 ? 'call' : 'calls'}`
  );
}
