// The fast-path cost of the debug hooks' switch: ns per malloc + free inside Wasm (mallocMany /
// freeMany of the ABI: the loop runs in the core, one JS call per 16384 blocks), for core
// modules given on the command line, interleaved, medians of 15 rounds. With no argument it
// measures build/pymalloc.release.wasm with the hooks off and on.
//
//   npx tsx bench/debug-hooks.ts [label=path/to/pymalloc.release.wasm ...]
import { readFileSync } from 'node:fs';

interface Core {
  memory: WebAssembly.Memory;
  heapInit(a: number, t: number, p: number, ar: number, pages: number): number;
  mallocMany(n: number): number;
  freeMany(n: number): number;
  ioBuffer(): number;
  debugHooksInit?(flags: number): number;
}

const BATCH = 16384;
const ROUNDS = 15;
const REPEATS = 40;

async function instance(path: string, hooks: number): Promise<() => number> {
  const module = await WebAssembly.compile(readFileSync(path));
  const stub = () => 0;
  const imports = { env: new Proxy({}, { get: () => stub }) } as unknown as WebAssembly.Imports;
  const core = (await WebAssembly.instantiate(module, imports)).exports as unknown as Core;
  core.heapInit(4, 512, 14, 20, 65535);
  if (hooks) core.debugHooksInit!(hooks);
  // Sizes uniform in 1..128 from a fixed linear congruential sequence: the same in every module.
  const sizes = new Uint32Array(BATCH);
  let x = 12345;
  for (let i = 0; i < BATCH; i++) sizes[i] = 1 + ((x = (x * 1103515245 + 12345) >>> 0) >>> 16) % 128;
  return () => {
    const start = process.hrtime.bigint();
    for (let r = 0; r < REPEATS; r++) {
      new Uint32Array(core.memory.buffer, core.ioBuffer(), BATCH).set(sizes);
      if (core.mallocMany(BATCH) !== BATCH) throw new Error('out of memory');
      if (core.freeMany(BATCH) !== BATCH) throw new Error('free failed');
    }
    return Number(process.hrtime.bigint() - start) / (REPEATS * BATCH);
  };
}

const args = process.argv.slice(2);
const cases: [string, string, number][] = args.length
  ? args.map((a) => { const [label, path] = a.split('='); return [label, path, 0] as [string, string, number]; })
  : [['hooks off', 'build/pymalloc.release.wasm', 0], ['hooks on', 'build/pymalloc.release.wasm', 1]];
if (args.length) cases.push(['hooks on', cases[cases.length - 1][1], 1]);
const runs = await Promise.all(cases.map(([, path, hooks]) => instance(path, hooks)));
const times: number[][] = cases.map(() => []);
for (let round = 0; round < ROUNDS; round++) runs.forEach((run, i) => times[i].push(run()));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const base = median(times[0]);
console.log(`malloc + free in Wasm, ${BATCH} blocks of 1..128 bytes a batch, median of ${ROUNDS} rounds (cpython-3.12)`);
cases.forEach(([label], i) => {
  const m = median(times[i]);
  console.log(`  ${label.padEnd(12)} ${m.toFixed(2).padStart(7)} ns   ${(m / base).toFixed(3)}x ${cases[0][0]}`);
});
