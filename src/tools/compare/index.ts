// The comparison layer: workloads, the replay harness, peer allocators, reports.

export {
  ALLOCATOR_NAMES, builtAllocators, loadAllocator, parseAllocatorNames,
  type AllocatorName, type AllocatorOptions, type WasmAllocator,
} from './allocators.js';
export {
  AllocatorError, AllocatorUnavailableError, NativeReplayError, ReplayError, ReportDirectoryError, UsageError,
} from './errors.js';
export {
  SHIPPED_TRACE_NAMES, SYNTHETIC_WORKLOADS, TRACE_PREFIX, parseWorkloadList, resolveWorkload, shippedTracePath,
  workloadNames,
  type SyntheticWorkloadName, type Workload, type WorkloadOptions, type WorkloadShape,
} from './workloads.js';
export { replay, type MeasuredFigures, type ReplayOptions, type ReplayResult, type ReplaySamples } from './replay.js';
export {
  compare, defaultWorkloads, jsonResults, SHIPPED_TRACE,
  type CompareOptions, type Comparison, type SkippedAllocator, type WorkloadInfo,
} from './compare.js';
export { nativeReplay, NATIVE_LABEL, type NativeResult } from './native.js';
export { formatSummary, importNote, prepareReportDirectory, renderReport, writeReport } from './report.js';
export { runBench, formatBench, MAX_RUNS, MAX_STEPS, type BenchOptions, type BenchResult } from './bench.js';
export { decodeArenaMap, debugMallocStats, type ArenaMap, type ArenaRecord, type PoolRecord, type PoolState } from './pymalloc.js';
