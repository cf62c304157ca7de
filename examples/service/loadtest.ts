// npm run loadtest: the example service against its baseline, each in a process of its own on
// 127.0.0.1, in one run. For each mode ('heap': the documents in one shared heap, every worker
// attached; 'js': a Map in the main thread, each document posted to a worker and back):
//
//   1. writes DOCS documents of 10-100 KB of JSON, 8 clients at once, each linking two earlier ones
//      (in rounds of 32, so that what a document links is stored);
//   2. reads every one back and compares it with what was written, byte for byte (a mismatch
//      fails the run);
//   3. a read load: autocannon, CONNECTIONS connections GETting random ids, bounded by
//      DURATION seconds and REQUESTS requests, whichever ends first: throughput, p50 and p99;
//   4. /metrics before and after: collections, the workers' collection pauses, the GIL's waits.
//
// It prints a table, and writes loadtest.json and loadtest.html (a chart.js chart) to OUT
// (report/ by default).
//
//   DOCS=300 CONNECTIONS=8 DURATION=15 REQUESTS=200000 THREADS=4 npm run loadtest

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Documents } from './documents.js';

const env = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, not ${process.env[name]}`);
  return value;
};
const DOCS = env('DOCS', 300);
const CONNECTIONS = env('CONNECTIONS', 8);
const DURATION = env('DURATION', 15);
const REQUESTS = env('REQUESTS', 200_000);
const THREADS = env('THREADS', 4);
const WRITERS = 8;
const BATCH = 4 * WRITERS;
const OUT = process.env.OUT ?? 'report';
const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));

type Mode = 'heap' | 'js';

/** A scrape's samples: `name{labels}` -> value. */
type Samples = Map<string, number>;

interface Result {
  mode: Mode;
  writeSeconds: number;
  readBack: { documents: number; bytes: number; mismatches: number };
  load: { requests: number; errors: number; non2xx: number; seconds: number; throughput: number; p50: number; p90: number; p99: number; max: number; mbPerSecond: number };
  /** Over the whole run (writes, read-back and load). */
  heap?: {
    collections: number[];
    pauseCount: number; pauseP99Bound: number; pauseP99BoundByGeneration: number[]; pauseMaxMs: number;
    gilAcquisitions: number; gilContended: number; gilWaitP99Bound: number; gilWaitSeconds: number;
    committedMiB: number;
  };
}

async function scrape(url: string): Promise<Samples> {
  const samples: Samples = new Map();
  for (const line of (await (await fetch(`${url}/metrics`)).text()).split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match) samples.set(match[1] + (match[2] ?? ''), Number(match[3]));
  }
  return samples;
}

/**
 * The upper bound of the bucket holding the q-quantile of a histogram's observations between two
 * scrapes, over its series whose labels include `label` (all of them for '').
 */
function quantileBound(name: string, q: number, before: Samples, after: Samples, label = ''): number {
  const byBound = new Map<number, number>();
  for (const [k, v] of after) {
    if (!k.startsWith(`${name}_bucket{`) || !k.includes(label)) continue;
    const le = Number(/le="([^"]+)"/.exec(k)![1].replace('+Inf', 'Infinity'));
    byBound.set(le, (byBound.get(le) ?? 0) + v - (before.get(k) ?? 0));
  }
  const buckets = [...byBound].sort((a, b) => a[0] - b[0]);
  const total = buckets.at(-1)?.[1] ?? 0;
  return total === 0 ? 0 : buckets.find(([, n]) => n >= q * total)![0];
}

/** A counter's (or a histogram's _count) increase between two scrapes, summed over its series. */
function increase(name: string, before: Samples, after: Samples): number {
  let sum = 0;
  for (const [k, v] of after) if (k === name || k.startsWith(`${name}{`)) sum += v - (before.get(k) ?? 0);
  return sum;
}

async function start(mode: Mode): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    env: { ...process.env, PORT: '0', MODE: mode, THREADS: String(THREADS) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  for await (const chunk of child.stdout!) {
    out += chunk;
    const url = /listening on (http:\/\/\S+)/.exec(out)?.[1];
    if (url) return { child, url };
  }
  throw new Error(`the ${mode} service exited before listening: ${out}`);
}

async function inParallel(width: number, count: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < count) await task(next++);
  }));
}

async function run(mode: Mode): Promise<Result> {
  const { child, url } = await start(mode);
  try {
    const docs = new Documents(2026);
    // Written in rounds of BATCH, each linking documents of the rounds before (stored by then).
    const link = (i: number) => `d${docs.int(0, i - (i % BATCH) - 1)}`;
    const texts = Array.from({ length: DOCS }, (_, i) => docs.make(`d${i}`, docs.int(10_000, 100_000), i >= BATCH ? [link(i), link(i)] : []));
    const before = await scrape(url);

    const writing = performance.now();
    for (let round = 0; round < DOCS; round += BATCH) {
      await inParallel(WRITERS, Math.min(BATCH, DOCS - round), async (j) => {
        const i = round + j;
        const response = await fetch(`${url}/doc/d${i}`, { method: 'PUT', body: texts[i] });
        if (response.status !== 201) throw new Error(`PUT d${i}: ${response.status} ${await response.text()}`);
      });
    }
    const writeSeconds = (performance.now() - writing) / 1000;

    let mismatches = 0;
    let bytes = 0;
    await inParallel(WRITERS, DOCS, async (i) => {
      const text = await (await fetch(`${url}/doc/d${i}`)).text();
      bytes += Buffer.byteLength(text);
      if (text !== texts[i]) mismatches++;
    });
    if (mismatches > 0) throw new Error(`${mode}: ${mismatches} of ${DOCS} documents read back differ from what was written`);

    const load = await autocannon({
      url, connections: CONNECTIONS, duration: DURATION, maxOverallRequests: REQUESTS,
      requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: `/doc/d${Math.floor(Math.random() * DOCS)}` }) }],
    });
    const after = await scrape(url);
    const delta = (k: string) => (after.get(k) ?? 0) - (before.get(k) ?? 0);
    const result: Result = {
      mode, writeSeconds,
      readBack: { documents: DOCS, bytes, mismatches },
      load: {
        requests: load.requests.total, errors: load.errors, non2xx: load.non2xx, seconds: load.duration,
        throughput: load.requests.total / load.duration,
        p50: load.latency.p50, p90: load.latency.p90, p99: load.latency.p99, max: load.latency.max,
        mbPerSecond: load.throughput.average / 2 ** 20,
      },
    };
    if (mode === 'heap') {
      result.heap = {
        collections: [0, 1, 2].map((g) => delta(`pymalloc_gc_collections_total{generation="${g}"}`)),
        pauseCount: increase('service_gc_pause_seconds_count', before, after),
        pauseP99Bound: quantileBound('service_gc_pause_seconds', 0.99, before, after),
        pauseP99BoundByGeneration: [0, 1, 2].map((g) => quantileBound('service_gc_pause_seconds', 0.99, before, after, `generation="${g}"`)),
        pauseMaxMs: (after.get('service_gc_pause_max_seconds') ?? 0) * 1000,
        gilAcquisitions: delta('pymalloc_gil_acquisitions_total'),
        gilContended: delta('pymalloc_gil_contended_total'),
        gilWaitP99Bound: quantileBound('pymalloc_gil_wait_seconds', 0.99, before, after),
        gilWaitSeconds: delta('pymalloc_gil_wait_seconds_sum'),
        committedMiB: after.get('pymalloc_committed_bytes')! / 2 ** 20,
      };
    }
    return result;
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
}

const ms = (seconds: number) => (seconds * 1000).toFixed(seconds < 0.001 ? 3 : 2);

function table(heap: Result, js: Result): string {
  const ratio = (a: number, b: number, higherIsBetter: boolean) => {
    const r = a / b;
    return higherIsBetter ? `${r.toFixed(2)}x` : `${r.toFixed(2)}x (${r <= 1 ? 'no worse' : 'worse'})`;
  };
  const rows: string[][] = [
    ['', 'shared heap', 'JS objects + postMessage', 'heap / baseline'],
    ['write DOCS documents (s)', heap.writeSeconds.toFixed(2), js.writeSeconds.toFixed(2), ratio(heap.writeSeconds, js.writeSeconds, false)],
    ['read back, byte for byte', `${heap.readBack.documents} of ${heap.readBack.documents} equal`, `${js.readBack.documents} of ${js.readBack.documents} equal`, ''],
    ['read load: requests (errors, non-2xx)', `${heap.load.requests} (${heap.load.errors}, ${heap.load.non2xx})`, `${js.load.requests} (${js.load.errors}, ${js.load.non2xx})`, ''],
    ['throughput (req/s)', heap.load.throughput.toFixed(0), js.load.throughput.toFixed(0), ratio(heap.load.throughput, js.load.throughput, true)],
    ['MiB/s served', heap.load.mbPerSecond.toFixed(1), js.load.mbPerSecond.toFixed(1), ratio(heap.load.mbPerSecond, js.load.mbPerSecond, true)],
    ['latency p50 (ms)', String(heap.load.p50), String(js.load.p50), ratio(heap.load.p50, js.load.p50, false)],
    ['latency p99 (ms)', String(heap.load.p99), String(js.load.p99), ratio(heap.load.p99, js.load.p99, false)],
  ];
  const h = heap.heap!;
  rows.push(
    ['collections (gen 0/1/2)', h.collections.join(' / '), 'V8\'s own', ''],
    ['collection pause p99 (bucket bound, ms); longest', `<= ${ms(h.pauseP99Bound)}; ${h.pauseMaxMs.toFixed(2)}`, '', ''],
    ['  the p99 by generation 0 / 1 / 2 (ms)', h.pauseP99BoundByGeneration.map((b) => `<= ${ms(b)}`).join(' / '), '', ''],
    ['GIL: acquisitions, contended', `${h.gilAcquisitions}, ${h.gilContended} (${((100 * h.gilContended) / h.gilAcquisitions).toFixed(1)}%)`, '', ''],
    ['GIL wait p99 (bucket bound, ms); total (s)', `<= ${ms(h.gilWaitP99Bound)}; ${h.gilWaitSeconds.toFixed(2)}`, '', ''],
    ['heap committed at the end (MiB)', h.committedMiB.toFixed(1), '', ''],
  );
  rows[1][0] = `write ${DOCS} documents (s)`;
  return rows.map((r, i) => `| ${r.join(' | ')} |${i === 0 ? `\n|${' --- |'.repeat(r.length)}` : ''}`).join('\n');
}

function chartPage(heap: Result, js: Result): string {
  const chartJs = readFileSync(join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
  const data = JSON.stringify({
    labels: ['throughput (req/s)', 'p50 (ms)', 'p99 (ms)'],
    heap: [heap.load.throughput, heap.load.p50, heap.load.p99],
    js: [js.load.throughput, js.load.p50, js.load.p99],
  });
  return `<!doctype html><meta charset="utf-8"><title>pymalloc-wasm service load test</title>
<style>body { font: 14px system-ui; margin: 2em; } .chart { position: relative; height: 300px; width: 420px; display: inline-block; }</style>
<h1>The example service: shared heap against JS objects + postMessage</h1>
<p>${DOCS} documents of 10-100 KB, ${THREADS} workers, ${CONNECTIONS} connections reading random ids for up to ${DURATION} s.</p>
<div class="chart"><canvas id="throughput"></canvas></div><div class="chart"><canvas id="latency"></canvas></div>
<script>${chartJs}</script>
<script>
const d = ${data};
const bars = (id, from, to) => new Chart(document.getElementById(id), {
  type: 'bar', options: { maintainAspectRatio: false },
  data: { labels: d.labels.slice(from, to), datasets: [
    { label: 'shared heap', data: d.heap.slice(from, to) },
    { label: 'JS objects + postMessage', data: d.js.slice(from, to) } ] },
});
bars('throughput', 0, 1);
bars('latency', 1, 3);
</script>
`;
}

const heap = await run('heap');
const js = await run('js');
console.log(`\n${DOCS} documents of 10-100 KB, ${THREADS} workers, autocannon: ${CONNECTIONS} connections, up to ${DURATION} s or ${REQUESTS} requests\n`);
console.log(table(heap, js));
mkdirSync(OUT, { recursive: true });
writeFileSync(join(OUT, 'loadtest.json'), `${JSON.stringify({ docs: DOCS, threads: THREADS, connections: CONNECTIONS, duration: DURATION, heap, js }, null, 2)}\n`);
writeFileSync(join(OUT, 'loadtest.html'), chartPage(heap, js));
console.log(`\nwrote ${join(OUT, 'loadtest.json')} and loadtest.html`);
