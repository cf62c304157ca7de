// The allocators a comparison runs: each a Wasm module in build/peers/ (built by
// scripts/build-peers.sh) with the driver ABI of peers/README.md: peer_malloc, peer_free,
// peer_realloc (one op per call), churn, replay_init, replay_ops, replay_capacity, replay_table,
// replay_run. The pymalloc modules also export the core's stats(), arenaMap() and IO buffer
// (peers/pymalloc/driver.ts).
//
// It is the one loader of these modules: the CLI (from dist/, with plain node), the benchmarks
// and the tests all use it. Each module is compiled once per process and instantiated afresh
// for every replay: every replay starts from an untouched heap.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { userCacheDir } from '../trace/cache.js';
import { AllocatorError, AllocatorUnavailableError, UsageError } from './errors.js';

export const ALLOCATOR_NAMES = ['pymalloc-3.12', 'pymalloc-3.7', 'pymalloc-tuned', 'tlsf', 'bump', 'dlmalloc', 'mimalloc'] as const;

export type AllocatorName = (typeof ALLOCATOR_NAMES)[number];

/** The geometry preset of each pymalloc module (scripts/build-peers.sh's --use flags). */
export const PYMALLOC_PRESETS = {
  'pymalloc-3.12': 'cpython-3.12',
  'pymalloc-3.7': 'cpython-3.7',
  'pymalloc-tuned': 'tuned',
} as const;

export type PymallocName = keyof typeof PYMALLOC_PRESETS;

export function isPymalloc(name: string): name is PymallocName {
  return Object.hasOwn(PYMALLOC_PRESETS, name);
}

/** The repository root: this file is src/tools/compare/ or dist/tools/compare/. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The version of this package, from its package.json. */
export const PACKAGE_VERSION = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** The modules `npm ci` builds (and the package ships): every peer that needs only npm packages. */
export const DEFAULT_WASM_DIR = join(PACKAGE_ROOT, 'build', 'peers');

/** The peers compiled from C with clang; in an installed package they are built on first use. */
export const C_PEERS: readonly AllocatorName[] = ['dlmalloc', 'mimalloc'];

/** Where `pymalloc peers --build` puts the C peers: the user's cache, never the package. */
export function userPeersDir(): string {
  return join(userCacheDir(), 'peers');
}

/** What to run for an allocator that is not built. */
export function buildHint(name: AllocatorName): string {
  return C_PEERS.includes(name)
    ? `run \`pymalloc peers --build\` (it needs ${C_TOOLCHAIN_PACKAGES.join(', ')}: apt-get install ${C_TOOLCHAIN_PACKAGES.join(' ')})`
    : 'run `npm run build:peers` in a checkout of pymalloc-wasm';
}

/** Debian's packages that compile C for wasm32-wasi. */
export const C_TOOLCHAIN_PACKAGES = ['clang', 'lld', 'wasi-libc', 'libclang-rt-dev-wasm32'] as const;

/** Bytes of a wasm page, and the pages of wasm32's 4 GiB address space. */
export const WASM_PAGE_BYTES = 65536;
export const WASM32_PAGES = 65536;

/**
 * What a person reading a comparison must know of a peer: how it behaves on wasm32 whatever the
 * harness does (investigated on mimalloc 2.0.9's source, src/os.c and src/segment.c, built as
 * scripts/build-peers.sh builds it; peers/README.md says the same).
 */
export const PEER_NOTES: Partial<Record<AllocatorName, string>> = {
  mimalloc:
    'mimalloc 2.0.9 on wasm32 never reuses the memory of a freed block larger than 2 MiB: such a block gets a ' +
    '"huge" segment of its own, taken with memory.grow, and freeing it hands the segment back to the OS layer, ' +
    'whose wasi version cannot give memory back and keeps no list of it (os.c: "sbrk heap cannot be shrunk"), so ' +
    'the next large block grows memory again; a trace that allocates and frees a 50 MB block 100 times runs out ' +
    "of wasm32's 4 GiB. Only its regular 4 MiB segments are reused (its segment cache). Each segment is also " +
    'aligned to 4 MiB by growing memory past the padding, which is lost. Not a setting of this build: no mimalloc ' +
    'option (MI_*) changes it; arenas would reuse the memory but must be reserved, that is grown, up front.',
};

/** What a module was built from (scripts/build-peers.sh writes <name>.version beside it). */
export function allocatorBuiltFrom(name: AllocatorName, options: AllocatorOptions = {}): string {
  const file = wasmPath(name, options).replace(/\.wasm$/, '.version');
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : 'unknown';
}

