// pymalloc-wasm/metrics: a heap's statistics and its collector's counts as Prometheus metrics
// (prom-client). Every value is read from the heap when the registry is scraped (each
// metric's collect()), so nothing is counted on the heap's own paths; the collection pause
// is the one exception, timed through gc.callbacks around each collection.

import { Counter, Gauge, Histogram, register as defaultRegistry, type MetricType, type MetricObjectWithValues, type MetricValueWithName, type Registry } from 'prom-client';
import type { Heap, GcCallback } from '../../index.js';

export interface HeapMetricsOptions {
  /**
   * The registry to register with.
   * @default prom-client's default registry
   */
  register?: Registry;
  /**
   * What every metric's name starts with; two heaps in one registry need two prefixes.
   * @default 'pymalloc_'
   */
  prefix?: string;
  /**
   * Upper bounds of the collection pause histogram, in seconds.
   * @default [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]
   */
  pauseBuckets?: number[];
}

const DEFAULTS = {
  prefix: 'pymalloc_',
  pauseBuckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
};
const OPTION_KEYS: ReadonlySet<string> = new Set(['register', 'prefix', 'pauseBuckets']);
/** What Prometheus allows in a metric name. */
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const GENERATIONS = ['0', '1', '2'];

/** What registerHeapMetrics returns: unregister() removes every metric and the gc callback. */
export interface HeapMetrics {
  /** The names registered, prefix included. */
  readonly names: readonly string[];
  unregister(): void;
}

/** What a CountedHistogram reads at each scrape, per series: per-bucket (not cumulative) counts and their sum. */
export interface BucketCounts {
  /** The series' labels (none for a histogram of one series). */
  labels?: Record<string, string | number>;
  /** Upper bounds, increasing; the last may be Infinity (the +Inf bucket). */
  le: readonly number[];
  /** counts[i]: observations in (le[i - 1], le[i]]. */
  counts: readonly number[];
  /** The sum of every observation counted. */
  sum: number;
}

type HistogramSamples = MetricObjectWithValues<MetricValueWithName<string>>;

/**
 * A histogram whose buckets something else counts (the GIL in shared memory, workers in a
 * SharedArrayBuffer): prom-client can only observe values one at a time, so this one builds
 * its samples at each scrape from `read()` instead, cumulative as Prometheus wants them. It is
 * a prom-client Histogram, so registries and their JSON, merge and removal treat it as one.
 */
export class CountedHistogram extends Histogram {
  readonly #name: string;
  readonly #help: string;
  readonly #read: () => BucketCounts[];

  constructor(options: { name: string; help: string; registers: Registry[]; labelNames?: string[]; read: () => BucketCounts[] }) {
    const [{ le }] = options.read();
    super({ name: options.name, help: options.help, labelNames: options.labelNames ?? [], buckets: le.filter(Number.isFinite), registers: options.registers });
    this.#name = options.name;
    this.#help = options.help;
    this.#read = options.read;
  }

  override async get(): Promise<HistogramSamples> {
    const bucket = `${this.#name}_bucket`;
    const values: MetricValueWithName<string>[] = [];
    for (const { labels = {}, le, counts, sum } of this.#read()) {
      let cumulative = 0;
      le.forEach((bound, i) => {
        cumulative += counts[i];
        if (Number.isFinite(bound)) values.push({ metricName: bucket, labels: { ...labels, le: bound }, value: cumulative });
      });
      values.push(
        { metricName: bucket, labels: { ...labels, le: '+Inf' }, value: cumulative },
        { metricName: `${this.#name}_sum`, labels, value: sum },
        { metricName: `${this.#name}_count`, labels, value: cumulative },
      );
    }
    // prom-client's types declare `type` a numeric enum its JS never defines: the registry
    // writes the string, as its own Histogram has it.
    return { name: this.#name, help: this.#help, type: 'histogram' as unknown as MetricType, values, aggregator: 'sum', collect() {} };
  }

  /** The registry's text output asks for this when it exists: the same samples. */
  getForPromString(): Promise<HistogramSamples> {
    return this.get();
  }
}

function validated(options: HeapMetricsOptions): Required<HeapMetricsOptions> {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new TypeError(`unknown option '${key}' (valid: ${[...OPTION_KEYS].join(', ')})`);
  }
  const { register = defaultRegistry, prefix = DEFAULTS.prefix, pauseBuckets = DEFAULTS.pauseBuckets } = options;
  if (typeof register?.registerMetric !== 'function') throw new TypeError('options.register must be a prom-client Registry');
  if (typeof prefix !== 'string' || (prefix !== '' && !METRIC_NAME.test(prefix))) {
    throw new TypeError(`options.prefix must be a metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*), not ${JSON.stringify(prefix)}`);
  }
  if (!Array.isArray(pauseBuckets) || pauseBuckets.length === 0 || pauseBuckets.some((b, i) => !(b > 0) || (i > 0 && b <= pauseBuckets[i - 1]))) {
    throw new RangeError('options.pauseBuckets must be a non-empty, increasing array of positive seconds');
  }
  return { register, prefix, pauseBuckets };
}

