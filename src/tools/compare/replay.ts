// The replay harness: runs a workload through one allocator and measures it, in two kinds of pass
// over fresh instances of the allocator's module, so that what is measured of memory never sees
// the harness and what is measured of time never leaves Wasm.
//
//   footprint pass   one JS call per op (peer_malloc / peer_free / peer_realloc), the id table in
//   (1 instance)     JS: nothing but the allocator's module is in its memory. After every op:
//                    footprint = memory.buffer.byteLength, live bytes from the sizes asked for.
//   warm-up run      replay_init, then replay_run one op at a time: untimed; finds the ops at
//   (1 instance)     which memory grows with the driver's scratch in memory.
//   timed runs       replay_init, then replay_run over batches of ops, as mimalloc-bench times a
//   (repeat × 1)     process: the whole run; each op found to grow memory is run and timed alone,
//                    so the time spent in memory.grow is known apart.
//
// Why two kinds: the timed runs need the ops in Wasm memory (the id table and the op buffer,
// 0.8-2.4 MiB of scratch reserved with memory.grow), and every growth policy that looks at the
// size of memory (TLSF doubles it, pymalloc's raw allocator grows by 1/8 of it, mimalloc aligns
// its 4 MiB segments to 4 MiB) then measures the harness too. So the footprint comes from the
// footprint pass only, and the timed runs give ns/op only. They also grow memory a different
// number of times (result.grows): fewer for the policies proportional to memory size.
//
// Tricky: replay_init starts the allocator before it reserves the scratch (TLSF and dlmalloc
// claim the end of memory when they start), so the allocator's start-up growth, pymalloc's first
// arena for one, is in no timed run. The time of an op that grew memory is memory.grow plus that
// op's own work (and the page faults of the bytes it writes); the faults of fresh memory touched
// by later ops stay in the op time, as they would natively.
//
// The footprint is the whole linear memory of the module: the allocator's static data, the C
// stack of the C peers, the driver's few globals and the heap. Nothing is subtracted: all of it
// is what a program linking that allocator would pay (the driver's globals are a few dozen bytes
// in a page the module needs anyway). Wasm memory never shrinks, so footprint = memory size, its
// peak is the final size, and it is read exactly after every op, never sampled.
//
// Fragmentation is Johnstone & Wilson's: peak footprint / peak live bytes, two peaks that may
// come at different times; with every byte of the module counted it is never below 1.
//
// A replay that cannot finish (an allocation returned 0, the module trapped) gives a result with
// its `failure`: the op, the live bytes then, the reason; the figures up to that op are kept.

import { OP_ALLOC, OP_FIELDS, OP_FREE, OP_REALLOC } from '../trace/format.js';
import { isPymalloc, loadAllocator, WASM32_PAGES, WASM_PAGE_BYTES, type AllocatorName, type AllocatorOptions, type WasmAllocator } from './allocators.js';
import { debugMallocStats, decodeArenaMap, summarizeStats, type ArenaMap } from './pymalloc.js';
import type { Workload } from './workloads.js';

export interface ReplayOptions extends AllocatorOptions {
  /**
   * About how many points of the live-bytes and footprint curves to keep.
   * @default 500
   */
  samples?: number;
  /**
   * Timed runs, each on a fresh instance after one untimed warm-up run; ns/op is their median.
   * @default 5 (DEFAULT_REPEAT)
   */
  repeat?: number;
  /**
   * Run the warm-up and the timed runs. Without them only the footprint pass runs and the
   * timing fields are null.
   * @default true
   */
  timing?: boolean;
  /** Called as the passes advance, with the ops run so far and the total of all passes. */
  onProgress?: (done: number, total: number) => void;
}

/** The curves along the workload, one entry per sample point, from the footprint pass. */
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

/**
 * Why a replay stopped:
 *   address-space  the allocation did not fit in what is left of wasm32's 4 GiB
 *   max-memory     it did not fit below the module's declared maximum memory
 *   refused        the allocator returned 0 with room left to grow (its own limit, a size it
 *                  does not serve)
 *   trap           the module trapped inside the allocator (TLSF traps when memory cannot grow)
 */
