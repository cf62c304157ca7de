// The replay harness: runs a workload through one allocator inside Wasm and measures it.
//
//     workload chunks ──> segments (≤ op buffer, ending at each sample point) ──> replay_run
//                          │ live bytes computed here, from the sizes the ops ask for
//                          └ after each segment: footprint = memory.buffer.byteLength − baseline
//
// Only the replay_run calls are timed. The footprint is what the allocator itself committed,
// measured the same way for every allocator: memory.buffer.byteLength less a baseline, which is
// the module's memory before replay_init plus the scratch space replay_init reserves (the id
// table and the op buffer, in whole wasm pages, as both drivers take them). Tricky: the baseline
// is not simply the memory right after replay_init, because the drivers start the allocator
// inside replay_init (one malloc and free, before reserving scratch: TLSF and dlmalloc claim
// the end of memory when they start), and that first growth is the allocator's: pymalloc's
// first arena, dlmalloc's first sbrk. Counting it in the baseline would hide a whole arena.
// Wasm memory only grows, so the footprint never falls: the final footprint, after every block
// has been freed (frees for the ids still live are appended to every workload), is the peak.
//
// Fragmentation is Johnstone & Wilson's: peak footprint / peak live bytes, two peaks that may
// come at different times. The footprint at the moment of peak live is measured exactly: the
// segment holding a new peak of live bytes is split after the op that reached it.

import { OP_ALLOC, OP_FIELDS, OP_FREE, OP_REALLOC } from '../trace/format.js';
import { isPymalloc, loadAllocator, type AllocatorName, type AllocatorOptions, type WasmAllocator } from './allocators.js';
import { AllocatorError, ReplayError } from './errors.js';
import { debugMallocStats, decodeArenaMap, summarizeStats, type ArenaMap } from './pymalloc.js';
import type { Workload } from './workloads.js';

export interface ReplayOptions extends AllocatorOptions {
  /**
   * About how many points of the live-bytes and footprint curves to keep.
   * @default 500
   */
  samples?: number;
  /**
   * Run the allocator's churn loop on a throwaway instance first, so that the timed code is the
   * engine's optimised tier (once per allocator and process).
   * @default true
   */
  warmUp?: boolean;
  /** Called after every segment with the ops run so far and the total. */
  onProgress?: (done: number, total: number) => void;
}

/** The curves along the workload, one entry per sample point. */
export interface ReplaySamples {
  /** Ops run before the sample was taken. */
  op: number[];
  liveBytes: number[];
  footprintBytes: number[];
  /** pymalloc only: arenas attached, pools holding blocks, blocks in use. */
  arenas?: number[];
  usedPools?: number[];
  blocksInUse?: number[];
}

/** The figures every row of a comparison has, Wasm or native: with the allocator, the CLI's JSON. */
export interface MeasuredFigures {
  workload: string;
  /** Ops run: the workload's and the frees appended for the blocks it left live. */
  ops: number;
  /** Time in replay_run per op. */
  nsPerOp: number;
  peakLiveBytes: number;
  peakFootprintBytes: number;
  /** peakFootprintBytes / peakLiveBytes (0 when nothing was ever live). */
  fragmentation: number;
  /** Footprint after every block was freed. */
  finalFootprintBytes: number;
}

/** What a replay measured. */
export interface ReplayResult extends MeasuredFigures {
  allocator: AllocatorName;
  /** Footprint right after the op at which live bytes peaked. */
  footprintAtPeakLiveBytes: number;
  /** Index of that op. */
  peakLiveOp: number;
  /** Ops of the workload itself; the rest are the appended frees. */
  workloadOps: number;
  samples: ReplaySamples;
  /** pymalloc only: its arenas at the end of the workload, before the appended frees. */
  arenaMap?: ArenaMap;
  /** pymalloc only: sys._debugmallocstats() at the end of the workload, before the appended frees. */
  debugMallocStats?: string;
}

const DEFAULT_SAMPLES = 500;
const REPLAY_DONE = -1;
const WARM_UP = { live: 2000, steps: 100_000, seed: 1, maxSize: 2048 } as const;

const WASM_PAGE = 65536;
const ID_BYTES = 4;
const OP_BYTES = OP_FIELDS * 4;

