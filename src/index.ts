export { Heap } from './heap/heap.js';
export type { GilHandle } from './heap/heap.js';
export type { GilStats, SharedHeapHandle } from './heap/shared.js';
export { PRESETS, MAX_MEMORY } from './heap/config.js';
export type { HeapOptions, HeapConfig, PresetName, Policy } from './heap/config.js';
export type { HeapStats, SizeClassStats } from './heap/stats.js';
export {
  InvalidAddressError, OutOfMemoryError, HeapCorruptionError, HeapDisposedError, MemoryCorruptionError,
} from './heap/errors.js';
export type { InvalidAddressReason, DebugProblem } from './heap/errors.js';
export type {
  ObjectType, ObjectKind, TypeSpec, Finalizer, WeakrefCallback, UnraisableInfo, DictKey, DictLayout,
} from './heap/objects.js';
export type { JsonValue } from './heap/json.js';
export type { GcModule, GcGenerationStats, GcCallback, GcCallbackInfo } from './heap/gc.js';
export { InvalidObjectError, ObjectTypeError } from './heap/errors.js';
export type { InvalidObjectReason } from './heap/errors.js';
export { Tracemalloc } from './heap/tracemalloc.js';
export {
  Snapshot, Statistic, StatisticDiff, Filter, DomainFilter, DEFAULT_DOMAIN, RAW_DOMAIN, formatSize,
} from './heap/snapshot.js';
export type { Frame, Traceback, Trace, KeyType } from './heap/snapshot.js';
export { TracemallocNotTracingError, NotASnapshotError } from './heap/errors.js';
