// tracemalloc's snapshots (CPython's Snapshot, Statistic, StatisticDiff, Filter, DomainFilter):
// plain copies of the traces, grouped, compared and filtered host-side, dumped as JSON.

import { readFileSync, writeFileSync } from 'node:fs';
import { NotASnapshotError } from './errors.js';

/** Domain of malloc/calloc/realloc, the mem* calls and objects: CPython's DEFAULT_DOMAIN. */
export const DEFAULT_DOMAIN = 0;
/** Domain of the raw* calls. */
export const RAW_DOMAIN = 1;

/** One frame of a traceback: a file and a line (0 for a tag). */
export interface Frame {
  readonly filename: string;
  readonly lineno: number;
}
/** Frames most recent call first, at most the traceback limit. */
export type Traceback = readonly Frame[];

/** One traced block of a snapshot. */
export interface Trace {
  readonly domain: number;
  readonly size: number;
  readonly traceback: Traceback;
}

export type KeyType = 'filename' | 'lineno' | 'traceback';


const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

/** x with `digits` decimals as C's printf does: ties to even (toFixed breaks them upwards). */
function fixed(x: number, digits: number): string {
  const scaled = Math.abs(x) * 10 ** digits;
  if (scaled - Math.floor(scaled) !== 0.5) return Math.abs(x).toFixed(digits);
  const floor = Math.floor(scaled);
  return ((floor % 2 === 0 ? floor : floor + 1) / 10 ** digits).toFixed(digits);
}

/**
 * A size as tracemalloc prints it: "1000 B", "97.7 KiB", "12 MiB" (3 or 4 significant digits);
 * with `sign`, "+1.5 KiB" or "-24 B", as a StatisticDiff shows its differences.
 */
export function formatSize(bytes: number, sign = false): string {
  let value = bytes;
  for (const [i, unit] of UNITS.entries()) {
    const digits = Math.abs(value) < 100 && unit !== 'B' ? 1 : Math.abs(value) < 10 * 1024 || i === UNITS.length - 1 ? 0 : -1;
    if (digits >= 0) {
      const text = fixed(value, digits);
      const negative = value < 0 && Number(text) !== 0;
      return `${negative ? '-' : sign ? '+' : ''}${text} ${unit}`;
    }
    value /= 1024;
  }
  throw new Error('unreachable: the last unit always returns');
}

/** A traceback as a Statistic prints it: its most recent frame, "file:line". */
const where = (traceback: Traceback): string => `${traceback[0].filename}:${traceback[0].lineno}`;

/** Tracebacks in CPython's order: frame by frame, by filename then line; a prefix first. */
function compareTracebacks(a: Traceback, b: Traceback): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i].filename !== b[i].filename) return a[i].filename < b[i].filename ? -1 : 1;
    if (a[i].lineno !== b[i].lineno) return a[i].lineno - b[i].lineno;
  }
  return a.length - b.length;
}

/** The traces grouped by one key: size and count per traceback. */
export class Statistic {
  constructor(readonly traceback: Traceback, readonly size: number, readonly count: number) {}

  /** "file:line: size=X KiB, count=N, average=Y B" */
  toString(): string {
    const average = this.count ? `, average=${formatSize(this.size / this.count)}` : '';
    return `${where(this.traceback)}: size=${formatSize(this.size)}, count=${this.count}${average}`;
  }
}

/** A group's size and count now and their change since an older snapshot. */
export class StatisticDiff {
  constructor(
    readonly traceback: Traceback,
    readonly size: number,
    readonly sizeDiff: number,
    readonly count: number,
    readonly countDiff: number,
  ) {}

  /** "file:line: size=X KiB (+D KiB), count=N (+C), average=Y B" */
  toString(): string {
    const average = this.count ? `, average=${formatSize(this.size / this.count)}` : '';
    const countDiff = this.countDiff >= 0 ? `+${this.countDiff}` : `${this.countDiff}`;
    return `${where(this.traceback)}: size=${formatSize(this.size)} (${formatSize(this.sizeDiff, true)}), count=${this.count} (${countDiff})${average}`;
  }
}

/** fnmatch's pattern as a regular expression: `*` (across slashes, as CPython's), `?`, `[seq]`, `[!seq]`. */
function fnmatchRegExp(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') source += '.*';
    else if (c === '?') source += '.';
    else if (c === '[' && pattern.indexOf(']', i + 2) > 0) {
      const end = pattern.indexOf(']', i + 2);
      let set = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
      if (set[0] === '!') set = '^' + set.slice(1);
      else if (set[0] === '^') set = '\\' + set;
      source += `[${set}]`;
      i = end;
    } else source += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 's');
}

