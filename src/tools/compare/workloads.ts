// Workloads: streams of heap operations to replay, in the trace layer's in-memory format
// (chunks of [kind, id, size] u32 triples, src/tools/trace/format.ts).
//
// Synthetic workloads follow Wilson et al. (1995): real programs show ramps (data accumulating
// for the whole run), peaks (a burst of allocation freed soon after, a few survivors staying)
// and plateaus (a level reached quickly, then held while objects are replaced); purely random
// traces mislead, so `uniform` is there as the foil. All are reproducible: one xoroshiro128+
// generator (pure-rand) per workload, seeded by the options; its 128-bit state takes every
// 32-bit seed as a distinct start, 0 included. Ids are recycled (a freed id is reused first),
// so one more than the largest id is the peak number of live blocks, as in real traces.
//
//   ramp         long-lived objects accumulating, short-lived ones dying young around them
//   peak         bursts of allocation freed in random order, 2% of each burst surviving
//   plateau      a live set built quickly, then held while random objects are replaced
//   uniform      random replacement with sizes uniform in 1..2048
//   cpython-mix  CPython-like sizes (mostly 16..128) and lifetimes, a few reallocs
//   lifo         batches freed in reverse order of allocation, nested one level
//   interleaved  long-lived small objects between short-lived large ones (dlmalloc grows)
//   trace:NAME   a trace the package ships (SHIPPED_TRACE_NAMES, traces/README.md)
//   trace:PATH   any trace file openTrace reads (pymalloc, mtrace, logalloc; gzip or not)

import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';

import { openTrace, TraceFileError } from '../trace/index.js';
import { OP_ALLOC, OP_FIELDS, OP_FREE, OP_REALLOC } from '../trace/format.js';
import { PACKAGE_ROOT } from './allocators.js';
import { UsageError } from './errors.js';

export const SYNTHETIC_WORKLOADS = ['ramp', 'peak', 'plateau', 'uniform', 'cpython-mix', 'lifo', 'interleaved'] as const;

export type SyntheticWorkloadName = (typeof SYNTHETIC_WORKLOADS)[number];

export const TRACE_PREFIX = 'trace:';

/** What a pass over a workload found: what a replayer must know before it starts. */
export interface WorkloadShape {
  /** Ops in the stream. */
  ops: number;
  /** One more than the largest id: the size of the id table. */
  idLimit: number;
  /** Ids still live at the end of the stream. */
  liveAtEnd: number;
  /** A trace's frees of blocks allocated before tracing began, skipped by the importer (none for synthetic workloads). */
  skippedFrees?: number;
  /** A trace's untraced frees, inserted by the importer when an address came back while live (none for synthetic workloads). */
  impliedFrees?: number;
}

export interface Workload {
  /** 'ramp', or 'trace:' and the path as given. */
  readonly name: string;
  readonly description: string;
  /** The ops, in chunks; every call starts the stream afresh. */
  chunks(): AsyncIterable<Uint32Array>;
  /**
   * One pass over the stream (at most one: the result is kept). A trace is read and checked
   * whole, so a malformed line is reported here, before any allocator runs.
   */
  shape(): Promise<WorkloadShape>;
}

export interface WorkloadOptions {
  /**
   * Multiplies the number of steps of the synthetic workloads (not traces).
   * @default 1
   */
  scale?: number;
  /**
   * Seed of the synthetic workloads' generator.
   * @default 12345
   */
  seed?: number;
}

/** The scale and seed of the synthetic workloads when none is given. */
export const DEFAULT_WORKLOAD_OPTIONS: Readonly<Required<WorkloadOptions>> = { scale: 1, seed: 12345 };

/** Ops per chunk of a synthetic workload. */
const CHUNK_OPS = 65536;

/** Traces of at most this many ops are kept in memory after the first pass, not read again. */
const CACHED_TRACE_OPS = 4_000_000;

// ---- the generator ------------------------------------------------------------------------------

/** The draws the generators make, from one seeded xoroshiro128+. */
class Random {
  private readonly rng: RandomGenerator;

  /** Every seed in [0, 2^32) starts its own stream (`seed | 0` is one-to-one there). */
  constructor(seed: number) {
    this.rng = xoroshiro128plus(seed | 0);
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return uniformInt(this.rng, 0, n - 1);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return uniformInt(this.rng, lo, hi);
  }

