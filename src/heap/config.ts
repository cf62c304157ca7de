import type { Concurrency } from './shared.js';

const CONCURRENCIES: readonly unknown[] = ['gil', 'free-threaded', 'none'] satisfies Concurrency[];

/** Geometry presets: the constants of CPython's Objects/obmalloc.c for each build. */
export const PRESETS = {
  /** CPython 3.7-3.9 on 64-bit, and any 32-bit build: 64 classes of 8-byte steps. */
  'cpython-3.7': { alignment: 8, poolSize: 4096, arenaSize: 256 * 1024, smallRequestThreshold: 512 },
  /** CPython 3.10+ on 64-bit: 32 classes of 16-byte steps, 16 KiB pools, 1 MiB arenas. */
  'cpython-3.12': { alignment: 16, poolSize: 16384, arenaSize: 1024 * 1024, smallRequestThreshold: 512 },
  /** Not CPython: pymalloc's structure with its own policy and geometry (README, "The tuned preset"). */
  tuned: { alignment: 16, poolSize: 32768, arenaSize: 2 * 1024 * 1024, smallRequestThreshold: 512 },
} as const;

export type PresetName = keyof typeof PRESETS;

/**
 * What pymalloc does where CPython's choices are free: 'cpython' keeps every one of them, block
 * for block; 'tuned' relinks a formerly full pool last on its list (assembly/pymalloc/pool.ts).
 * The preset decides: the tuned preset runs the tuned policy, also under explicit geometry.
 */
export type Policy = 'cpython' | 'tuned';

export function presetPolicy(preset: PresetName): Policy {
  return preset === 'tuned' ? 'tuned' : 'cpython';
}

const WASM_PAGE = 65536;
const MAX_ARENA_SIZE = 64 * 1024 * 1024;
/** One wasm page short of 4 GiB, so that the end of memory is still a u32. */
export const MAX_MEMORY = 2 ** 32 - WASM_PAGE;

export interface HeapOptions {
  /**
   * Geometry to start from; explicit options below override its values.
   * @default 'cpython-3.12'
   */
  preset?: PresetName;
  /** Block alignment and size class step: 8 or 16. */
  alignment?: number;
  /** Bytes per pool: a power of two from 4096 up to arenaSize. */
  poolSize?: number;
  /** Bytes per arena: a power of two, a multiple of poolSize and of the 64 KiB wasm page, at most 64 MiB. */
  arenaSize?: number;
  /** Largest request served from pools: a multiple of alignment, at most 512. */
  smallRequestThreshold?: number;
  /**
   * The most linear memory the heap may commit, in bytes (rounded down to wasm pages).
   * @default 4294901760 (4 GiB less one wasm page)
   */
  maxMemory?: number;
  /**
   * Which Wasm build to run: 'release' (optimised, no assertions) or 'debug' (assertions, and
   * dead objects quarantined so that stale handles are refused; README, "Bad input").
   * @default 'release'
   */
  build?: 'release' | 'debug';
  /**
   * CPython's debug hooks (PYTHONMALLOC=debug): the requested size, the API id and FORBIDDEN pad
   * bytes around every block, new data CLEAN (0xcd), freed blocks DEAD (0xdd), all checked on
   * every free and realloc and by check(). `{ serialNumbers: true }` adds each block's serial
   * number. README, "Debug hooks".
   * @default false
   */
  debugHooks?: boolean | { serialNumbers?: boolean };
  /**
   * Puts the heap in a shared WebAssembly.Memory (its maximum is maxMemory), so that workers can
   * attach to it: `heap.share()` makes the handle, `Heap.attach(handle)` the worker's heap.
   * README, "Sharing a heap between workers".
   * @default false
   */
  shared?: boolean;
  /**
   * How the instances of a shared heap keep out of each other's way. 'gil': every call into the
   * heap holds one global lock, as CPython's GIL; 'free-threaded': CPython 3.13t's object header
   * and biased reference counting (docs/free-threaded.md), refcounts lock-free and everything
   * else under one heap mutex; 'none': no lock at all, so that the races the GIL prevents can
   * be seen. 'none' corrupts the heap by design as soon as two workers use it at once: it is for
   * demonstrations (`pymalloc race`), never for use.
   * @default 'gil' (for a shared heap)
   */
  concurrency?: Concurrency;
}

/** The resolved configuration of a heap. */
export interface HeapConfig {
  preset: PresetName;
  alignment: number;
  poolSize: number;
  arenaSize: number;
  smallRequestThreshold: number;
  numClasses: number;
  poolsPerArena: number;
  /** The pool header, rounded up to alignment. */
  poolOverhead: number;
  policy: Policy;
  maxMemory: number;
  build: 'release' | 'debug';
  /** false, or the debug hooks' settings. */
  debugHooks: false | { serialNumbers: boolean };
  shared: boolean;
  /** The concurrency of a shared heap; undefined for one that is not. */
  concurrency: Concurrency | undefined;
}

