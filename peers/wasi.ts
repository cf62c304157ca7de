// The few WASI functions that wasi-libc pulls into the C peers (mimalloc reads its options from
// the environment, asks for the time, and may print a warning). The peers run no program, so
// there are no arguments, no environment and no files: only stdout and stderr, forwarded to the
// host's stderr so that an allocator's warnings are seen and not mixed into a benchmark's output.

import { PeerError } from './errors.js';

export const WASI_MODULE = 'wasi_snapshot_preview1';

const ERRNO_SUCCESS = 0;
const ERRNO_BADF = 8;
const ERRNO_SPIPE = 70;

const FD_STDOUT = 1;
const FD_STDERR = 2;

const CLOCK_REALTIME = 0;

/** crypto.getRandomValues fills at most this many bytes per call. */
const RANDOM_CHUNK = 65536;

type WasiFunction = (...args: never[]) => number | void;

/**
 * Imports for the WASI functions a peer module names. `memory` is called only once the instance
 * exists, since the module exports its memory rather than importing it.
 * @throws PeerError naming the imports that have no stub here.
 */
export function wasiImports(
  peer: string,
  module: WebAssembly.Module,
  memory: () => WebAssembly.Memory,
): WebAssembly.Imports {
  const view = () => new DataView(memory().buffer);
  const writeZeroPair = (firstPtr: number, secondPtr: number): number => {
    const data = view();
    data.setUint32(firstPtr, 0, true);
    data.setUint32(secondPtr, 0, true);
    return ERRNO_SUCCESS;
  };

  const stubs: Record<string, WasiFunction> = {
    args_sizes_get: writeZeroPair,
    args_get: () => ERRNO_SUCCESS,
    environ_sizes_get: writeZeroPair,
    environ_get: () => ERRNO_SUCCESS,
    clock_res_get: (_clock: number, resolutionPtr: number) => {
      view().setBigUint64(resolutionPtr, 1n, true);
      return ERRNO_SUCCESS;
    },
    clock_time_get: (clock: number, _precision: bigint, timePtr: number) => {
      const nanoseconds =
        clock === CLOCK_REALTIME ? BigInt(Date.now()) * 1_000_000n : process.hrtime.bigint();
      view().setBigUint64(timePtr, nanoseconds, true);
      return ERRNO_SUCCESS;
    },
    fd_write: (fd: number, iovecs: number, iovecCount: number, writtenPtr: number) => {
      if (fd !== FD_STDOUT && fd !== FD_STDERR) return ERRNO_BADF;
      const data = view();
      const bytes = new Uint8Array(memory().buffer);
      let written = 0;
      for (let i = 0; i < iovecCount; i++) {
        const base = data.getUint32(iovecs + i * 8, true);
        const length = data.getUint32(iovecs + i * 8 + 4, true);
        process.stderr.write(bytes.slice(base, base + length));
        written += length;
      }
      data.setUint32(writtenPtr, written, true);
      return ERRNO_SUCCESS;
    },
    fd_fdstat_get: () => ERRNO_BADF,
    fd_seek: () => ERRNO_SPIPE,
    fd_close: () => ERRNO_BADF,
    random_get: (bufferPtr: number, length: number) => {
      for (let done = 0; done < length; done += RANDOM_CHUNK) {
        const chunk = Math.min(RANDOM_CHUNK, length - done);
        crypto.getRandomValues(new Uint8Array(memory().buffer, bufferPtr + done, chunk));
      }
      return ERRNO_SUCCESS;
    },
    sched_yield: () => ERRNO_SUCCESS,
    proc_exit: (code: number) => {
      throw new PeerError(peer, `called proc_exit(${code})`);
    },
  };

  const wanted = WebAssembly.Module.imports(module);
  const missing = wanted.filter((i) => i.module !== WASI_MODULE || !(i.name in stubs));
  if (missing.length > 0) {
    const names = missing.map((i) => `${i.module}.${i.name}`).join(', ');
    throw new PeerError(peer, `imports that the loader does not provide: ${names}`);
  }
  const provided: Record<string, WasiFunction> = {};
  for (const { name } of wanted) provided[name] = stubs[name];
  return wanted.length === 0 ? {} : { [WASI_MODULE]: provided };
}