/** Keeps (inclusive) or drops the traces whose traceback matches a filename pattern. */
export class Filter {
  readonly #regexp: RegExp;
  /**
   * @param filenamePattern fnmatch-style: `*` matches any run of characters, slashes too
   * @param lineno          only this line of the file; undefined: any
   * @param allFrames       match any frame of the traceback, not only the most recent
   * @param domain          only traces of this domain; undefined: any
   */
  constructor(
    readonly inclusive: boolean,
    readonly filenamePattern: string,
    readonly lineno?: number,
    readonly allFrames = false,
    readonly domain?: number,
  ) {
    if (typeof filenamePattern !== 'string') throw new TypeError(`filenamePattern must be a string, not ${typeof filenamePattern}`);
    this.#regexp = fnmatchRegExp(filenamePattern);
  }

  #matchesFrame(frame: Frame): boolean {
    return this.#regexp.test(frame.filename) && (this.lineno === undefined || frame.lineno === this.lineno);
  }

  /** @internal Whether the trace passes this filter. */
  passes(trace: Trace): boolean {
    const matched = this.allFrames
      ? trace.traceback.some((frame) => this.#matchesFrame(frame))
      : this.#matchesFrame(trace.traceback[0]);
    const passes = matched === this.inclusive;
    if (this.domain === undefined) return passes;
    return this.inclusive ? passes && trace.domain === this.domain : passes || trace.domain !== this.domain;
  }
}

/** Keeps (inclusive) or drops the traces of one domain. */
export class DomainFilter {
  constructor(readonly inclusive: boolean, readonly domain: number) {}

  /** @internal Whether the trace passes this filter. */
  passes(trace: Trace): boolean {
    return (trace.domain === this.domain) === this.inclusive;
  }
}

const FORMAT = 'pymalloc-wasm tracemalloc snapshot';
const VERSION = 1;

interface Dump {
  format: typeof FORMAT;
  version: typeof VERSION;
  tracebackLimit: number;
  /** Interned: each trace names its traceback by index. */
  tracebacks: [string, number][][];
  /** [domain, size, traceback index] */
  traces: [number, number, number][];
}

/** Why the parsed JSON is not a dump, or undefined when it is one. */
function dumpProblem(data: unknown): string | undefined {
  const dump = data as Partial<Dump> | null;
  if (typeof dump !== 'object' || dump === null || dump.format !== FORMAT) return `no "format": "${FORMAT}" tag`;
  if (dump.version !== VERSION) return `version ${String(dump.version)}, this library reads ${VERSION}`;
  if (!Number.isInteger(dump.tracebackLimit) || !Array.isArray(dump.tracebacks) || !Array.isArray(dump.traces)) {
    return 'tracebackLimit, tracebacks or traces is missing';
  }
  const frameOk = (f: unknown) => Array.isArray(f) && f.length === 2 && typeof f[0] === 'string' && Number.isInteger(f[1]);
  const tracebackAt = dump.tracebacks.findIndex((t) => !Array.isArray(t) || !t.length || !t.every(frameOk));
  if (tracebackAt >= 0) return `tracebacks[${tracebackAt}] is not a list of [filename, lineno] frames`;
  const count = dump.tracebacks.length;
  const traceAt = dump.traces.findIndex((t) => !Array.isArray(t) || t.length !== 3 || !t.every(Number.isInteger) || t[2] < 0 || t[2] >= count);
  if (traceAt >= 0) return `traces[${traceAt}] is not [domain, size, traceback index]`;
  return undefined;
}

/** The traces at one moment, as takeSnapshot() copied them. */
export class Snapshot {
  constructor(readonly traces: readonly Trace[], readonly tracebackLimit: number) {}

  /** A new snapshot with the traces every filter passes (includes: at least one; excludes: all). */
  filterTraces(filters: readonly (Filter | DomainFilter)[]): Snapshot {
    const includes = filters.filter((f) => f.inclusive);
    const excludes = filters.filter((f) => !f.inclusive);
    const kept = this.traces.filter(
      (trace) => (!includes.length || includes.some((f) => f.passes(trace))) && excludes.every((f) => f.passes(trace)),
    );
    return new Snapshot(kept, this.tracebackLimit);
  }