export type FailureReason = 'address-space' | 'max-memory' | 'refused' | 'trap';

/** A replay that could not finish: where, with how much live, and why. */
export interface ReplayFailure {
  /** The pass that stopped: the footprint pass, or the warm-up and timed runs (scratch in memory). */
  pass: 'footprint' | 'timing';
  /** 0-based index of the op that failed in the stream (workload, then the appended frees). */
  op: number;
  /** Live bytes just before that op. */
  liveBytes: number;
  /** The module's memory when it failed. */
  footprintBytes: number;
  reason: FailureReason;
  /** The op and the cause, for a person. */
  message: string;
}

/** The figures every row of a comparison has, Wasm or native: with the allocator, the CLI's JSON. */
export interface MeasuredFigures {
  workload: string;
  /** Ops of the stream: the workload's and the frees appended for the blocks it left live. */
  ops: number;
  /**
   * Median over the timed runs of each run's time per op (in Wasm: replay_run's; native: the
   * replay loop's), memory.grow included. Null without timed runs (a failure, or timing off).
   */
  nsPerOp: number | null;
  /** The fastest and slowest timed run: the spread around nsPerOp. */
  nsPerOpMin: number | null;
  nsPerOpMax: number | null;
  /** Timed runs behind nsPerOp (0 when none ran). */
  timedRuns: number;
  peakLiveBytes: number;
  peakFootprintBytes: number;
  /** peakFootprintBytes / peakLiveBytes; null when the ratio means nothing (fragmentationNote). */
  fragmentation: number | null;
  /** Why fragmentation is null. */
  fragmentationNote?: string;
  /** Footprint after every block was freed (or at the failure). */
  finalFootprintBytes: number;
  /** Present iff the replay could not finish. */
  failure?: ReplayFailure;
}

/** What a replay measured. */
export interface ReplayResult extends MeasuredFigures {
  allocator: AllocatorName;
  /** The module's memory before the first op: static data, C stack, start-up allocations. */
  initialFootprintBytes: number;
  /** Footprint right after the op at which live bytes peaked. */
  footprintAtPeakLiveBytes: number;
  /** Index of that op. */
  peakLiveOp: number;
  /** Ops of the workload itself; the rest are the appended frees. */
  workloadOps: number;
  /**
   * Median over the timed runs of the time spent in the ops that grew memory, per op of the run:
   * each such op is timed alone (memory.grow and that one op's own work, a few dozen ns). Part
   * of nsPerOp; nsPerOp − growNsPerOp is the allocator without memory.grow.
   */
  growNsPerOp: number | null;
  /** True iff some timed run grew memory at an op the warm-up did not: growNsPerOp is then low. */
  growNsIsLowerBound?: boolean;
  /**
   * Ops at which memory grew: in the footprint pass (the allocator alone) and in the timed runs
   * (the driver's scratch in memory too; its growth policy may grow more or less often).
   */
  grows: { footprint: number; timing: number | null };
  samples: ReplaySamples;
  /** pymalloc only: its arenas at the end of the workload, before the appended frees. */
  arenaMap?: ArenaMap;
  /** pymalloc only: sys._debugmallocstats() at the end of the workload, before the appended frees. */
  debugMallocStats?: string;
  /**
   * pymalloc only: the blocks live at the end of the workload, with arenaMap: their ids and the
   * addresses the allocator gave them, for attributing its arenas to the blocks' call sites.
   */
  liveBlocks?: { ids: Uint32Array; addresses: Uint32Array };
}

export const DEFAULT_REPEAT = 5;

/** The most timed runs a replay takes (--repeat). */
export const MAX_REPEAT = 100;
const DEFAULT_SAMPLES = 500;
const REPLAY_DONE = -1;
const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Below this many peak live bytes fragmentation is not reported: the footprint's unit (a wasm
 * page; glibc's heap grows by at least 128 KiB) and the module's fixed size would be the ratio.
 */
export const MIN_LIVE_FOR_FRAGMENTATION = 64 * KiB;

/**
 * An allocation that failed with less than its size plus this much left below the memory limit
 * is taken to have run out of memory: more than any peer adds to one request (mimalloc's 4 MiB
 * segment alignment, TLSF's and pymalloc's growth steps fall back to what is needed).
 */
