// A comparison: every workload replayed on every allocator asked for (each replay on a fresh
// instance), plus the native reference where gcc exists.

import { builtAllocators, buildHint, parseAllocatorNames, ALLOCATOR_NAMES, type AllocatorName } from './allocators.js';
import { nativeReplay, type NativeResult } from './native.js';
import { replay, type ReplayResult } from './replay.js';
import { resolveWorkload, SYNTHETIC_WORKLOADS, TRACE_PREFIX, type Workload } from './workloads.js';
import { PACKAGE_ROOT } from './allocators.js';
import { join, relative } from 'node:path';

/** The real trace the repository ships. */
export const SHIPPED_TRACE = join(PACKAGE_ROOT, 'traces', 'python-json.trace.gz');

/** The default workloads: every synthetic one and the shipped trace. */
export function defaultWorkloads(): string[] {
  const path = relative(process.cwd(), SHIPPED_TRACE) || SHIPPED_TRACE;
  return [...SYNTHETIC_WORKLOADS, `${TRACE_PREFIX}${path}`];
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
  ops: number;
}

export interface Comparison {
  workloads: WorkloadInfo[];
  results: ReplayResult[];
  native: NativeResult[];
  skipped: SkippedAllocator[];
}

/** Workloads and allocators checked up front, so a bad name fails before anything runs. */
export function planComparison(options: CompareOptions): { workloads: Workload[]; allocators: AllocatorName[]; skipped: SkippedAllocator[] } {
  const workloads = (options.workloads ?? defaultWorkloads()).map((name) =>
    resolveWorkload(name, { scale: options.scale, seed: options.seed }),
  );
  const asked = options.allocators === undefined ? [...ALLOCATOR_NAMES] : parseAllocatorNames(options.allocators);
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
 * @throws UsageError for unknown names; trace errors
 */
export async function compare(options: CompareOptions = {}): Promise<Comparison> {
  const { workloads, allocators, skipped } = planComparison(options);
  const comparison: Comparison = { workloads: [], results: [], native: [], skipped };
  for (const workload of workloads) {
    const shape = await workload.shape();
    comparison.workloads.push({ name: workload.name, description: workload.description, ops: shape.ops });
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