const DEFAULTS = { preset: 'cpython-3.12', maxMemory: MAX_MEMORY, build: 'release' } as const;
const OPTION_NAMES = new Set([
  'preset', 'alignment', 'poolSize', 'arenaSize', 'smallRequestThreshold', 'maxMemory', 'build', 'debugHooks',
  'shared', 'concurrency',
]);
export const POOL_HEADER_BYTES = 32;

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/** Merges options over the preset and the defaults, and validates the result. */
export function resolveConfig(options: HeapOptions = {}): HeapConfig {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('options must be an object');
  }
  for (const key of Object.keys(options)) {
    if (!OPTION_NAMES.has(key)) {
      throw new TypeError(`unknown option '${key}' (valid: ${[...OPTION_NAMES].join(', ')})`);
    }
  }
  const preset = options.preset ?? DEFAULTS.preset;
  if (!Object.hasOwn(PRESETS, preset)) {
    throw new RangeError(
      `options.preset must be one of ${Object.keys(PRESETS).map((p) => `'${p}'`).join(', ')}`,
    );
  }
  const base = PRESETS[preset];
  const alignment = options.alignment ?? base.alignment;
  const poolSize = options.poolSize ?? base.poolSize;
  const arenaSize = options.arenaSize ?? base.arenaSize;
  const smallRequestThreshold = options.smallRequestThreshold ?? base.smallRequestThreshold;
  const maxMemory = options.maxMemory ?? DEFAULTS.maxMemory;
  const build = options.build ?? DEFAULTS.build;

  if (alignment !== 8 && alignment !== 16) {
    throw new RangeError('options.alignment must be 8 or 16');
  }
  if (!isPowerOfTwo(arenaSize) || arenaSize < WASM_PAGE || arenaSize > MAX_ARENA_SIZE) {
    throw new RangeError(
      'options.arenaSize must be a power of two from 65536 (the wasm page) to 67108864 (64 MiB)',
    );
  }
  if (!isPowerOfTwo(poolSize) || poolSize < 4096 || poolSize > arenaSize) {
    throw new RangeError('options.poolSize must be a power of two from 4096 to options.arenaSize');
  }
  if (
    !Number.isInteger(smallRequestThreshold) || smallRequestThreshold < alignment ||
    smallRequestThreshold > 512 || smallRequestThreshold % alignment !== 0
  ) {
    throw new RangeError(
      'options.smallRequestThreshold must be a multiple of options.alignment from alignment to 512',
    );
  }
  if (!Number.isInteger(maxMemory) || maxMemory < WASM_PAGE || maxMemory > MAX_MEMORY) {
    throw new RangeError(`options.maxMemory must be an integer from ${WASM_PAGE} to ${MAX_MEMORY}`);
  }
  if (build !== 'release' && build !== 'debug') {
    throw new RangeError("options.build must be 'release' or 'debug'");
  }
  const debugHooks = resolveDebugHooks(options.debugHooks);
  const shared = options.shared ?? false;
  if (typeof shared !== 'boolean') throw new TypeError('options.shared must be a boolean');
  const concurrency = options.concurrency ?? (shared ? 'gil' : undefined);
  if (concurrency !== undefined && !CONCURRENCIES.includes(concurrency)) {
    throw new RangeError("options.concurrency must be 'gil', 'free-threaded' or 'none'");
  }
  if (shared && presetPolicy(preset) === 'tuned') {
    throw new RangeError("options.preset 'tuned' is not built for a shared heap: use a CPython preset with options.shared");
  }
  if (concurrency !== undefined && !shared) {
    throw new RangeError('options.concurrency is for a shared heap: set options.shared to true');
  }
  return {
    preset,
    alignment,
    poolSize,
    arenaSize,
    smallRequestThreshold,
    numClasses: smallRequestThreshold / alignment,
    poolsPerArena: arenaSize / poolSize,
    poolOverhead: Math.ceil(POOL_HEADER_BYTES / alignment) * alignment,
    policy: presetPolicy(preset),
    maxMemory,
    build,
    debugHooks,
    shared,
    concurrency,
  };
}

function resolveDebugHooks(value: HeapOptions['debugHooks']): HeapConfig['debugHooks'] {
  if (value === undefined || value === false) return false;
  if (value === true) return { serialNumbers: false };
  if (typeof value !== 'object' || value === null) {
    throw new TypeError('options.debugHooks must be a boolean or { serialNumbers?: boolean }');
  }
  for (const key of Object.keys(value)) {
    if (key !== 'serialNumbers') throw new TypeError(`unknown option 'debugHooks.${key}' (valid: serialNumbers)`);
  }
  const serialNumbers = value.serialNumbers ?? false;
  if (typeof serialNumbers !== 'boolean') throw new TypeError('options.debugHooks.serialNumbers must be a boolean');
  return { serialNumbers };
}
