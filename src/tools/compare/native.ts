// The native reference: the same workload replayed by a C program with the C library's malloc
// (glibc on Linux), outside Wasm. Not comparable op for op with the Wasm rows (no bounds checks,
// a different compiler, a different memory model), but it tells what the host's allocator would
// do with the trace. peers/native/replay.c is compiled with gcc on first use into build/native/.

import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { OP_ALLOC, OP_FIELDS, OP_FREE } from '../trace/format.js';
import { PACKAGE_ROOT } from './allocators.js';
import { NativeReplayError } from './errors.js';
import type { MeasuredFigures } from './replay.js';
import type { Workload } from './workloads.js';

const execFileAsync = promisify(execFile);

const SOURCE = join(PACKAGE_ROOT, 'peers', 'native', 'replay.c');
const BUILD_DIR = join(PACKAGE_ROOT, 'build', 'native');
const DEFAULT_SAMPLES = 500;

/** The label of native rows: never mistaken for a Wasm allocator. */
export const NATIVE_LABEL = 'native glibc (not Wasm)';

/** peakFootprintBytes is the peak of mallinfo2's arena + hblkhd: what malloc took from the kernel. */
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

/** The compiled replayer (named after a hash of its source), or undefined without gcc. */
export async function nativeReplayer(): Promise<string | undefined> {
  const hash = createHash('sha256').update(readFileSync(SOURCE)).digest('hex').slice(0, 12);
  const binary = join(BUILD_DIR, `replay-${hash}`);
  if (existsSync(binary)) return binary;
  if (!(await hasCompiler())) return undefined;
  await mkdir(BUILD_DIR, { recursive: true });
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

/**
 * Replays the workload natively. Returns undefined when there is no gcc to build the replayer.
 * @throws NativeReplayError when the replayer fails
 */
export async function nativeReplay(workload: Workload, samples = DEFAULT_SAMPLES): Promise<NativeResult | undefined> {
  const binary = await nativeReplayer();
  if (binary === undefined) return undefined;
  const shape = await workload.shape();
  const interval = Math.max(1, Math.ceil((shape.ops + shape.liveAtEnd) / samples));
  const child = spawn(binary, [String(interval)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (data: Buffer) => (stdout += data));
  child.stderr.on('data', (data: Buffer) => (stderr += data));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  child.stdin.on('error', () => {}); // an early exit is reported through its status below
  for await (const text of traceText(workload)) {
    if (!child.stdin.write(text)) await new Promise((resolve) => child.stdin.once('drain', resolve));
  }
  child.stdin.end();
  const status = await exited;
  if (status !== 0) throw new NativeReplayError(`native replay of ${workload.name} failed (exit ${status}): ${stderr.trim()}`);
  const measured = JSON.parse(stdout) as Omit<NativeResult, 'allocator' | 'workload' | 'fragmentation'>;
  return {
    allocator: NATIVE_LABEL,
    workload: workload.name,
    ...measured,
    fragmentation: measured.peakLiveBytes === 0 ? 0 : measured.peakFootprintBytes / measured.peakLiveBytes,
  };
}
