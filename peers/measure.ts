// Times the churn loop on every built peer: `npx tsx peers/measure.ts [live steps seed maxSize]`.
// Each peer runs in a fresh instance; the first run warms the engine up (V8 tiers Wasm up from
// Liftoff to TurboFan), the best of the timed runs is reported.

import { availablePeers, loadPeer } from './index.js';

const TIMED_RUNS = 3;

const DEFAULT_ARGUMENTS = ['10000', '1000000', '12345', '512'];

const given = process.argv.slice(2);
const [live, steps, seed, maxSize] = (given.length > 0 ? given : DEFAULT_ARGUMENTS).map(Number);

const opsPerRun = steps * 2;
console.log(`churn(${live}, ${steps}, ${seed}, ${maxSize}): ${opsPerRun} ops per run`);
for (const name of availablePeers()) {
  (await loadPeer(name)).churn(live, steps, seed, maxSize);
  let best = Infinity;
  let footprint = 0;
  for (let run = 0; run < TIMED_RUNS; run++) {
    const peer = await loadPeer(name);
    const start = process.hrtime.bigint();
    const checksum = peer.churn(live, steps, seed, maxSize);
    const elapsed = Number(process.hrtime.bigint() - start);
    if (checksum === 0) throw new Error(`${name}: an allocation failed`);
    best = Math.min(best, elapsed);
    footprint = peer.memory.buffer.byteLength;
  }
  const nsPerOp = (best / opsPerRun).toFixed(1);
  const mib = (footprint / 2 ** 20).toFixed(1);
  console.log(`${name.padEnd(9)} ${nsPerOp.padStart(7)} ns/op   memory ${mib.padStart(6)} MiB`);
}
