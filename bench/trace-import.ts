// Import throughput of a real CPython mtrace: events (mtrace lines) per second for the first
// 250k, 1M and 4M events, so that a cost growing with the trace, not just with its length, shows
// as a falling rate. The trace is recorded once with glibc's mtrace (through the same preload
// that record() uses) from CPython running json and ast work with PYTHONMALLOC=malloc, and kept
// in the temporary directory for later runs.
//
//   npx tsx bench/trace-import.ts [runs]        (default 5; prints the median of the runs)
//
// Each run imports the prefix from memory in 64 KiB pieces, as readTrace gets them from a file
// or a pipe, so the figure is the importer's (parsing, the address table, packing ops) and not
// the disk's. A run takes seconds, so a plain timed loop over whole imports serves better than
// benchmark.js's many short samples.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import { readTrace, type TraceSummary } from '../src/tools/trace/index.js';
import { mtracePreload } from '../src/tools/trace/record.js';

const PREFIXES = [250_000, 1_000_000, 4_000_000] as const;
const PIECE_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

const runs = Number(process.argv[2] ?? 5);
if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`runs must be a positive integer, not ${process.argv[2]}`);

/** About 5.2M events with CPython 3.11: JSON round trips of 20k records, then ASTs of typing.py. */
const WORKLOAD = `
import ast, json, os
records = [{"id": i, "name": "item-%d" % i, "tags": [str(j) for j in range(i % 7)], "score": i * 0.5} for i in range(20000)]
for _ in range(3):
    text = json.dumps(records)
    assert json.loads(text) == records
source = open(os.path.join(os.path.dirname(os.__file__), "typing.py")).read()
for _ in range(2):
    ast.dump(ast.parse(source))
`;

/** The real interpreter, not a wrapper script such as pyenv's shim. */
const PYTHON = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();

async function recordedTrace(): Promise<string> {
  const version = execFileSync(PYTHON, ['--version'], { encoding: 'utf8' }).trim();
  const key = createHash('sha256').update(`${PYTHON}\n${version}\n${WORKLOAD}`).digest('hex').slice(0, 12);
  const directory = join(tmpdir(), 'pymalloc-bench');
  const path = join(directory, `cpython-${key}.mtrace`);
  if (existsSync(path)) return path;
  await mkdir(directory, { recursive: true });
  const partial = `${path}.${process.pid}.partial`;
  console.error(`recording ${version} under glibc mtrace into ${path} ...`);
  execFileSync(PYTHON, ['-c', WORKLOAD], {
    stdio: 'inherit',
    env: {
      ...process.env,
      LD_PRELOAD: (await mtracePreload()).join(':'),
      MALLOC_TRACE: partial,
      PYTHONMALLOC: 'malloc',
      PYTHONHASHSEED: '0',
    },
  });
  await rename(partial, path);
  return path;
}

/** The '<' line that begins a realloc; its '>' line follows. */
const REALLOC_BEGINS = /(?:^|\] )< /;

/** The byte length of the first `events` event lines (and the "= Start" before them), a
 *  realloc's two lines kept together. */
function prefixLength(trace: Buffer, events: number): number {
  let at = 0;
  let counted = 0;
  let insideRealloc = false;
  while (counted < events || insideRealloc) {
    const end = trace.indexOf(NEWLINE, at);
    if (end === -1) throw new RangeError(`the trace holds fewer than ${events} events`);
    const line = trace.toString('latin1', at, end);
    if (!line.startsWith('= ')) counted++;
    insideRealloc = REALLOC_BEGINS.test(line);
    at = end + 1;
  }
  return at;
}

async function importOnce(input: Buffer): Promise<{ seconds: number; summary: TraceSummary }> {
  async function* pieces(): AsyncGenerator<Buffer> {
    for (let at = 0; at < input.length; at += PIECE_BYTES) yield input.subarray(at, at + PIECE_BYTES);
  }
  const start = performance.now();
  let summary: TraceSummary | undefined;
  for await (const chunk of readTrace(pieces(), 'bench')) summary = chunk.summary ?? summary;
  return { seconds: (performance.now() - start) / 1000, summary: summary! };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const trace = await readFile(await recordedTrace());
console.log(`node ${process.version}, ${PYTHON}, median of ${runs} runs after one warm-up\n`);
console.log('events      median s   min s      max s      events/s     ns/event   vs 250k   ops        live at end');
let baseline: number | undefined;
for (const events of PREFIXES) {
  const input = trace.subarray(0, prefixLength(trace, events));
  const { summary } = await importOnce(input);
  const seconds: number[] = [];
  for (let run = 0; run < runs; run++) seconds.push((await importOnce(input)).seconds);
  const perEvent = median(seconds) / events;
  baseline ??= perEvent;
  console.log(
    [
      String(events).padEnd(11),
      median(seconds).toFixed(3).padEnd(10),
      Math.min(...seconds).toFixed(3).padEnd(10),
      Math.max(...seconds).toFixed(3).padEnd(10),
      Math.round(1 / perEvent).toLocaleString('en-US').padEnd(12),
      (perEvent * 1e9).toFixed(0).padEnd(10),
      `${(perEvent / baseline).toFixed(2)}x`.padEnd(9),
      String(summary.ops).padEnd(10),
      String(summary.liveAtEnd),
    ].join(' '),
  );
}