/** The scratch memory replay_init reserves with memory.grow (peers/README.md). */
function scratchBytes(ids: number, capacity: number): number {
  return Math.ceil((ids * ID_BYTES + capacity * OP_BYTES) / WASM_PAGE) * WASM_PAGE;
}

const warmed = new Set<string>();

async function warmUp(name: AllocatorName, options: AllocatorOptions): Promise<void> {
  const key = `${options.wasmDir ?? ''}:${name}`;
  if (warmed.has(key)) return;
  const { live, steps, seed, maxSize } = WARM_UP;
  if ((await loadAllocator(name, options)).churn(live, steps, seed, maxSize) === 0) {
    throw new AllocatorError(name, 'an allocation failed in the warm-up churn loop');
  }
  warmed.add(key);
}

/** The replay of one workload on one allocator instance: the state between segments. */
class Replayer {
  private readonly sizes: Float64Array;
  private readonly isLive: Uint8Array;
  private readonly baseline: number;
  private liveBytes = 0;
  private done = 0;
  private elapsedNs = 0n;
  private nextSample = 0;
  peakLiveBytes = 0;
  peakLiveOp = 0;
  footprintAtPeak = 0;
  readonly samples: ReplaySamples = { op: [], liveBytes: [], footprintBytes: [] };

  constructor(
    private readonly allocator: WasmAllocator,
    private readonly workload: string,
    idLimit: number,
    private readonly total: number,
    private readonly interval: number,
    private readonly onProgress?: (done: number, total: number) => void,
  ) {
    const before = allocator.memory.buffer.byteLength;
    const ids = Math.max(1, idLimit);
    allocator.replayInit(ids);
    this.baseline = before + scratchBytes(ids, allocator.replayCapacity);
    this.sizes = new Float64Array(idLimit);
    this.isLive = new Uint8Array(idLimit);
    if (allocator.introspection !== undefined) {
      Object.assign(this.samples, { arenas: [], usedPools: [], blocksInUse: [] });
    }
    this.sample();
  }

  get footprint(): number {
    return this.allocator.memory.buffer.byteLength - this.baseline;
  }

  get ops(): number {
    return this.done;
  }

  get nsPerOp(): number {
    return this.done === 0 ? 0 : Number(this.elapsedNs) / this.done;
  }

  /** Frees for every id still live, in id order. */
  remainingFrees(): Uint32Array {
    const frees: number[] = [];
    for (let id = 0; id < this.isLive.length; id++) if (this.isLive[id]) frees.push(OP_FREE, id, 0);
    return Uint32Array.from(frees);
  }

  /** Runs a chunk of ops, a segment at a time. */
  run(ops: Uint32Array): void {
    const count = ops.length / OP_FIELDS;
    for (let start = 0; start < count; ) {
      const end = Math.min(count, start + this.allocator.replayCapacity, start + this.nextSample - this.done);
      const peakAt = this.account(ops, start, end);
      if (peakAt >= 0) {
        this.segment(ops, start, peakAt + 1);
        this.footprintAtPeak = this.footprint;
        if (peakAt + 1 < end) this.segment(ops, peakAt + 1, end);
      } else {
        this.segment(ops, start, end);
      }
      start = end;
      if (this.done >= this.nextSample) this.sample();
      this.onProgress?.(this.done, this.total);
    }
  }

  /** Takes a sample unless the last one was taken at this op. */
  sample(): void {
    const { samples } = this;
    if (samples.op[samples.op.length - 1] !== this.done) {
      samples.op.push(this.done);
      samples.liveBytes.push(this.liveBytes);
      samples.footprintBytes.push(this.footprint);
      const { introspection } = this.allocator;
      if (introspection !== undefined) {
        const { arenas, usedPools, blocksInUse } = summarizeStats(introspection.stats());
        samples.arenas!.push(arenas);
        samples.usedPools!.push(usedPools);
        samples.blocksInUse!.push(blocksInUse);
      }
    }
    this.nextSample = Math.min(this.total, this.done + this.interval);
    if (this.nextSample <= this.done) this.nextSample = this.done + this.interval;
  }

