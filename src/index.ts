export { Heap } from './heap.js';
export { PRESETS, MAX_MEMORY } from './config.js';
export type { HeapOptions, HeapConfig, PresetName } from './config.js';
export type { HeapStats, SizeClassStats } from './stats.js';
export {
  InvalidAddressError, OutOfMemoryError, HeapCorruptionError, HeapDisposedError,
} from './errors.js';
export type { InvalidAddressReason } from './errors.js';