  /** True with probability percent / 100. */
  chance(percent: number): boolean {
    return this.below(10000) < percent * 100;
  }
}

/** Writes ops into chunks, recycling ids and keeping the live set for random frees. */
class OpBuilder {
  readonly chunks: Uint32Array[] = [];
  private chunk = new Uint32Array(CHUNK_OPS * OP_FIELDS);
  private filled = 0;
  private ops = 0;
  private readonly freeIds: number[] = [];
  private idLimit = 0;
  /** The live ids, in no order, and where each sits in it (swap-remove keeps it dense). */
  private readonly live: number[] = [];
  private readonly slotOf: number[] = [];

  get liveCount(): number {
    return this.live.length;
  }

  alloc(size: number): number {
    const id = this.freeIds.length > 0 ? this.freeIds.pop()! : this.idLimit++;
    this.slotOf[id] = this.live.length;
    this.live.push(id);
    this.push(OP_ALLOC, id, size);
    return id;
  }

  free(id: number): void {
    const slot = this.slotOf[id];
    const last = this.live.pop()!;
    if (last !== id) {
      this.live[slot] = last;
      this.slotOf[last] = slot;
    }
    this.freeIds.push(id);
    this.push(OP_FREE, id, 0);
  }

  realloc(id: number, size: number): void {
    this.push(OP_REALLOC, id, size);
  }

  randomLive(rng: Random): number {
    return this.live[rng.below(this.live.length)];
  }

  finish(): WorkloadShape {
    if (this.filled > 0) this.chunks.push(this.chunk.subarray(0, this.filled * OP_FIELDS));
    this.filled = 0;
    return { ops: this.ops, idLimit: this.idLimit, liveAtEnd: this.live.length };
  }

  private push(kind: number, id: number, size: number): void {
    const at = this.filled * OP_FIELDS;
    this.chunk[at] = kind;
    this.chunk[at + 1] = id;
    this.chunk[at + 2] = size;
    this.ops++;
    if (++this.filled === CHUNK_OPS) {
      this.chunks.push(this.chunk);
      this.chunk = new Uint32Array(CHUNK_OPS * OP_FIELDS);
      this.filled = 0;
    }
  }
}

/** Removes a random element (the last one takes its place) and returns it. */
function takeRandom(ids: number[], rng: Random): number {
  const at = rng.below(ids.length);
  const taken = ids[at];
  ids[at] = ids[ids.length - 1];
  ids.pop();
  return taken;
}

// ---- size distributions -------------------------------------------------------------------------

/**
 * Request sizes of a CPython process: most are small objects (ints, tuples, frames, dict
 * entries: 16..128 bytes), a tail up to pymalloc's threshold, a few large buffers.
 */
function cpythonSize(rng: Random): number {
  const r = rng.below(100);
  if (r < 55) return rng.range(16, 64);
  if (r < 83) return rng.range(65, 128);
  if (r < 95) return rng.range(129, 512);
  if (r < 99) return rng.range(513, 4096);
  return rng.range(4097, 65536);
}

// ---- the synthetic workloads ----------------------------------------------------------------------

type Generator = (ops: OpBuilder, rng: Random, scale: (n: number) => number) => void;

