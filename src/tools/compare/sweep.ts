// `pymalloc sweep`: the tool that chose the tuned preset's settings (README, "The tuned preset"),
// for tuning pymalloc to a workload of one's own. A grid of geometries and policies, each point
// replayed over the workloads on the sweep's modules (build/peers/sweep/: pymalloc under any
// geometry), every replay a task of a piscina worker pool; per point the geometric means of ns/op
// and of fragmentation over the workloads, and the Pareto front of the two. Peers replay the same
// workloads as reference points.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';

import { resolveConfig, type Policy } from '../../heap/config.js';
import { builtAllocators, SWEEP_WASM_DIR, wasmPath, type AllocatorName, type PymallocGeometry } from './allocators.js';
import { AllocatorUnavailableError } from './errors.js';
import { resolveWorkload, SHIPPED_TRACE_NAMES, TRACE_PREFIX } from './workloads.js';
import type { SweepMeasurement, SweepTask } from './sweep-worker.js';

export const SWEEP_POLICIES: readonly Policy[] = ['cpython', 'tuned'];

/** The sweep module of each policy (named after the allocator whose policy it runs). */
const POLICY_MODULE: Record<Policy, AllocatorName> = { cpython: 'pymalloc-3.12', tuned: 'pymalloc-tuned' };

export interface SweepOptions {
  /**
   * Pool sizes in bytes.
   * @default [4096, 8192, 16384]
   */
  poolSizes?: readonly number[];
  /**
   * Arena sizes in bytes.
   * @default [262144, 1048576]
   */
  arenaSizes?: readonly number[];
  /**
   * Alignments (the size class step): 8, 16.
   * @default [8]
   */
  alignments?: readonly number[];
  /**
   * Policies: 'cpython', 'tuned' (src/heap/config.ts, Policy).
   * @default ['cpython', 'tuned']
   */
  policies?: readonly Policy[];
  /**
   * Workloads, as `compare` names them.
   * @default every shipped trace
   */
  workloads?: readonly string[];
  /**
   * Peers replayed as reference points; those not built are left out.
   * @default ['mimalloc', 'dlmalloc']
   */
  peers?: readonly AllocatorName[];
  /**
   * Timed runs per replay after one untimed warm-up; ns/op is their median.
   * @default 3
   */
  repeat?: number;
  /**
   * Worker threads running the replays.
   * @default availableParallelism()
   */
  threads?: number;
  /** Called as replays finish. */
  onProgress?: (done: number, total: number) => void;
}

export interface SweepSetting extends PymallocGeometry {
  policy: Policy;
}

export interface SweepFigures {
  workload: string;
  nsPerOp: number | null;
  fragmentation: number | null;
  failure?: string;
}

export interface SweepPoint {
  /** 'tuned 8/8K/256K' for a setting (policy, alignment, pool size, arena size), or the peer's name. */
  label: string;
  /** The setting; absent for a peer. */
  setting?: SweepSetting;
  /** Geometric means over the workloads; null when a replay failed or had no figure. */
  nsPerOp: number | null;
  fragmentation: number | null;
  /** True iff no other setting is at least as good on both and better on one. Never for a peer. */
  pareto: boolean;
  workloads: SweepFigures[];
}

export interface SweepResult {
  workloads: string[];
  repeat: number;
  points: SweepPoint[];
  /** Combinations of the grid that are no geometry (a pool larger than its arena), with the reason. */
  skipped: { label: string; reason: string }[];
}

const DEFAULTS = { poolSizes: [4096, 8192, 16384], arenaSizes: [262144, 1048576], alignments: [8], policies: SWEEP_POLICIES, peers: ['mimalloc', 'dlmalloc'], repeat: 3 } as const;

function sizeText(bytes: number): string {
  return bytes % 1048576 === 0 ? `${bytes / 1048576}M` : `${bytes / 1024}K`;
}

function settingLabel(s: SweepSetting): string {
  return `${s.policy} ${s.alignment}/${sizeText(s.poolSize)}/${sizeText(s.arenaSize)}`;
}

function geometricMean(values: readonly (number | null)[]): number | null {
  if (values.length === 0 || values.some((v) => v === null || !(v > 0))) return null;
  return Math.exp((values as number[]).reduce((sum, v) => sum + Math.log(v), 0) / values.length);
}

function geometryOf({ alignment, poolSize, arenaSize, smallRequestThreshold }: SweepSetting): PymallocGeometry {
  return { alignment, poolSize, arenaSize, smallRequestThreshold };
}

/** Marks the settings no other setting dominates (as fast or faster and as compact or more, better in one). */
export function markParetoFront(points: SweepPoint[]): void {
  const settings = points.filter((p) => p.setting && p.nsPerOp !== null && p.fragmentation !== null);
  for (const p of settings) {
    p.pareto = !settings.some(
      (q) => q !== p && q.nsPerOp! <= p.nsPerOp! && q.fragmentation! <= p.fragmentation! && (q.nsPerOp! < p.nsPerOp! || q.fragmentation! < p.fragmentation!),
    );
  }
}

