// One point of `pymalloc sweep` on one workload, in a piscina worker (src/tools/compare/sweep.ts):
// a replay on a fresh instance, its ns/op and fragmentation.

import { replay } from './replay.js';
import { resolveWorkload } from './workloads.js';
import { SWEEP_WASM_DIR, type AllocatorName, type PymallocGeometry } from './allocators.js';

export interface SweepTask {
  allocator: AllocatorName;
  /** Set for a setting of the grid (a sweep module); unset for a peer as it is built. */
  geometry?: PymallocGeometry;
  workload: string;
  repeat: number;
}

export interface SweepMeasurement {
  nsPerOp: number | null;
  fragmentation: number | null;
  failure?: string;
}

export default async function measure(task: SweepTask): Promise<SweepMeasurement> {
  const options = task.geometry ? { wasmDir: SWEEP_WASM_DIR, geometry: task.geometry } : {};
  const result = await replay(task.allocator, resolveWorkload(task.workload), { ...options, repeat: task.repeat, samples: 1 });
  return {
    nsPerOp: result.nsPerOp,
    fragmentation: result.fragmentation,
    ...(result.failure && { failure: result.failure.message }),
  };
}