const GENERATORS: Record<SyntheticWorkloadName, { description: string; generate: Generator }> = {
  ramp: {
    description: 'a ramp: 30% of objects live to the end, the rest die within 64 allocations',
    generate(ops, rng, scale) {
      const young: number[] = [];
      for (let step = scale(150_000); step > 0; step--) {
        const id = ops.alloc(cpythonSize(rng));
        if (rng.chance(70)) young.push(id);
        if (young.length > 64) ops.free(takeRandom(young, rng));
      }
    },
  },
  peak: {
    description: 'six peaks: bursts of 15k..35k objects freed in random order, 2% surviving each',
    generate(ops, rng, scale) {
      for (let peak = 0; peak < 6; peak++) {
        const burst: number[] = [];
        for (let n = scale(rng.range(15_000, 35_000)); n > 0; n--) burst.push(ops.alloc(cpythonSize(rng)));
        while (burst.length > 0) {
          const id = takeRandom(burst, rng);
          if (!rng.chance(2)) ops.free(id);
        }
      }
    },
  },
  plateau: {
    description: 'a plateau: 30k objects built, then 150k times one at random replaced',
    generate(ops, rng, scale) {
      for (let n = scale(30_000); n > 0; n--) ops.alloc(cpythonSize(rng));
      for (let step = scale(150_000); step > 0; step--) {
        ops.free(ops.randomLive(rng));
        ops.alloc(cpythonSize(rng));
      }
    },
  },
  uniform: {
    description: 'random replacement of 20k live objects, sizes uniform in 1..2048',
    generate(ops, rng, scale) {
      for (let n = scale(20_000); n > 0; n--) ops.alloc(rng.range(1, 2048));
      for (let step = scale(120_000); step > 0; step--) {
        ops.free(ops.randomLive(rng));
        ops.alloc(rng.range(1, 2048));
      }
    },
  },
  'cpython-mix': {
    description: 'CPython-like sizes and lifetimes: 70% die within 16 steps, 25% within 2000, 5% never; 2% reallocs',
    generate(ops, rng, scale) {
      const horizon = 2048;
      const dying: number[][] = Array.from({ length: horizon }, () => []);
      const steps = scale(200_000);
      for (let step = 0; step < steps; step++) {
        const size = cpythonSize(rng);
        const id = ops.alloc(size);
        const r = rng.below(100);
        if (r < 70) dying[(step + rng.range(1, 16)) % horizon].push(id);
        else if (r < 95) dying[(step + rng.range(17, 2000)) % horizon].push(id);
        if (rng.chance(2)) ops.realloc(id, size < 256 ? size * 2 : size + 128);
        for (const dead of dying[step % horizon].splice(0)) ops.free(dead);
      }
    },
  },
  lifo: {
    description: 'LIFO batches of 50..2000 objects freed in reverse order, a nested batch in half of them, 1% surviving',
    generate(ops, rng, scale) {
      const batch = (depth: number) => {
        const stack: number[] = [];
        for (let n = rng.range(50, 2000); n > 0; n--) {
          stack.push(ops.alloc(cpythonSize(rng)));
          if (depth === 0 && n === 25 && rng.chance(50)) batch(1);
        }
        while (stack.length > 0) {
          const id = stack.pop()!;
          if (!rng.chance(1)) ops.free(id);
        }
      };
      for (let n = scale(150); n > 0; n--) batch(0);
    },
  },
  interleaved: {
    description: 'long-lived small objects (16..64 B) allocated between short-lived large ones (1..32 KiB)',
    generate(ops, rng, scale) {
      for (let step = scale(30_000); step > 0; step--) {
        const large = ops.alloc(rng.range(1024, 32768));
        ops.alloc(rng.range(16, 64));
        ops.free(large);
        if (rng.chance(5)) ops.free(ops.randomLive(rng));
      }
    },
  },
};

function syntheticWorkload(name: SyntheticWorkloadName, options: Required<WorkloadOptions>): Workload {
  const { description, generate } = GENERATORS[name];
  let built: { chunks: Uint32Array[]; shape: WorkloadShape } | undefined;
  const build = () => {
    if (built === undefined) {
      const ops = new OpBuilder();
      generate(ops, new Random(options.seed), (n) => Math.max(1, Math.round(n * options.scale)));
      const shape = ops.finish();
      built = { chunks: ops.chunks, shape };
    }
    return built;
  };
  return {
    name,
    description,
    async *chunks() {
      yield* build().chunks;
    },
    shape: async () => build().shape,
  };
}

function traceWorkload(name: string, path: string, description: string): Workload {
  let shape: WorkloadShape | undefined;
  let cached: Uint32Array[] | undefined;
  return {
    name,
    description,
    async *chunks() {
      if (cached !== undefined) {
        yield* cached;
        return;
      }
      for await (const chunk of openTrace(path)) if (chunk.ops.length > 0) yield chunk.ops;
    },
    async shape() {
      if (shape === undefined) {
        const kept: Uint32Array[] = [];
        let ops = 0;
        for await (const chunk of openTrace(path)) {
          ops += chunk.ops.length / OP_FIELDS;
          if (ops <= CACHED_TRACE_OPS && chunk.ops.length > 0) kept.push(chunk.ops);
          if (chunk.summary !== undefined) {
            const { ops: total, idLimit, liveAtEnd, skippedFrees, impliedFrees } = chunk.summary;
            shape = { ops: total, idLimit, liveAtEnd, skippedFrees, impliedFrees };
          }
        }
        if (ops <= CACHED_TRACE_OPS) cached = kept;
      }
      return shape!;
    },
  };
}