/** The grid's settings; a combination that is no geometry goes to `skipped` with resolveConfig's reason. */
function gridSettings(options: SweepOptions, skipped: SweepResult['skipped']): SweepSetting[] {
  const settings: SweepSetting[] = [];
  for (const policy of options.policies ?? DEFAULTS.policies) {
    if (!SWEEP_POLICIES.includes(policy)) throw new RangeError(`options.policies: '${policy}' is not one of ${SWEEP_POLICIES.join(', ')}`);
    for (const alignment of options.alignments ?? DEFAULTS.alignments) {
      for (const poolSize of options.poolSizes ?? DEFAULTS.poolSizes) {
        for (const arenaSize of options.arenaSizes ?? DEFAULTS.arenaSizes) {
          const setting = { policy, alignment, poolSize, arenaSize, smallRequestThreshold: 512 };
          try {
            resolveConfig({ alignment, poolSize, arenaSize });
          } catch (error) {
            if (!(error instanceof RangeError)) throw error;
            if (poolSize <= arenaSize) throw error; // a value no grid can hold: the user's to fix
            skipped.push({ label: settingLabel(setting), reason: error.message });
            continue;
          }
          settings.push(setting);
        }
      }
    }
  }
  return settings;
}

/** The worker's module: the compiled one beside this file, or its TypeScript source through tsx. */
function workerFile(): string {
  const compiled = fileURLToPath(new URL('./sweep-worker.js', import.meta.url));
  return existsSync(compiled) ? compiled : fileURLToPath(new URL('./sweep-worker.bootstrap.mjs', import.meta.url));
}

/** Runs the grid. Throws RangeError naming a bad option, AllocatorUnavailableError without the sweep's modules. */
export async function sweep(options: SweepOptions = {}): Promise<SweepResult> {
  const repeat = options.repeat ?? DEFAULTS.repeat;
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 1000) throw new RangeError(`options.repeat must be an integer from 1 to 1000, got ${repeat}`);
  const threads = options.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`options.threads must be a positive integer, got ${threads}`);
  const workloads = options.workloads ? [...options.workloads] : SHIPPED_TRACE_NAMES.map((n) => `${TRACE_PREFIX}${n}`);
  // Resolved here as well as in the workers, so that an unknown name or a missing trace is
  // reported before any replay runs, as compare does.
  for (const workload of workloads) resolveWorkload(workload);
  const skipped: SweepResult['skipped'] = [];
  const settings = gridSettings(options, skipped);
  for (const policy of new Set(settings.map((s) => s.policy))) {
    const path = wasmPath(POLICY_MODULE[policy], { wasmDir: SWEEP_WASM_DIR });
    if (!existsSync(path)) throw new AllocatorUnavailableError(POLICY_MODULE[policy], path, 'run `npm run build:peers` in a checkout of pymalloc-wasm');
  }
  const built = builtAllocators();
  const peers = (options.peers ?? DEFAULTS.peers).filter((name) => built.includes(name));

  const points: SweepPoint[] = [
    ...settings.map((setting) => ({ label: settingLabel(setting), setting, nsPerOp: null, fragmentation: null, pareto: false, workloads: [] })),
    ...peers.map((peer) => ({ label: peer, nsPerOp: null, fragmentation: null, pareto: false, workloads: [] })),
  ];
  const pool = new Piscina({ filename: workerFile(), minThreads: threads, maxThreads: threads });
  const total = points.length * workloads.length;
  let done = 0;
  try {
    await Promise.all(
      points.flatMap((point) =>
        workloads.map(async (workload) => {
          const task: SweepTask = {
            allocator: point.setting ? POLICY_MODULE[point.setting.policy] : (point.label as AllocatorName),
            ...(point.setting && { geometry: geometryOf(point.setting) }),
            workload,
            repeat,
          };
          const measured = (await pool.run(task)) as SweepMeasurement;
          point.workloads.push({ workload, ...measured });
          options.onProgress?.(++done, total);
        }),
      ),
    );
  } finally {
    await pool.destroy();
  }
  for (const point of points) {
    point.workloads.sort((a, b) => workloads.indexOf(a.workload) - workloads.indexOf(b.workload));
    point.nsPerOp = geometricMean(point.workloads.map((w) => (w.failure ? null : w.nsPerOp)));
    point.fragmentation = geometricMean(point.workloads.map((w) => (w.failure ? null : w.fragmentation)));
  }
  markParetoFront(points);
  return { workloads, repeat, points, skipped };
}

/** The sweep as a table, the Pareto front marked. */
export function formatSweep(result: SweepResult): string {
  const width = Math.max(...result.points.map((p) => p.label.length), 7);
  const lines = [
    `${result.workloads.length} workloads; geometric means over them; * marks the Pareto front of the settings`,
    '',
    `  ${'setting'.padEnd(width)}    ns/op  fragmentation`,
  ];
  const order = [...result.points].sort((a, b) => (a.nsPerOp ?? Infinity) - (b.nsPerOp ?? Infinity));
  for (const p of order) {
    const ns = p.nsPerOp === null ? 'n/a' : p.nsPerOp.toFixed(1);
    const frag = p.fragmentation === null ? 'n/a' : p.fragmentation.toFixed(3);
    lines.push(`${p.pareto ? '*' : ' '} ${p.label.padEnd(width)} ${ns.padStart(8)} ${frag.padStart(14)}${p.setting ? '' : '   (peer)'}`);
  }
  for (const s of result.skipped) lines.push(`skipped ${s.label}: ${s.reason}`);
  return lines.join('\n');
}