/**
 * Registers the heap's metrics:
 *
 * | name (after the prefix) | type | what |
 * | --- | --- | --- |
 * | `committed_bytes`, `peak_committed_bytes` | gauge | linear memory committed now, and at its peak |
 * | `blocks_bytes{state="allocated"\|"free"}` | gauge | bytes in pymalloc blocks handed out / on free lists of used pools |
 * | `raw_blocks`, `raw_bytes` | gauge | blocks of the raw allocator (requests of 0 or over the threshold) and their bytes |
 * | `arenas`, `arenas_highwater` | gauge | arenas attached now, and the most at once |
 * | `arenas_allocated_total`, `arenas_reclaimed_total` | counter | arenas ever allocated, and given back |
 * | `pools{state="used"\|"free"}` | gauge | pools carved for a size class, and empty or never-used ones |
 * | `blocks_in_use{size_class}` | gauge | blocks handed out, per size class (its size in bytes) |
 * | `fragmentation_ratio` | gauge | committed bytes / bytes in use (pymalloc blocks and raw blocks); NaN when none are |
 * | `gc_collections_total{generation}` | counter | collections of each generation |
 * | `gc_collected_total{generation}`, `gc_uncollectable_total{generation}` | counter | objects each found unreachable, and uncollectable |
 * | `gc_pause_seconds{generation}` | histogram | how long each collection took (gc.callbacks start to stop) |
 *
 * and for a shared heap under a GIL, read from gil.stats() (counted by every instance):
 *
 * | `gil_acquisitions_total`, `gil_contended_total` | counter | acquisitions of the GIL, and those that found it held |
 * | `gil_recoveries_total` | counter | GILs taken back from workers that exited holding one (Heap#watch) |
 * | `gil_wait_seconds` | histogram | each contended acquisition's wait; `_sum` is gil.stats().waitSeconds, `_count` the contended ones |
 */
