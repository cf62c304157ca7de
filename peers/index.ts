// Loads the peer allocators (build/peers/<name>.wasm, built by scripts/build-peers.sh) behind one
// interface. Every peer module exports the same functions (peers/README.md); this file turns them
// into a `Peer`. Each module is compiled once per process and instantiated afresh per loadPeer,
// so every replay starts from an untouched heap.

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

import { OP_FIELDS } from '../src/trace/format.js';
import { PeerError, PeerUnavailableError } from './errors.js';
import { wasiImports } from './wasi.js';

export { PeerError, PeerUnavailableError } from './errors.js';

export const PEER_NAMES = ['pymalloc-3.12', 'pymalloc-3.7', 'tlsf', 'bump', 'dlmalloc', 'mimalloc'] as const;

export type PeerName = (typeof PEER_NAMES)[number];

export interface PeerOptions {
  /**
   * Directory that holds `<name>.wasm`.
   * @default the repository's build/peers/
   */
  wasmDir?: string;
}

const defaultOptions: Required<PeerOptions> = {
  wasmDir: fileURLToPath(new URL('../build/peers/', import.meta.url)),
};

/** A fresh instance of one peer allocator, with its benchmark loops. */
export interface Peer {
  readonly name: PeerName;
  /** The instance's memory; `memory.buffer.byteLength` is its footprint. */
  readonly memory: WebAssembly.Memory;
  /**
   * Runs the small-object churn loop in Wasm: `live` blocks of 1..maxSize bytes, then `steps`
   * times free one at random and allocate a new one, then free all. Returns the xor of every
   * address allocated (0 iff an allocation failed).
   */
  churn(live: number, steps: number, seed: number, maxSize: number): number;
  /** Ops the op buffer holds. */
  readonly replayCapacity: number;
  /**
   * Reserves the id table and op buffer outside the allocator, before it is first used, so they
   * are part of the baseline footprint. Once per instance.
   * @throws PeerError when memory cannot grow or the table was already reserved smaller
   */
  replayInit(maxIds: number): void;
  /** Live view of the op buffer: `replayCapacity` ops in the trace format (src/trace/format.ts). */
  replayOps(): Uint32Array;
  /** Live view of the id table: the address each id holds (0 when freed or never allocated). */
  replayTable(): Uint32Array;
  /**
   * Runs the first `count` ops of the op buffer. Returns -1 when all ran, otherwise the index of
   * the first op that could not (an allocation of a nonzero size returned 0, an id outside the
   * table, an unknown kind). tlsf traps instead of returning 0 when memory cannot grow.
   */
  replayRun(count: number): number;
}

const INIT_OK = 0;
const INIT_OUT_OF_MEMORY = 1;

interface PeerExports {
  memory: WebAssembly.Memory;
  churn(live: number, steps: number, seed: number, maxSize: number): number;
  replay_init(maxIds: number): number;
  replay_ops(): number;
  replay_capacity(): number;
  replay_table(): number;
  replay_run(count: number): number;
}

const compiled = new Map<string, WebAssembly.Module>();

function wasmPath(name: PeerName, options: Required<PeerOptions>): string {
  return join(options.wasmDir, `${name}.wasm`);
}

function compile(name: PeerName, path: string): WebAssembly.Module {
  let module = compiled.get(path);
  if (module === undefined) {
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = new Uint8Array(readFileSync(path));
    } catch (cause) {
      throw new PeerUnavailableError(name, path, { cause });
    }
    module = new WebAssembly.Module(bytes);
    compiled.set(path, module);
  }
  return module;
}

/** Names of the peers whose .wasm has been built, in PEER_NAMES order. */
export function availablePeers(options: PeerOptions = {}): PeerName[] {
  const merged = { ...defaultOptions, ...options };
  return PEER_NAMES.filter((name) => existsSync(wasmPath(name, merged)));
}

/**
 * A fresh instance of the named peer.
 * @throws TypeError for a name not in PEER_NAMES
 * @throws PeerUnavailableError when its .wasm has not been built
 */
export async function loadPeer(name: PeerName, options: PeerOptions = {}): Promise<Peer> {
  if (!(PEER_NAMES as readonly string[]).includes(name)) {
    throw new TypeError(`name must be one of ${PEER_NAMES.join(', ')}, got ${String(name)}`);
  }
  const merged = { ...defaultOptions, ...options };
  const module = compile(name, wasmPath(name, merged));
  let exported: PeerExports | undefined;
  const imports = wasiImports(name, module, () => exported!.memory);
  const instance = await WebAssembly.instantiate(module, imports);
  exported = instance.exports as unknown as PeerExports;
  return wrap(name, exported);
}

function requireU32(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new RangeError(`${name} must be an integer in [0, 2**32), got ${value}`);
  }
}

/** A view of `length` u32 at `address`, rebuilt whenever memory growth replaced the buffer. */
function liveView(memory: WebAssembly.Memory, address: () => number, length: () => number) {
  let view = new Uint32Array(0);
  return (): Uint32Array => {
    if (view.buffer !== memory.buffer || view.length !== length()) {
      view = new Uint32Array(memory.buffer, address(), length());
    }
    return view;
  };
}

function wrap(name: PeerName, wasm: PeerExports): Peer {
  const replayCapacity = wasm.replay_capacity();
  let maxIds = 0;
  const opsAddress = () => wasm.replay_ops() >>> 0;
  const tableAddress = () => wasm.replay_table() >>> 0;
  const requireInit = () => {
    if (opsAddress() === 0) throw new PeerError(name, 'replayInit was not called');
  };
  const opsView = liveView(wasm.memory, opsAddress, () => replayCapacity * OP_FIELDS);
  const tableView = liveView(wasm.memory, tableAddress, () => maxIds);
  return {
    name,
    memory: wasm.memory,
    replayCapacity,
    churn(live, steps, seed, maxSize) {
      requireU32('live', live);
      requireU32('steps', steps);
      requireU32('seed', seed);
      requireU32('maxSize', maxSize);
      return wasm.churn(live, steps, seed, maxSize) >>> 0;
    },
    replayInit(requestedIds) {
      requireU32('maxIds', requestedIds);
      const status = wasm.replay_init(requestedIds);
      if (status === INIT_OUT_OF_MEMORY) {
        throw new PeerError(name, `cannot grow memory for an id table of ${requestedIds} entries`);
      }
      if (status !== INIT_OK) {
        throw new PeerError(name, `replayInit(${requestedIds}) after replayInit(${maxIds})`);
      }
      maxIds = Math.max(maxIds, requestedIds);
    },
    replayOps() {
      requireInit();
      return opsView();
    },
    replayTable() {
      requireInit();
      return tableView();
    },
    replayRun(count) {
      requireU32('count', count);
      return wasm.replay_run(count);
    },
  };
}
