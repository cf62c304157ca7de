// The native reference: the same workload replayed by a C program with the C library's malloc
// (glibc on Linux), outside Wasm. Not comparable op for op with the Wasm rows (no bounds checks,
// a different compiler, a different memory model), but it tells what the host's allocator would
// do with the trace. peers/native/replay.c is compiled with gcc on first use into build/native/.
//
// As for the Wasm rows, memory and time come from separate runs, each a fresh process on the
// same canonical text (written once to a temporary file): one footprint run (the exact peak of
// mallinfo2's arena + hblkhd), one untimed warm-up run, then `repeat` timed runs.

import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, open, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { userCacheDir } from '../trace/cache.js';
import { OP_ALLOC, OP_FIELDS, OP_FREE } from '../trace/format.js';
import { PACKAGE_ROOT } from './allocators.js';
import { NativeReplayError } from './errors.js';
import { DEFAULT_REPEAT, fragmentationOf, spread, type MeasuredFigures } from './replay.js';
import type { Workload } from './workloads.js';

const execFileAsync = promisify(execFile);

const SOURCE = join(PACKAGE_ROOT, 'peers', 'native', 'replay.c');

/** The label of native rows: never mistaken for a Wasm allocator. */
export const NATIVE_LABEL = 'native glibc (not Wasm)';

/** peakFootprintBytes is the exact peak of mallinfo2's arena + hblkhd: what malloc took from the kernel. */
export interface NativeResult extends MeasuredFigures {
  allocator: typeof NATIVE_LABEL;
  /** The process's peak resident set, the trace in memory included. */
  peakRssBytes: number;
}

async function hasCompiler(): Promise<boolean> {
  try {
    await execFileAsync('gcc', ['--version']);
    return true;
  } catch {
    return false;
  }
}

/** The compiled replayer (in the user's cache, named after a hash of its source), or undefined without gcc. */
export async function nativeReplayer(): Promise<string | undefined> {
  const hash = createHash('sha256').update(readFileSync(SOURCE)).digest('hex').slice(0, 12);
  const buildDir = join(userCacheDir(), 'native');
  const binary = join(buildDir, `replay-${hash}`);
  if (existsSync(binary)) return binary;
  if (!(await hasCompiler())) return undefined;
  await mkdir(buildDir, { recursive: true });
  const partial = `${binary}.${process.pid}.partial`;
  try {
    await execFileAsync('gcc', ['-O2', '-std=gnu11', '-o', partial, SOURCE]);
  } catch (error) {
    throw new NativeReplayError(`cannot compile ${SOURCE}: ${(error as { stderr?: string }).stderr ?? error}`, { cause: error });
  }
  await rename(partial, binary);
  return binary;
}

/** The workload as canonical text, with frees appended for the ids it leaves live. */
async function* traceText(workload: Workload): AsyncGenerator<string> {
  yield '# pymalloc-trace v1\n';
  const live = new Set<number>();
  for await (const chunk of workload.chunks()) {
    const lines: string[] = [];
    for (let i = 0; i < chunk.length; i += OP_FIELDS) {
      const kind = chunk[i];
      const id = chunk[i + 1];
      if (kind === OP_FREE) {
        live.delete(id);
        lines.push(`f ${id}`);
      } else {
        live.add(id);
        lines.push(`${kind === OP_ALLOC ? 'a' : 'r'} ${id} ${chunk[i + 2]}`);
      }
    }
    yield lines.join('\n') + '\n';
  }
  if (live.size > 0) yield [...live].map((id) => `f ${id}`).join('\n') + '\n';
}

export interface NativeReplayOptions {
  /**
   * Timed runs, each a fresh process after one untimed warm-up run.
   * @default DEFAULT_REPEAT (5)
   */
  repeat?: number;
}

/** What `replay footprint` prints (peers/native/replay.c). */
interface FootprintOutput {
  ops: number;
  peakLiveBytes: number;
  peakFootprintBytes: number;
  finalFootprintBytes: number;
  peakRssBytes: number;
  failure?: { op: number; liveBytes: number; size: number; message: string };
}

/** Runs the replayer in one mode with the trace file as stdin; its JSON line. */
async function run<T>(binary: string, mode: 'footprint' | 'time', trace: string, workload: string): Promise<T> {
  const input = await open(trace, 'r');
  try {
    const child = spawn(binary, [mode], { stdio: [input.fd, 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (data: Buffer) => (stdout += data));
    child.stderr!.on('data', (data: Buffer) => (stderr += data));
    const status = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    if (status !== 0) throw new NativeReplayError(`native replay (${mode}) of ${workload} failed (exit ${status}): ${stderr.trim()}`);
    return JSON.parse(stdout) as T;
  } finally {
    await input.close();
  }
}

/**
 * Replays the workload natively. Returns undefined when there is no gcc to build the replayer.
 * An allocation that returns NULL gives a result with its `failure`.
 * @throws NativeReplayError when the replayer cannot be built or rejects the trace
 */
export async function nativeReplay(workload: Workload, options: NativeReplayOptions = {}): Promise<NativeResult | undefined> {
  const repeat = options.repeat ?? DEFAULT_REPEAT;
  if (!Number.isInteger(repeat) || repeat < 1) throw new RangeError(`options.repeat must be a positive integer, got ${repeat}`);
  const binary = await nativeReplayer();
  if (binary === undefined) return undefined;
  const dir = await mkdtemp(join(tmpdir(), 'pymalloc-native-'));
  try {
    const trace = join(dir, 'trace.txt');
    const file = createWriteStream(trace);
    for await (const text of traceText(workload)) {
      if (!file.write(text)) await new Promise<void>((resolve) => file.once('drain', () => resolve()));
    }
    await new Promise<void>((resolve, reject) => file.end((error?: Error | null) => (error ? reject(error) : resolve())));

    const measured = await run<FootprintOutput>(binary, 'footprint', trace, workload.name);
    const times: number[] = [];
    if (measured.failure === undefined) {
      await run(binary, 'time', trace, workload.name);
      for (let i = 0; i < repeat; i++) {
        const { ops, ns } = await run<{ ops: number; ns: number }>(binary, 'time', trace, workload.name);
        times.push(ops === 0 ? 0 : ns / ops);
      }
    }
    const time = spread(times);
    const { failure, ...figures } = measured;
    return {
      allocator: NATIVE_LABEL,
      workload: workload.name,
      ...figures,
      nsPerOp: time.median,
      nsPerOpMin: time.min,
      nsPerOpMax: time.max,
      timedRuns: times.length,
      ...fragmentationOf(measured.peakFootprintBytes, measured.peakLiveBytes),
      ...(failure !== undefined && {
        failure: {
          pass: 'footprint' as const,
          op: failure.op,
          liveBytes: failure.liveBytes,
          footprintBytes: measured.finalFootprintBytes,
          reason: 'refused' as const,
          message: `${NATIVE_LABEL}: op ${failure.op} failed: ${failure.message} for ${failure.size} bytes with ${failure.liveBytes} bytes live`,
        },
      }),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