/** The traces of real programs the package ships in traces/ (its README says how each was recorded). */
export const SHIPPED_TRACE_NAMES = ['python-json', 'py-ast', 'perl-hash', 'sqlite', 'jq-group', 'git-log', 'cc1'] as const;

/** The file of a shipped trace, inside the package. */
export function shippedTracePath(name: (typeof SHIPPED_TRACE_NAMES)[number]): string {
  return join(PACKAGE_ROOT, 'traces', `${name}.trace.gz`);
}

/**
 * The workloads of a comma-separated list (`--workload`). A trace path may hold commas, so a
 * `trace:` entry runs up to the next comma followed by a synthetic workload's name or by
 * `trace:`: "trace:a,b.trace,ramp" is the trace "a,b.trace", then ramp. (A path whose part
 * after a comma is exactly a workload name cannot be given in a list; pass it alone to replay.)
 */
export function parseWorkloadList(list: string): string[] {
  const entries: string[] = [];
  for (const piece of list.split(',')) {
    const name = piece.trim();
    const startsEntry = name.startsWith(TRACE_PREFIX) || (SYNTHETIC_WORKLOADS as readonly string[]).includes(name);
    const last = entries.length - 1;
    if (!startsEntry && last >= 0 && entries[last]!.startsWith(TRACE_PREFIX)) entries[last] += `,${piece}`;
    else if (name.length > 0) entries.push(name);
  }
  return entries.map((entry) => entry.trim());
}

/** Every workload name a caller may give: the synthetic ones, the shipped traces, any trace file. */
export function workloadNames(): string[] {
  return [...SYNTHETIC_WORKLOADS, ...SHIPPED_TRACE_NAMES.map((name) => `${TRACE_PREFIX}${name}`), `${TRACE_PREFIX}<path>`];
}

/** A trace workload's file: a shipped trace's by its name (unless a file of that name exists here), else the path. */
export function tracePath(given: string): { path: string; shipped: boolean } {
  const shipped = (SHIPPED_TRACE_NAMES as readonly string[]).includes(given) && !existsSync(given);
  return shipped ? { path: shippedTracePath(given as (typeof SHIPPED_TRACE_NAMES)[number]), shipped } : { path: given, shipped };
}

/**
 * The workload of a name: one of SYNTHETIC_WORKLOADS, or `trace:<path>`.
 * @throws UsageError for any other name, listing the valid ones
 * @throws RangeError for options out of range
 * @throws TraceFileError for a trace file that does not exist
 */
export function resolveWorkload(name: string, options: WorkloadOptions = {}): Workload {
  const settings = { scale: options.scale ?? DEFAULT_WORKLOAD_OPTIONS.scale, seed: options.seed ?? DEFAULT_WORKLOAD_OPTIONS.seed };
  if (!(Number.isFinite(settings.scale) && settings.scale > 0 && settings.scale <= 100)) {
    throw new RangeError(`options.scale must be a number in (0, 100], got ${settings.scale}`);
  }
  if (!Number.isInteger(settings.seed) || settings.seed < 0 || settings.seed > 0xffff_ffff) {
    throw new RangeError(`options.seed must be an integer in [0, 2**32), got ${settings.seed}`);
  }
  if (name.startsWith(TRACE_PREFIX) && name.length > TRACE_PREFIX.length) {
    const { path, shipped } = tracePath(name.slice(TRACE_PREFIX.length));
    // Found now, before any replay runs, rather than when its turn comes.
    if (!existsSync(path)) throw new TraceFileError(path, `trace file not found: ${path}`);
    return traceWorkload(name, path, shipped ? `the shipped trace ${name.slice(TRACE_PREFIX.length)} (traces/README.md)` : `the trace ${path}`);
  }
  if ((SYNTHETIC_WORKLOADS as readonly string[]).includes(name)) {
    return syntheticWorkload(name as SyntheticWorkloadName, settings);
  }
  throw new UsageError(`unknown workload "${name}": valid names are ${workloadNames().join(', ')}`);
}