  /** Size and count per key, biggest size first, then count. Cumulative: every frame of a traceback counts (filename, lineno). */
  statistics(keyType: KeyType, cumulative = false): Statistic[] {
    const groups = this.#group(keyType, cumulative);
    return [...groups.values()]
      .map((g) => new Statistic(g.traceback, g.size, g.count))
      .sort((a, b) => b.size - a.size || b.count - a.count || compareTracebacks(b.traceback, a.traceback));
  }

  /** The difference from an older snapshot, per key: biggest change of size first, as CPython orders it. */
  compareTo(old: Snapshot, keyType: KeyType, cumulative = false): StatisticDiff[] {
    const now = this.#group(keyType, cumulative);
    const before = old.#group(keyType, cumulative);
    const diffs: StatisticDiff[] = [];
    for (const [key, g] of now) {
      const o = before.get(key);
      diffs.push(new StatisticDiff(g.traceback, g.size, g.size - (o?.size ?? 0), g.count, g.count - (o?.count ?? 0)));
    }
    for (const [key, o] of before) {
      if (!now.has(key)) diffs.push(new StatisticDiff(o.traceback, 0, -o.size, 0, -o.count));
    }
    return diffs.sort(
      (a, b) =>
        Math.abs(b.sizeDiff) - Math.abs(a.sizeDiff) || b.size - a.size ||
        Math.abs(b.countDiff) - Math.abs(a.countDiff) || b.count - a.count ||
        compareTracebacks(b.traceback, a.traceback),
    );
  }

  /** Writes the snapshot as JSON (tagged with its format) to path. */
  dump(path: string): void {
    const ids = new Map<Traceback, number>();
    const tracebacks: [string, number][][] = [];
    const traces = this.traces.map((t): [number, number, number] => {
      let id = ids.get(t.traceback);
      if (id === undefined) {
        id = tracebacks.push(t.traceback.map((f): [string, number] => [f.filename, f.lineno])) - 1;
        ids.set(t.traceback, id);
      }
      return [t.domain, t.size, id];
    });
    const dump: Dump = { format: FORMAT, version: VERSION, tracebackLimit: this.tracebackLimit, tracebacks, traces };
    writeFileSync(path, JSON.stringify(dump));
  }

  /** Reads what dump() wrote. Throws NotASnapshotError when the file is not one. */
  static load(path: string): Snapshot {
    let data: unknown;
    try {
      data = JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
      if (error instanceof SyntaxError) throw new NotASnapshotError(path, `not JSON (${error.message})`);
      throw error;
    }
    const problem = dumpProblem(data);
    if (problem !== undefined) throw new NotASnapshotError(path, problem);
    const dump = data as Dump;
    const tracebacks = dump.tracebacks.map((t) => Object.freeze(t.map(([filename, lineno]) => Object.freeze({ filename, lineno }))));
    const traces = dump.traces.map(([domain, size, id]) => ({ domain, size, traceback: tracebacks[id] }));
    return new Snapshot(traces, dump.tracebackLimit);
  }

  #group(keyType: KeyType, cumulative: boolean): Map<string, { traceback: Traceback; size: number; count: number }> {
    if (keyType !== 'filename' && keyType !== 'lineno' && keyType !== 'traceback') {
      throw new TypeError(`keyType must be 'filename', 'lineno' or 'traceback', not ${JSON.stringify(keyType)}`);
    }
    if (cumulative && keyType === 'traceback') throw new TypeError("cumulative mode cannot be used with keyType 'traceback'");
    const groups = new Map<string, { traceback: Traceback; size: number; count: number }>();
    const count = (traceback: Traceback, size: number) => {
      const key = traceback.map((f) => `${f.filename}\0${f.lineno}`).join('\n');
      const group = groups.get(key);
      if (group) {
        group.size += size;
        group.count++;
      } else groups.set(key, { traceback, size, count: 1 });
    };
    const keyOf = (frame: Frame): Traceback => [keyType === 'filename' ? { filename: frame.filename, lineno: 0 } : frame];
    for (const trace of this.traces) {
      if (keyType === 'traceback') count(trace.traceback, trace.size);
      else if (!cumulative) count(keyOf(trace.traceback[0]), trace.size);
      else {
        // Each key once per trace, however many of its frames share it.
        const seen = new Set<string>();
        for (const frame of trace.traceback) {
          const key = keyType === 'filename' ? frame.filename : `${frame.filename}\0${frame.lineno}`;
          if (seen.has(key)) continue;
          seen.add(key);
          count(keyOf(frame), trace.size);
        }
      }
    }
    return groups;
  }
}