/** The exports of every allocator module. */
interface DriverExports {
  memory: WebAssembly.Memory;
  peer_malloc(size: number): number;
  peer_free(address: number): void;
  peer_realloc(address: number, size: number): number;
  churn(live: number, steps: number, seed: number, maxSize: number): number;
  replay_init(maxIds: number): number;
  replay_ops(): number;
  replay_capacity(): number;
  replay_table(): number;
  replay_run(count: number): number;
}

/** The pymalloc modules' extra exports (peers/pymalloc/driver.ts). */
interface IntrospectionExports {
  stats(): void;
  arenaMap(): number;
  ioBuffer(): number;
  ioWords(): number;
}

/** A fresh instance of one allocator module. */
export interface WasmAllocator {
  readonly name: AllocatorName;
  /** `memory.buffer.byteLength` is the module's committed memory. */
  readonly memory: WebAssembly.Memory;
  /** The most wasm pages memory can have: the module's declared maximum, else wasm32's 65536. */
  readonly maxPages: number;
  /** malloc, the block's first byte written; the address (unsigned), 0 iff it failed. */
  malloc(size: number): number;
  /** realloc with C's meaning for address 0; the address (unsigned), 0 iff it failed. */
  realloc(address: number, size: number): number;
  free(address: number): void;
  /** Ops the op buffer holds. */
  readonly replayCapacity: number;
  /** The churn loop of peers/README.md; 0 iff an allocation failed. */
  churn(live: number, steps: number, seed: number, maxSize: number): number;
  /**
   * Reserves the id table and the op buffer with memory.grow, before the allocator grows memory.
   * @throws AllocatorError when memory cannot grow
   */
  replayInit(maxIds: number): void;
  /** A live view of the op buffer (rebuilt after memory grows). */
  replayOps(): Uint32Array;
  /** A live view of the id table: the address each id holds (0 when freed or never allocated). */
  replayTable(): Uint32Array;
  /** Runs the first `count` ops of the op buffer: -1, or the index of the first op that failed. */
  replayRun(count: number): number;
  /** pymalloc only: copies of the statistics and arena map records of the IO buffer. */
  readonly introspection?: {
    stats(): Uint32Array;
    arenaMap(): Uint32Array;
  };
}

export interface AllocatorOptions {
  /**
   * Directory that holds `<name>.wasm`.
   * @default build/peers/ of this package, then userPeersDir() for the C peers built on first use
   */
  wasmDir?: string;
  /**
   * The geometry a module of the sweep (SWEEP_WASM_DIR: pymalloc's policies under any geometry)
   * runs, handed to it as it starts; the other modules take none.
   */
  geometry?: PymallocGeometry;
}

/** A pymalloc geometry in bytes, as HeapOptions names it (src/heap/config.ts). */
export interface PymallocGeometry {
  alignment: number;
  poolSize: number;
  arenaSize: number;
  smallRequestThreshold: number;
}

/**
 * The modules of `pymalloc sweep`: pymalloc-3.12.wasm runs CPython's policy, pymalloc-tuned.wasm
 * the tuned one, each under the geometry of AllocatorOptions.geometry (peers/pymalloc/runtime.ts).
 */
export const SWEEP_WASM_DIR = join(DEFAULT_WASM_DIR, 'sweep');

/** Throws UsageError unless every name is an allocator; the message lists the valid ones. */
export function parseAllocatorNames(names: readonly string[]): AllocatorName[] {
  const unknown = names.filter((name) => !(ALLOCATOR_NAMES as readonly string[]).includes(name));
  if (unknown.length > 0) {
    throw new UsageError(`unknown allocator ${unknown.map((n) => `"${n}"`).join(', ')}: valid names are ${ALLOCATOR_NAMES.join(', ')}`);
  }
  return names as AllocatorName[];
}

/** The module of an allocator: in the given directory, or the first of the default ones that has it. */
export function wasmPath(name: AllocatorName, options: AllocatorOptions = {}): string {
  if (options.wasmDir !== undefined) return join(options.wasmDir, `${name}.wasm`);
  const shipped = join(DEFAULT_WASM_DIR, `${name}.wasm`);
  const built = join(userPeersDir(), `${name}.wasm`);
  return !existsSync(shipped) && existsSync(built) ? built : shipped;
}