export function registerHeapMetrics(heap: Heap, options: HeapMetricsOptions = {}): HeapMetrics {
  const { register, prefix, pauseBuckets } = validated(options);
  const registers = [register];
  const names: string[] = [];
  const name = (suffix: string) => {
    names.push(prefix + suffix);
    return prefix + suffix;
  };

  const gauge = (suffix: string, help: string, read: (g: Gauge) => void, labelNames: string[] = []) =>
    new Gauge({ name: name(suffix), help, labelNames, registers, collect() { read(this); } });
  /** A counter whose total the heap keeps: set at each scrape. */
  const counter = (suffix: string, help: string, read: () => number[]) =>
    new Counter({
      name: name(suffix), help, labelNames: ['generation'], registers,
      collect() {
        this.reset();
        read().forEach((value, g) => this.inc({ generation: GENERATIONS[g] }, value));
      },
    });
  const stats = () => heap.stats();

  gauge('committed_bytes', 'Linear memory committed by the heap.', (g) => g.set(stats().memory.committedBytes));
  gauge('peak_committed_bytes', 'The most linear memory the heap has committed.', (g) => g.set(stats().memory.peakCommittedBytes));
  gauge('blocks_bytes', 'Bytes in pymalloc blocks: allocated (handed out) or free (on the free lists of used pools).', (g) => {
    const { bytes } = stats();
    g.set({ state: 'allocated' }, bytes.inAllocatedBlocks);
    g.set({ state: 'free' }, bytes.inAvailableBlocks);
  }, ['state']);
  gauge('raw_blocks', 'Blocks of the raw allocator (requests of 0 or over the small request threshold).', (g) => g.set(stats().raw.blocks));
  gauge('raw_bytes', 'Bytes the raw allocator\'s blocks can hold.', (g) => g.set(stats().raw.bytes));
  gauge('arenas', 'Arenas attached now.', (g) => g.set(stats().arenas.current));
  gauge('arenas_highwater', 'The most arenas attached at once.', (g) => g.set(stats().arenas.highwater));
  new Counter({
    name: name('arenas_allocated_total'), help: 'Arenas ever allocated.', registers,
    collect() { this.reset(); this.inc(stats().arenas.allocatedTotal); },
  });
  new Counter({
    name: name('arenas_reclaimed_total'), help: 'Arenas given back to the raw allocator.', registers,
    collect() { this.reset(); this.inc(stats().arenas.reclaimed); },
  });
  gauge('pools', 'Pools: used (carved for a size class) or free (empty, or never used).', (g) => {
    const s = stats();
    g.set({ state: 'used' }, s.sizeClasses.reduce((n, c) => n + c.pools, 0));
    g.set({ state: 'free' }, s.bytes.freePools);
  }, ['state']);
  gauge('blocks_in_use', 'Blocks handed out, per size class (its size in bytes).', (g) => {
    for (const c of stats().sizeClasses) g.set({ size_class: String(c.size) }, c.blocksInUse);
  }, ['size_class']);
  gauge('fragmentation_ratio', 'Committed bytes per byte in use (pymalloc blocks and raw blocks); NaN when nothing is in use.', (g) => {
    const s = stats();
    const inUse = s.bytes.inAllocatedBlocks + s.raw.bytes;
    g.set(inUse === 0 ? NaN : s.memory.committedBytes / inUse);
  });
  counter('gc_collections_total', 'Collections of each generation.', () => heap.gc.getStats().map((s) => s.collections));
  counter('gc_collected_total', 'Objects each generation\'s collections found unreachable.', () => heap.gc.getStats().map((s) => s.collected));
  counter('gc_uncollectable_total', 'Objects each generation\'s collections found uncollectable.', () => heap.gc.getStats().map((s) => s.uncollectable));
  const pause = new Histogram({
    name: name('gc_pause_seconds'), help: 'How long each collection took, from gc.callbacks\' start to stop.',
    labelNames: ['generation'], buckets: pauseBuckets, registers,
  });

  if (heap.gil.concurrency === 'gil') {
    new Counter({
      name: name('gil_acquisitions_total'), help: 'Acquisitions of the GIL by every instance (outermost calls and gil.run).', registers,
      collect() { this.reset(); this.inc(heap.gil.stats().acquisitions); },
    });
    new Counter({
      name: name('gil_contended_total'), help: 'Acquisitions of the GIL that found it held and had to spin or sleep.', registers,
      collect() { this.reset(); this.inc(heap.gil.stats().contended); },
    });
    new Counter({
      name: name('gil_recoveries_total'), help: 'GILs taken back from workers that exited holding one (Heap#watch).', registers,
      collect() { this.reset(); this.inc(heap.gil.stats().recoveries); },
    });
    new CountedHistogram({
      name: name('gil_wait_seconds'), help: 'How long each contended acquisition of the GIL waited.', registers,
      read() {
        const { waitHistogram, waitSeconds } = heap.gil.stats();
        return [{ ...waitHistogram, sum: waitSeconds }];
      },
    });
  }

  let started = 0;
  const timer: GcCallback = (phase, info) => {
    if (phase === 'start') started = performance.now();
    else pause.observe({ generation: String(info.generation) }, (performance.now() - started) / 1000);
  };
  heap.gc.callbacks.push(timer);

  return {
    names,
    unregister() {
      for (const n of names) register.removeSingleMetric(n);
      const i = heap.gc.callbacks.indexOf(timer);
      if (i >= 0) heap.gc.callbacks.splice(i, 1);
    },
  };
}
