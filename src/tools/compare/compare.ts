// A comparison: every workload replayed on every allocator asked for (each replay on a fresh
// instance), plus the native reference where gcc exists.

import { cpus, totalmem } from 'node:os';

import {
  allocatorBuiltFrom, builtAllocators, buildHint, parseAllocatorNames, ALLOCATOR_NAMES, PACKAGE_VERSION, PEER_NOTES,
  type AllocatorName,
} from './allocators.js';
import { nativeReplay, NATIVE_LABEL, type NativeResult } from './native.js';
import { DEFAULT_REPEAT, replay, type ReplayResult } from './replay.js';
import {
  DEFAULT_WORKLOAD_OPTIONS, resolveWorkload, shippedTracePath, SHIPPED_TRACE_NAMES, SYNTHETIC_WORKLOADS, TRACE_PREFIX,
  type Workload,
} from './workloads.js';
import { UsageError } from './errors.js';

/** The file of the first shipped trace: CPython building, encoding and decoding JSON. */
export const SHIPPED_TRACE = shippedTracePath('python-json');

/** The default workloads: every synthetic one and every shipped trace. */
export function defaultWorkloads(): string[] {
  return [...SYNTHETIC_WORKLOADS, ...SHIPPED_TRACE_NAMES.map((name) => `${TRACE_PREFIX}${name}`)];
}

export interface CompareOptions {
  /**
   * Workload names (workloads.ts).
   * @default defaultWorkloads()
   */
  workloads?: readonly string[];
  /**
   * Allocator names; those not built are skipped and reported.
   * @default every allocator built
   */
  allocators?: readonly string[];
  /**
   * Scale of the synthetic workloads.
   * @default 1
   */
  scale?: number;
  /**
   * Seed of the synthetic workloads.
   * @default 12345
   */
  seed?: number;
  /**
   * Also replay each workload natively with glibc (when gcc exists).
   * @default false
   */
  native?: boolean;
  /**
   * Timed runs per replay (after one untimed warm-up run); ns/op is their median.
   * @default DEFAULT_REPEAT (5)
   */
  repeat?: number;
  /** Directory of the allocator modules (build/peers/ by default). */
  wasmDir?: string;
  /** Progress: the replay running, the ops it has run, its total. */
  onProgress?: (label: string, done: number, total: number) => void;
}

/** What a comparison ran with, every default resolved: enough to run it again. */
export interface ComparisonSettings {
  workloads: string[];
  allocators: AllocatorName[];
  seed: number;
  scale: number;
  repeat: number;
  native: boolean;
}

export interface SkippedAllocator {
  allocator: AllocatorName;
  reason: string;
}

export interface WorkloadInfo {
  name: string;
  description: string;
  /** The workload's own ops: what a trace holds, or what a synthetic workload generates. */
  ops: number;
  /** Frees appended after them, one per block still live at the end, so the final footprint is the peak. */
  appendedFrees: number;
  /** A trace's frees of blocks allocated before tracing began, which the importer skipped. */
  skippedFrees?: number;
  /** A trace's untraced frees, which the importer inserted. */
  impliedFrees?: number;
}

export interface Comparison {
  settings: ComparisonSettings;
  workloads: WorkloadInfo[];
  results: ReplayResult[];
  native: NativeResult[];
  skipped: SkippedAllocator[];
}

/** Throws UsageError naming the first name given twice: its rows, charts and ids would collide. */
function refuseDuplicates(what: string, names: readonly string[]): void {
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) throw new UsageError(`${what} "${name}" is given twice: name each ${what} once`);
    seen.add(name);
  }
}

/** Workloads and allocators checked up front, so a bad name fails before anything runs. */
export function planComparison(options: CompareOptions): { workloads: Workload[]; allocators: AllocatorName[]; skipped: SkippedAllocator[] } {
  const names = options.workloads ?? defaultWorkloads();
  refuseDuplicates('workload', names);
  const workloads = names.map((name) => resolveWorkload(name, { scale: options.scale, seed: options.seed }));
  const asked = options.allocators === undefined ? [...ALLOCATOR_NAMES] : parseAllocatorNames(options.allocators);
  refuseDuplicates('allocator', asked);
  const built = new Set(builtAllocators({ wasmDir: options.wasmDir }));
  const allocators = asked.filter((name) => built.has(name));
  const skipped = asked
    .filter((name) => !built.has(name))
    .map((allocator) => ({ allocator, reason: `not built: ${buildHint(allocator)}` }));
  return { workloads, allocators, skipped };
}