/** Names of the allocators whose module has been built, in ALLOCATOR_NAMES order. */
export function builtAllocators(options: AllocatorOptions = {}): AllocatorName[] {
  return ALLOCATOR_NAMES.filter((name) => existsSync(wasmPath(name, options)));
}

// ---- the WASI functions the C modules import ----------------------------------------------------
// They run no program: no arguments, no environment, no files. Output to stdout or stderr goes to
// the host's stderr, so that an allocator's warning never mixes into a report on stdout.

const WASI = 'wasi_snapshot_preview1';
const ERRNO_SUCCESS = 0;
const ERRNO_BADF = 8;
const ERRNO_SPIPE = 70;
const CLOCK_REALTIME = 0;

type WasiFunction = (...args: never[]) => number | void;

/** The sweep modules' one import: the geometry, asked for field by field in heapInit's order. */
function geometryImports(name: AllocatorName, geometry: PymallocGeometry | undefined): WebAssembly.Imports {
  if (geometry === undefined) throw new AllocatorError(name, 'is a module of the sweep: it needs options.geometry');
  const fields = [Math.log2(geometry.alignment), geometry.smallRequestThreshold, Math.log2(geometry.poolSize), Math.log2(geometry.arenaSize)];
  return { env: { pymallocGeometry: (field: number) => fields[field] } };
}

function wasiImports(name: AllocatorName, module: WebAssembly.Module, memory: () => WebAssembly.Memory, geometry?: PymallocGeometry): WebAssembly.Imports {
  const data = () => new DataView(memory().buffer);
  const noStrings = (countAt: number, bytesAt: number) => {
    data().setUint32(countAt, 0, true);
    data().setUint32(bytesAt, 0, true);
    return ERRNO_SUCCESS;
  };
  const functions: Record<string, WasiFunction> = {
    args_sizes_get: noStrings,
    args_get: () => ERRNO_SUCCESS,
    environ_sizes_get: noStrings,
    environ_get: () => ERRNO_SUCCESS,
    clock_time_get: (clock: number, _precision: bigint, at: number) => {
      const now = clock === CLOCK_REALTIME ? BigInt(Date.now()) * 1_000_000n : process.hrtime.bigint();
      data().setBigUint64(at, now, true);
      return ERRNO_SUCCESS;
    },
    fd_write: (fd: number, iovecs: number, count: number, writtenAt: number) => {
      if (fd !== 1 && fd !== 2) return ERRNO_BADF;
      let written = 0;
      for (let i = 0; i < count; i++) {
        const base = data().getUint32(iovecs + 8 * i, true);
        const length = data().getUint32(iovecs + 8 * i + 4, true);
        process.stderr.write(new Uint8Array(memory().buffer, base, length).slice());
        written += length;
      }
      data().setUint32(writtenAt, written, true);
      return ERRNO_SUCCESS;
    },
    fd_close: () => ERRNO_BADF,
    fd_fdstat_get: () => ERRNO_BADF,
    fd_seek: () => ERRNO_SPIPE,
    sched_yield: () => ERRNO_SUCCESS,
    random_get: (at: number, length: number) => {
      const bytes = new Uint8Array(memory().buffer, at, length);
      for (let done = 0; done < length; done += 65536) crypto.getRandomValues(bytes.subarray(done, done + 65536));
      return ERRNO_SUCCESS;
    },
    proc_exit: (code: number) => {
      throw new AllocatorError(name, `called proc_exit(${code})`);
    },
  };
  const all = WebAssembly.Module.imports(module);
  const takesGeometry = all.some((i) => i.module === 'env' && i.name === 'pymallocGeometry');
  const wanted = all.filter((i) => !(takesGeometry && i.module === 'env' && i.name === 'pymallocGeometry'));
  const missing = wanted.filter((i) => i.module !== WASI || !Object.hasOwn(functions, i.name));
  if (missing.length > 0) {
    throw new AllocatorError(name, `imports no stub provides: ${missing.map((i) => `${i.module}.${i.name}`).join(', ')}`);
  }
  return {
    ...(takesGeometry && geometryImports(name, geometry)),
    ...(wanted.length > 0 && { [WASI]: Object.fromEntries(wanted.map((i) => [i.name, functions[i.name]])) }),
  };
}

// ---- loading ------------------------------------------------------------------------------------

/** Reads the unsigned LEB128 at `at`; returns it and the offset after it. */
function leb128(bytes: Uint8Array, at: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  let byte: number;
  do {
    byte = bytes[at++];
    value += (byte & 0x7f) * scale;
    scale *= 128;
  } while (byte & 0x80 && at < bytes.length);
  return [value, at];
}

