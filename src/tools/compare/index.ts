// The comparison layer: workloads, the replay harness, peer allocators, reports.

export {
  ALLOCATOR_NAMES, builtAllocators, loadAllocator, parseAllocatorNames, PEER_NOTES,
  type AllocatorName, type AllocatorOptions, type WasmAllocator,
} from './allocators.js';
export {
  AllocatorError, AllocatorUnavailableError, NativeReplayError, ReplaysFailedError, ReportDirectoryError, UsageError,
} from './errors.js';
export {
  SHIPPED_TRACE_NAMES, SYNTHETIC_WORKLOADS, TRACE_PREFIX, parseWorkloadList, resolveWorkload, shippedTracePath,
  workloadNames,
  type SyntheticWorkloadName, type Workload, type WorkloadOptions, type WorkloadShape,
} from './workloads.js';
export {
  DEFAULT_REPEAT, MAX_REPEAT, MIN_LIVE_FOR_FRAGMENTATION, replay,
  type FailureReason, type MeasuredFigures, type ReplayFailure, type ReplayOptions, type ReplayResult, type ReplaySamples,
} from './replay.js';
export {
  comparisonDocument, compare, defaultWorkloads, failedResults, SHIPPED_TRACE,
  type CompareOptions, type Comparison, type ComparisonDocument, type ComparisonRow, type ComparisonSettings, type SkippedAllocator, type WorkloadInfo,
} from './compare.js';
export { nativeReplay, NATIVE_LABEL, type NativeReplayOptions, type NativeResult } from './native.js';
export { formatSummary, importNote, prepareReportDirectory, renderReport, writeReport } from './report.js';
export { runBench, formatBench, MAX_RUNS, MAX_STEPS, type BenchOptions, type BenchResult } from './bench.js';
export { decodeArenaMap, debugMallocStats, type ArenaMap, type ArenaRecord, type PoolRecord, type PoolState } from './pymalloc.js';
export { buildCPeers, cToolchainMissing, missingCPeers, peerStatus, type PeerStatus } from './peers.js';
export { sweep, formatSweep, markParetoFront, SWEEP_POLICIES, type SweepFigures, type SweepOptions, type SweepPoint, type SweepResult, type SweepSetting } from './sweep.js';
export { renderSweepReport, writeSweepReport } from './sweep-report.js';
