// npm start: a first look at the heap. Allocates a CPython-like mix of small objects and a
// few large buffers, frees most of them, and prints what sys._debugmallocstats() would say.
import { Heap } from 'pymalloc-wasm';

const heap = await Heap.create({ preset: 'cpython-3.12' });

let x = 2463534242;
function random() {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return (x >>> 0) / 2 ** 32;
}
/** Most Python objects are 16..128 bytes; a few are large. */
function objectSize() {
  const r = random();
  if (r < 0.85) return 16 + Math.floor(random() * 113);
  if (r < 0.99) return 129 + Math.floor(random() * 384);
  return 513 + Math.floor(random() * 64 * 1024);
}

const live = [];
for (let i = 0; i < 200_000; i++) live.push(heap.malloc(objectSize()));
console.log(`allocated ${live.length} blocks`);
const peak = heap.stats();

// Free 90% at random: the survivors pin their pools and arenas.
const survivors = [];
for (const address of live) {
  if (random() < 0.9) heap.free(address);
  else survivors.push(address);
}
heap.check();
console.log(`freed ${live.length - survivors.length}, ${survivors.length} survive\n`);
console.log(heap.debugMallocStats());

const now = heap.stats();
const mib = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`;
console.log(`arenas at the peak: ${peak.arenas.current}, now: ${now.arenas.current} (${now.arenas.reclaimed} released)`);
console.log(`committed wasm memory: ${mib(now.memory.committedBytes)} (peak ${mib(now.memory.peakCommittedBytes)}), ` +
  `in use ${mib(now.memory.inUseBytes)}, released for reuse ${mib(now.memory.releasedBytes)}`);

heap.freeMany(survivors);
heap.check();
console.log(`after freeing everything: ${heap.stats().arenas.current} arena kept, ${heap.stats().raw.blocks} raw blocks`);
