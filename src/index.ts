export { Heap } from './heap.js';
export { PRESETS, MAX_MEMORY } from './config.js';
export type { HeapOptions, HeapConfig, PresetName } from './config.js';
export type { HeapStats, SizeClassStats } from './stats.js';
export {
  InvalidAddressError, OutOfMemoryError, HeapCorruptionError, HeapDisposedError,
} from './errors.js';
export type { InvalidAddressReason } from './errors.js';
export type {
  ObjectType, ObjectKind, TypeSpec, Finalizer, WeakrefCallback, UnraisableInfo,
} from './objects.js';
export type { GcModule, GcGenerationStats, GcCallback, GcCallbackInfo } from './gc.js';
export { InvalidObjectError, ObjectTypeError } from './errors.js';
export type { InvalidObjectReason } from './errors.js';