const MEMORY_SECTION = 5;
const LIMITS_HAS_MAXIMUM = 1;
const SECTIONS_START = 8;

/**
 * The maximum pages of the module's own memory: the limits of its memory section, else wasm32's
 * 65536 (no maximum declared, or memory imported). WebAssembly.Memory does not tell it in Node 20.
 */
export function declaredMaxPages(bytes: Uint8Array): number {
  for (let at = SECTIONS_START; at < bytes.length; ) {
    const id = bytes[at];
    const [size, body] = leb128(bytes, at + 1);
    if (id === MEMORY_SECTION) {
      const [count, first] = leb128(bytes, body);
      if (count === 0) break;
      const [flags, initialAt] = leb128(bytes, first);
      if ((flags & LIMITS_HAS_MAXIMUM) === 0) break;
      const [, maximumAt] = leb128(bytes, initialAt);
      return Math.min(leb128(bytes, maximumAt)[0], WASM32_PAGES);
    }
    at = body + size;
  }
  return WASM32_PAGES;
}

interface CompiledModule {
  module: WebAssembly.Module;
  maxPages: number;
}

const modules = new Map<string, CompiledModule>();

function compile(name: AllocatorName, path: string): CompiledModule {
  let compiled = modules.get(path);
  if (compiled === undefined) {
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = new Uint8Array(readFileSync(path));
    } catch (cause) {
      throw new AllocatorUnavailableError(name, path, buildHint(name), { cause });
    }
    compiled = { module: new WebAssembly.Module(bytes), maxPages: declaredMaxPages(bytes) };
    modules.set(path, compiled);
  }
  return compiled;
}

/** A view of `words()` u32 at `address()`, rebuilt whenever memory growth replaced the buffer. */
function liveView(memory: WebAssembly.Memory, address: () => number, words: () => number): () => Uint32Array {
  let view = new Uint32Array(0);
  return () => {
    if (view.buffer !== memory.buffer || view.length !== words()) {
      view = new Uint32Array(memory.buffer, address(), words());
    }
    return view;
  };
}

/**
 * A fresh instance of the named allocator.
 * @throws UsageError for an unknown name
 * @throws AllocatorUnavailableError when its module has not been built
 */
export async function loadAllocator(name: AllocatorName, options: AllocatorOptions = {}): Promise<WasmAllocator> {
  parseAllocatorNames([name]);
  const { module, maxPages } = compile(name, wasmPath(name, options));
  let exported: (DriverExports & Partial<IntrospectionExports>) | undefined;
  const instance = await WebAssembly.instantiate(module, wasiImports(name, module, () => exported!.memory, options.geometry));
  exported = instance.exports as unknown as DriverExports & Partial<IntrospectionExports>;
  const wasm = exported;
  const replayCapacity = wasm.replay_capacity();
  const ops = liveView(wasm.memory, () => wasm.replay_ops() >>> 0, () => replayCapacity * 3);
  let tableIds = 0;
  const allocator: WasmAllocator = {
    name,
    memory: wasm.memory,
    maxPages,
    malloc: (size) => wasm.peer_malloc(size) >>> 0,
    realloc: (address, size) => wasm.peer_realloc(address, size) >>> 0,
    free: (address) => wasm.peer_free(address),
    replayCapacity,
    churn: (live, steps, seed, maxSize) => wasm.churn(live, steps, seed, maxSize) >>> 0,
    replayInit(maxIds) {
      const status = wasm.replay_init(maxIds);
      if (status !== 0) throw new AllocatorError(name, `cannot reserve an id table of ${maxIds} entries (status ${status})`);
      tableIds = Math.max(tableIds, maxIds);
    },
    replayOps: ops,
    replayTable: liveView(wasm.memory, () => wasm.replay_table() >>> 0, () => tableIds),
    replayRun: (count) => wasm.replay_run(count),
  };
  if (wasm.stats !== undefined && wasm.arenaMap !== undefined && wasm.ioBuffer !== undefined && wasm.ioWords !== undefined) {
    const { stats, arenaMap, ioBuffer, ioWords } = wasm as IntrospectionExports & DriverExports;
    const io = () => new Uint32Array(wasm.memory.buffer, ioBuffer() >>> 0, ioWords());
    return {
      ...allocator,
      introspection: {
        stats: () => (stats(), io().slice()),
        arenaMap: () => {
          arenaMap();
          const words = io();
          return words.slice(0, words[6]);
        },
      },
    };
  }
  return allocator;
}
