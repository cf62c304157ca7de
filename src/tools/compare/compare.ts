// A comparison: every workload replayed on every allocator asked for (each replay on a fresh
// instance), plus the native reference where gcc exists.

import { builtAllocators, buildHint, parseAllocatorNames, ALLOCATOR_NAMES, type AllocatorName } from './allocators.js';
import { nativeReplay, type NativeResult } from './native.js';
import { replay, type ReplayResult } from './replay.js';
import { resolveWorkload, SYNTHETIC_WORKLOADS, TRACE_PREFIX, type Workload } from './workloads.js';
import { PACKAGE_ROOT } from './allocators.js';
import { UsageError } from './errors.js';
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
 * @throws UsageError for unknown names, or a name given twice; ReplayError when a replay fails; trace errors
 */
export async function compare(options: CompareOptions = {}): Promise<Comparison> {
  const { workloads, allocators, skipped } = planComparison(options);
  const comparison: Comparison = { workloads: [], results: [], native: [], skipped };
  for (const workload of workloads) {
    const shape = await workload.shape();
    const { skippedFrees, impliedFrees } = shape;
    comparison.workloads.push({
      name: workload.name, description: workload.description, ops: shape.ops,
      ...(skippedFrees !== undefined && { skippedFrees }), ...(impliedFrees !== undefined && { impliedFrees }),
    });
    for (const allocator of allocators) {
      const label = `${workload.name} on ${allocator}`;
      comparison.results.push(
        await replay(allocator, workload, {
          wasmDir: options.wasmDir,
          onProgress: options.onProgress && ((done, total) => options.onProgress!(label, done, total)),
        }),
      );
    }
    if (options.native === true) {
      const native = await nativeReplay(workload);
      if (native !== undefined) comparison.native.push(native);
    }
  }
  return comparison;
}

/** The CLI's JSON: exactly these fields, per result. */
export function jsonResults(results: readonly ReplayResult[]): { results: object[] } {
  return {
    results: results.map(({ allocator, workload, ops, nsPerOp, peakLiveBytes, peakFootprintBytes, fragmentation, finalFootprintBytes }) => ({
      allocator, workload, ops, nsPerOp, peakLiveBytes, peakFootprintBytes, fragmentation, finalFootprintBytes,
    })),
  };
}
