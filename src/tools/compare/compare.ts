// A comparison: every workload replayed on every allocator asked for (each replay on a fresh
// instance), plus the native reference where gcc exists.

import { builtAllocators, buildHint, parseAllocatorNames, ALLOCATOR_NAMES, type AllocatorName } from './allocators.js';
import { nativeReplay, type NativeResult } from './native.js';
import { replay, type ReplayResult } from './replay.js';
import {
  resolveWorkload, shippedTracePath, SHIPPED_TRACE_NAMES, SYNTHETIC_WORKLOADS, TRACE_PREFIX, type Workload,
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
  const comparison: Comparison = { workloads: [], results: [], native: [], skipped };
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

/** The CLI's JSON: exactly these fields, per result (failure only when there is one). */
export function jsonResults(results: readonly ReplayResult[]): { results: object[] } {
  return {
    results: results.map(({
      allocator, workload, ops, nsPerOp, nsPerOpMin, nsPerOpMax, timedRuns, growNsPerOp, grows,
      peakLiveBytes, peakFootprintBytes, fragmentation, finalFootprintBytes, failure,
    }) => ({
      allocator, workload, ops, nsPerOp, nsPerOpMin, nsPerOpMax, timedRuns, growNsPerOp, grows,
      peakLiveBytes, peakFootprintBytes, fragmentation, finalFootprintBytes,
      ...(failure !== undefined && { failure }),
    })),
  };
}