/**
 * Runs the comparison.
 * A replay that cannot finish is a result with its `failure`; the others still run.
 * @throws UsageError for unknown names, or a name given twice; trace errors
 */
export async function compare(options: CompareOptions = {}): Promise<Comparison> {
  const { workloads, allocators, skipped } = planComparison(options);
  const settings: ComparisonSettings = {
    workloads: workloads.map((w) => w.name),
    allocators,
    seed: options.seed ?? DEFAULT_WORKLOAD_OPTIONS.seed,
    scale: options.scale ?? DEFAULT_WORKLOAD_OPTIONS.scale,
    repeat: options.repeat ?? DEFAULT_REPEAT,
    native: options.native === true,
  };
  const comparison: Comparison = { settings, workloads: [], results: [], native: [], skipped };
  for (const workload of workloads) {
    const shape = await workload.shape();
    const { skippedFrees, impliedFrees } = shape;
    comparison.workloads.push({
      name: workload.name, description: workload.description, ops: shape.ops, appendedFrees: shape.liveAtEnd,
      ...(skippedFrees !== undefined && { skippedFrees }), ...(impliedFrees !== undefined && { impliedFrees }),
    });
    for (const allocator of allocators) {
      const label = `${workload.name} on ${allocator}`;
      comparison.results.push(
        await replay(allocator, workload, {
          wasmDir: options.wasmDir,
          repeat: options.repeat,
          onProgress: options.onProgress && ((done, total) => options.onProgress!(label, done, total)),
        }),
      );
    }
    if (options.native === true) {
      const native = await nativeReplay(workload, { repeat: options.repeat });
      if (native !== undefined) comparison.native.push(native);
    }
  }
  return comparison;
}

/** The results that could not finish. */
export function failedResults(comparison: Comparison): (ReplayResult | NativeResult)[] {
  return [...comparison.results, ...comparison.native].filter((r) => r.failure !== undefined);
}

/** One row of the JSON: a replay's figures without its curves and pymalloc's internals. */
export type ComparisonRow = (Omit<ReplayResult, 'samples' | 'arenaMap' | 'debugMallocStats' | 'liveBlocks'> & { kind: 'wasm' }) | (NativeResult & { kind: 'native' });

/** The whole result of a comparison, as `--json` prints it and results.json holds it. */
export interface ComparisonDocument {
  tool: { name: string; version: string };
  /** Where it ran: figures from another machine or Node are not comparable. */
  environment: { node: string; v8: string; platform: string; arch: string; cpu: string; cores: number; memoryBytes: number; glibc: string | null };
  settings: ComparisonSettings;
  /** Each allocator run, with what its module was built from and what to know about it. */
  allocators: { name: string; kind: 'wasm' | 'native'; builtFrom: string; note?: string }[];
  workloads: WorkloadInfo[];
  /** Every row: the Wasm allocators' (failed ones with their failure), then the native ones. */
  results: ComparisonRow[];
  skipped: SkippedAllocator[];
}

export function comparisonDocument(comparison: Comparison, options: { wasmDir?: string } = {}): ComparisonDocument {
  const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime ?? null;
  const wasm = comparison.settings.allocators.map((name) => ({
    name, kind: 'wasm' as const, builtFrom: allocatorBuiltFrom(name, options),
    ...(PEER_NOTES[name] !== undefined && { note: PEER_NOTES[name] }),
  }));
  const native = comparison.native.length > 0 ? [{ name: NATIVE_LABEL, kind: 'native' as const, builtFrom: `glibc ${glibc ?? 'unknown'}, gcc -O2` }] : [];
  return {
    tool: { name: 'pymalloc-wasm', version: PACKAGE_VERSION },
    environment: {
      node: process.version, v8: process.versions.v8, platform: process.platform, arch: process.arch,
      cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memoryBytes: totalmem(), glibc,
    },
    settings: comparison.settings,
    allocators: [...wasm, ...native],
    workloads: comparison.workloads,
    results: [
      ...comparison.results.map(({ samples: _samples, arenaMap: _map, debugMallocStats: _stats, liveBlocks: _blocks, ...row }) => ({ kind: 'wasm' as const, ...row })),
      ...comparison.native.map((row) => ({ kind: 'native' as const, ...row })),
    ],
    skipped: comparison.skipped,
  };
}