const OUT_OF_MEMORY_SLACK = 8 * MiB;

/** fragmentation and its note, the same rule for every row, Wasm or native. */
export function fragmentationOf(peakFootprintBytes: number, peakLiveBytes: number): Pick<MeasuredFigures, 'fragmentation' | 'fragmentationNote'> {
  if (peakLiveBytes < MIN_LIVE_FOR_FRAGMENTATION) {
    return {
      fragmentation: null,
      fragmentationNote: `n/a: peak live ${peakLiveBytes} bytes is below ${MIN_LIVE_FOR_FRAGMENTATION / KiB} KiB, too little to measure`,
    };
  }
  return { fragmentation: peakFootprintBytes / peakLiveBytes };
}

/** The median, min and max of the runs' ns/op. */
export function spread(values: readonly number[]): { median: number | null; min: number | null; max: number | null } {
  if (values.length === 0) return { median: null, min: null, max: null };
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1] };
}

function describeOp(kind: number, id: number, size: number): string {
  if (kind === OP_ALLOC) return `alloc of ${size} bytes for id ${id}`;
  if (kind === OP_REALLOC) return `realloc of id ${id} to ${size} bytes`;
  if (kind === OP_FREE) return `free of id ${id}`;
  return `op [${kind}, ${id}, ${size}]`;
}

/** Why an allocation of `size` bytes returned 0 (or trapped) with the module's memory as it is. */
function failureOf(
  allocator: WasmAllocator, pass: ReplayFailure['pass'], op: number, liveBytes: number,
  [kind, id, size]: readonly number[], trap?: unknown,
): ReplayFailure {
  return failureAt({ name: allocator.name, maxPages: allocator.maxPages, footprintBytes: allocator.memory.buffer.byteLength }, pass, op, liveBytes, [kind, id, size], trap);
}

/** The state of a module when an op failed: enough to say why, after the instance is gone. */
interface FailedModule {
  name: AllocatorName;
  maxPages: number;
  footprintBytes: number;
}

function failureAt(
  { name, maxPages, footprintBytes }: FailedModule, pass: ReplayFailure['pass'], op: number, liveBytes: number,
  [kind, id, size]: readonly number[], trap?: unknown,
): ReplayFailure {
  const limitBytes = maxPages * WASM_PAGE_BYTES;
  const room = limitBytes - footprintBytes;
  const limit = maxPages === WASM32_PAGES ? "wasm32's 4 GiB" : `the module's maximum of ${(limitBytes / MiB).toFixed(1)} MiB`;
  const where = `${describeOp(kind, id, size)}, with ${(liveBytes / MiB).toFixed(2)} MiB live and ${(footprintBytes / MiB).toFixed(2)} MiB of memory, ${(room / MiB).toFixed(2)} MiB below ${limit}`;
  let reason: FailureReason;
  let cause: string;
  if (trap !== undefined) {
    reason = 'trap';
    cause = `the module trapped (${trap instanceof Error ? trap.message : String(trap)})`;
  } else if (room < size + OUT_OF_MEMORY_SLACK) {
    reason = maxPages === WASM32_PAGES ? 'address-space' : 'max-memory';
    cause = `out of memory: ${limit} reached`;
  } else {
    reason = 'refused';
    cause = 'the allocator returned 0 with room left to grow';
  }
  return { pass, op, liveBytes, footprintBytes, reason, message: `${name}: op ${op} failed: ${where}: ${cause}` };
}

/** Live bytes just before op `target` of the stream: for a failure found where none are counted. */
async function liveBytesBefore(workload: Workload, target: number): Promise<number> {
  const sizes = new Map<number, number>();
  let live = 0;
  let done = 0;
  for await (const chunk of workload.chunks()) {
    for (let i = 0; i < chunk.length && done < target; i += OP_FIELDS, done++) {
      const id = chunk[i + 1];
      live -= sizes.get(id) ?? 0;
      if (chunk[i] === OP_FREE) sizes.delete(id);
      else sizes.set(id, chunk[i + 2]);
      live += sizes.get(id) ?? 0;
    }
    if (done >= target) break;
  }
  return live;
}