  /**
   * Updates live bytes over ops [start, end); returns the index of the op after which live
   * bytes reached a new peak highest in the segment, or -1 when no op did.
   */
  private account(ops: Uint32Array, start: number, end: number): number {
    const { sizes, isLive } = this;
    let live = this.liveBytes;
    let peakAt = -1;
    for (let i = start; i < end; i++) {
      const kind = ops[i * OP_FIELDS];
      const id = ops[i * OP_FIELDS + 1];
      const size = ops[i * OP_FIELDS + 2];
      if (kind === OP_ALLOC || kind === OP_REALLOC) {
        live += size - sizes[id];
        sizes[id] = size;
        isLive[id] = 1;
      } else if (kind === OP_FREE) {
        live -= sizes[id];
        sizes[id] = 0;
        isLive[id] = 0;
      }
      if (live > this.peakLiveBytes) {
        this.peakLiveBytes = live;
        this.peakLiveOp = this.done + (i - start) + 1;
        peakAt = i;
      }
    }
    this.liveBytes = live;
    return peakAt;
  }

  /** Copies ops [start, end) into the op buffer and runs them, timing the run only. */
  private segment(ops: Uint32Array, start: number, end: number): void {
    const count = end - start;
    this.allocator.replayOps().set(ops.subarray(start * OP_FIELDS, end * OP_FIELDS));
    let failed: number;
    const began = process.hrtime.bigint();
    try {
      failed = this.allocator.replayRun(count);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new ReplayError(this.allocator.name, this.workload, this.done, `the module trapped in a batch of ${count} ops starting here (${reason})`, { cause: error });
    }
    this.elapsedNs += process.hrtime.bigint() - began;
    if (failed !== REPLAY_DONE) {
      const at = (start + failed) * OP_FIELDS;
      const [kind, id, size] = ops.subarray(at, at + OP_FIELDS);
      const what = kind === OP_ALLOC ? `alloc of ${size} bytes for id ${id}` : kind === OP_REALLOC ? `realloc of id ${id} to ${size} bytes` : `op [${kind}, ${id}, ${size}]`;
      throw new ReplayError(this.allocator.name, this.workload, this.done + failed, `${what} failed (footprint ${this.footprint} bytes)`);
    }
    this.done += count;
  }
}

/**
 * Replays the workload on a fresh instance of the allocator.
 * @throws ReplayError when an op cannot be run: no partial result is returned
 * @throws AllocatorUnavailableError when the allocator is not built
 */
export async function replay(name: AllocatorName, workload: Workload, options: ReplayOptions = {}): Promise<ReplayResult> {
  const samples = options.samples ?? DEFAULT_SAMPLES;
  if (!Number.isInteger(samples) || samples < 1) throw new RangeError(`options.samples must be a positive integer, got ${samples}`);
  const shape = await workload.shape();
  if (options.warmUp ?? true) await warmUp(name, options);
  const allocator = await loadAllocator(name, options);
  const total = shape.ops + shape.liveAtEnd;
  const interval = Math.max(1, Math.ceil(total / samples));
  const replayer = new Replayer(allocator, workload.name, shape.idLimit, total, interval, options.onProgress);

  for await (const chunk of workload.chunks()) replayer.run(chunk);
  replayer.sample();
  const workloadOps = replayer.ops;
  const { introspection } = allocator;
  const arenaMap = introspection && decodeArenaMap(introspection.arenaMap());
  const stats = introspection && isPymalloc(name) ? debugMallocStats(name, introspection.stats()) : undefined;
  replayer.run(replayer.remainingFrees());
  replayer.sample();

  const peakFootprintBytes = Math.max(...replayer.samples.footprintBytes, replayer.footprintAtPeak);
  const { peakLiveBytes } = replayer;
  return {
    allocator: name,
    workload: workload.name,
    ops: replayer.ops,
    nsPerOp: replayer.nsPerOp,
    peakLiveBytes,
    peakFootprintBytes,
    fragmentation: peakLiveBytes === 0 ? 0 : peakFootprintBytes / peakLiveBytes,
    finalFootprintBytes: replayer.footprint,
    footprintAtPeakLiveBytes: replayer.footprintAtPeak,
    peakLiveOp: replayer.peakLiveOp,
    workloadOps,
    samples: replayer.samples,
    ...(arenaMap !== undefined && { arenaMap }),
    ...(stats !== undefined && { debugMallocStats: stats }),
  };
}