// ---- the footprint pass -------------------------------------------------------------------------

/** One op per call from JS, the id table in JS: the allocator alone in its memory. */
class FootprintPass {
  private readonly addresses: Uint32Array;
  private readonly sizes: Float64Array;
  private readonly isLive: Uint8Array;
  private liveBytes = 0;
  private done = 0;
  private nextSample = 0;
  private bytes: number;
  peakLiveBytes = 0;
  peakLiveOp = 0;
  footprintAtPeak = 0;
  grows = 0;
  failure?: ReplayFailure;
  readonly initialBytes: number;
  readonly samples: ReplaySamples = { op: [], liveBytes: [], footprintBytes: [] };

  constructor(
    private readonly allocator: WasmAllocator,
    idLimit: number,
    private readonly total: number,
    private readonly interval: number,
    private readonly onProgress?: (done: number) => void,
  ) {
    this.addresses = new Uint32Array(idLimit);
    this.sizes = new Float64Array(idLimit);
    this.isLive = new Uint8Array(idLimit);
    this.bytes = this.initialBytes = allocator.memory.buffer.byteLength;
    this.footprintAtPeak = this.bytes;
    if (allocator.introspection !== undefined) {
      Object.assign(this.samples, { arenas: [], usedPools: [], blocksInUse: [] });
    }
    this.sample();
  }

  get ops(): number {
    return this.done;
  }

  /** Memory never shrinks: the footprint now is the peak so far. */
  get footprint(): number {
    return this.bytes;
  }

  /** Frees for every id still live, in id order. */
  remainingFrees(): Uint32Array {
    const frees: number[] = [];
    for (let id = 0; id < this.isLive.length; id++) if (this.isLive[id]) frees.push(OP_FREE, id, 0);
    return Uint32Array.from(frees);
  }

  /** The ids live now and their blocks' addresses, in id order. */
  liveBlocks(): { ids: Uint32Array; addresses: Uint32Array } {
    const ids: number[] = [];
    for (let id = 0; id < this.isLive.length; id++) if (this.isLive[id]) ids.push(id);
    return { ids: Uint32Array.from(ids), addresses: Uint32Array.from(ids, (id) => this.addresses[id]) };
  }

  /** Runs a chunk of ops; false iff one failed (this.failure says which). */
  run(ops: Uint32Array): boolean {
    const { allocator, addresses, sizes, isLive } = this;
    const { memory } = allocator;
    for (let at = 0; at < ops.length; at += OP_FIELDS) {
      const kind = ops[at];
      const id = ops[at + 1];
      const size = ops[at + 2];
      let address = 0;
      try {
        if (kind === OP_ALLOC) address = allocator.malloc(size);
        else if (kind === OP_REALLOC) address = allocator.realloc(addresses[id], size);
        else if (kind === OP_FREE) allocator.free(addresses[id]);
        else throw new RangeError(`unknown op kind ${kind}`);
      } catch (error) {
        this.failure = failureOf(allocator, 'footprint', this.done, this.liveBytes, [kind, id, size], error);
        return false;
      }
      if (address === 0 && size !== 0 && kind !== OP_FREE) {
        this.failure = failureOf(allocator, 'footprint', this.done, this.liveBytes, [kind, id, size]);
        return false;
      }
      addresses[id] = address;
      if (kind === OP_FREE) {
        this.liveBytes -= sizes[id];
        sizes[id] = 0;
        isLive[id] = 0;
      } else {
        this.liveBytes += size - sizes[id];
        sizes[id] = size;
        isLive[id] = 1;
      }
      const bytes = memory.buffer.byteLength;
      if (bytes !== this.bytes) {
        this.grows++;
        this.bytes = bytes;
      }
      this.done++;
      if (this.liveBytes > this.peakLiveBytes) {
        this.peakLiveBytes = this.liveBytes;
        this.peakLiveOp = this.done;
        this.footprintAtPeak = bytes;
      }
      if (this.done >= this.nextSample) {
        this.sample();
        this.onProgress?.(this.done);
      }
    }
    return true;
  }

  /** Takes a sample unless the last one was taken at this op. */
  sample(): void {
    const { samples } = this;
    if (samples.op[samples.op.length - 1] !== this.done) {
      samples.op.push(this.done);
      samples.liveBytes.push(this.liveBytes);
      samples.footprintBytes.push(this.bytes);
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
}

// ---- the warm-up and the timed runs -------------------------------------------------------------

/** What one run with the driver's scratch in memory gave. */
interface TimingRun {
  elapsedNs: number;
  /** Time in the ops that grew memory, each run alone. */
  growNs: number;
  /** Ops (stream indices) after which memory had grown. */
  growOps: number[];
  /** Batches that grew memory where the warm-up did not. */
  unexpectedGrows: number;
  /** The op that failed, the module then and the trap, if one did. */
  failedOp?: { op: number; fields: number[]; module: FailedModule; trap?: unknown };
}

/**
 * One run on a fresh instance with the driver's id table and op buffer. With `growOps` unknown
 * (the warm-up) every op is its own replay_run call and the ops that grow memory are noted; with
 * them known, ops run in batches and each op of growOps is run and timed alone.
 */
async function timingRun(
  name: AllocatorName, options: AllocatorOptions, workload: Workload, idLimit: number, frees: Uint32Array,
  growOps: readonly number[] | undefined, onOps: (ops: number) => void,
): Promise<TimingRun> {
  const allocator = await loadAllocator(name, options);
  allocator.replayInit(Math.max(1, idLimit));
  const capacity = allocator.replayCapacity;
  const run: TimingRun = { elapsedNs: 0, growNs: 0, growOps: [], unexpectedGrows: 0 };
  const observe = growOps === undefined;
  let nextGrow = 0;
  let done = 0;
  let bytes = allocator.memory.buffer.byteLength;
  const moduleNow = (): FailedModule => ({ name, maxPages: allocator.maxPages, footprintBytes: allocator.memory.buffer.byteLength });

  /** Runs ops [start, end) of the chunk in one call; false iff one failed. */
  const batch = (ops: Uint32Array, start: number, end: number, grows: boolean): boolean => {
    allocator.replayOps().set(ops.subarray(start * OP_FIELDS, end * OP_FIELDS));
    let failed: number;
    const began = process.hrtime.bigint();
    try {
      failed = allocator.replayRun(end - start);
    } catch (trap) {
      run.failedOp = { op: done, fields: [...ops.subarray(start * OP_FIELDS, start * OP_FIELDS + OP_FIELDS)], module: moduleNow(), trap };
      return false;
    }
    const ns = Number(process.hrtime.bigint() - began);
    run.elapsedNs += ns;
    if (grows) run.growNs += ns;
    if (failed !== REPLAY_DONE) {
      const at = (start + failed) * OP_FIELDS;
      run.failedOp = { op: done + failed, fields: [...ops.subarray(at, at + OP_FIELDS)], module: moduleNow() };
      return false;
    }
    done += end - start;
    const now = allocator.memory.buffer.byteLength;
    if (now !== bytes) {
      bytes = now;
      if (observe) run.growOps.push(done - 1);
      else if (!grows) run.unexpectedGrows++;
    }
    return true;
  };

  const chunk = (ops: Uint32Array): boolean => {
    const count = ops.length / OP_FIELDS;
    const base = done;
    for (let start = 0; start < count; ) {
      let end: number;
      let grows = false;
      if (observe) {
        end = start + 1;
      } else {
        while (nextGrow < growOps.length && growOps[nextGrow] < base + start) nextGrow++;
        const grow = nextGrow < growOps.length ? growOps[nextGrow] - base : Infinity;
        grows = grow === start;
        end = grows ? start + 1 : Math.min(count, start + capacity, grow);
      }
      if (!batch(ops, start, end, grows)) return false;
      start = end;
    }
    onOps(count);
    return true;
  };

  for await (const ops of workload.chunks()) if (!chunk(ops)) return run;
  chunk(frees);
  return run;
}

/**
 * Replays the workload on fresh instances of the allocator: the footprint pass, then (unless
 * options.timing is false) one untimed warm-up run and options.repeat timed runs.
 * A replay that cannot finish resolves with its `failure`, never rejects.
 * @throws AllocatorUnavailableError when the allocator is not built
 */
export async function replay(name: AllocatorName, workload: Workload, options: ReplayOptions = {}): Promise<ReplayResult> {
  const samples = options.samples ?? DEFAULT_SAMPLES;
  if (!Number.isInteger(samples) || samples < 1) throw new RangeError(`options.samples must be a positive integer, got ${samples}`);
  const repeat = options.repeat ?? DEFAULT_REPEAT;
  if (!Number.isInteger(repeat) || repeat < 1) throw new RangeError(`options.repeat must be a positive integer, got ${repeat}`);
  const timing = options.timing ?? true;
  const shape = await workload.shape();
  const total = shape.ops + shape.liveAtEnd;
  const passes = timing ? 2 + repeat : 1;
  let progress = 0;
  const advance = (ops: number) => options.onProgress?.((progress += ops), passes * total);

  const allocator = await loadAllocator(name, options);
  const interval = Math.max(1, Math.ceil(total / samples));
  let reported = 0;
  const pass = new FootprintPass(allocator, shape.idLimit, total, interval, (done) => {
    advance(done - reported);
    reported = done;
  });
  let finished = true;
  for await (const chunk of workload.chunks()) if (!(finished = pass.run(chunk))) break;
  pass.sample();
  const workloadOps = pass.ops;
  const { introspection } = allocator;
  const arenaMap = introspection && decodeArenaMap(introspection.arenaMap());
  const liveBlocks = arenaMap && pass.liveBlocks();
  const stats = introspection && isPymalloc(name) ? debugMallocStats(name, introspection.stats(), options.geometry) : undefined;
  const frees = pass.remainingFrees();
  if (finished) {
    pass.run(frees);
    pass.sample();
  }
  advance(pass.ops - reported);
  let failure = pass.failure;

  const times: number[] = [];
  const growTimes: number[] = [];
  let timingGrows: number | null = null;
  let unexpectedGrows = 0;
  if (timing && failure === undefined) {
    const warmUp = await timingRun(name, options, workload, shape.idLimit, frees, undefined, advance);
    if (warmUp.failedOp !== undefined) {
      const { op, fields, module, trap } = warmUp.failedOp;
      failure = failureAt(module, 'timing', op, await liveBytesBefore(workload, op), fields, trap);
    } else {
      timingGrows = warmUp.growOps.length;
      for (let i = 0; i < repeat; i++) {
        const run = await timingRun(name, options, workload, shape.idLimit, frees, warmUp.growOps, advance);
        if (run.failedOp !== undefined) {
          const { op, fields, module, trap } = run.failedOp;
          failure = failureAt(module, 'timing', op, await liveBytesBefore(workload, op), fields, trap);
          break;
        }
        times.push(run.elapsedNs / pass.ops);
        growTimes.push(run.growNs / pass.ops);
        unexpectedGrows += run.unexpectedGrows;
      }
    }
  }

  const time = spread(times);
  const { peakLiveBytes } = pass;
  const peakFootprintBytes = pass.footprint;
  return {
    allocator: name,
    workload: workload.name,
    ops: pass.ops,
    nsPerOp: time.median,
    nsPerOpMin: time.min,
    nsPerOpMax: time.max,
    timedRuns: times.length,
    growNsPerOp: spread(growTimes).median,
    ...(unexpectedGrows > 0 && { growNsIsLowerBound: true }),
    grows: { footprint: pass.grows, timing: timingGrows },
    peakLiveBytes,
    peakFootprintBytes,
    ...fragmentationOf(peakFootprintBytes, peakLiveBytes),
    finalFootprintBytes: pass.footprint,
    initialFootprintBytes: pass.initialBytes,
    footprintAtPeakLiveBytes: pass.footprintAtPeak,
    peakLiveOp: pass.peakLiveOp,
    workloadOps,
    samples: pass.samples,
    ...(arenaMap !== undefined && { arenaMap, liveBlocks }),
    ...(stats !== undefined && { debugMallocStats: stats }),
    ...(failure !== undefined && { failure }),
  };
}
