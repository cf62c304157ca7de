// fromJSON / toJSON / parseJSON against what a Node program would otherwise do with the same
// document: structuredClone (a copy of the JS value), JSON.stringify and JSON.parse (a copy
// through text; JSON.parse is parseJSON's peer, text in, and JSON.stringify stringifyJSON's,
// text out), and the heap's own per-object API (newDict, dictSet, ... one call into Wasm each).
// Documents of about 10, 50 and 100 KB of JSON: records with strings, ints, floats, bools,
// nulls, nested objects and arrays. Timed by benchmark.js; every figure is a ratio against a
// peer measured in the same run.
//
//   npx tsx bench/json.ts

import Benchmark from 'benchmark';
import { Heap, type JsonValue } from '../src/index.js';

/** A document of `records` records, deterministic. */
function document(records: number): JsonValue {
  const items: JsonValue[] = [];
  for (let i = 0; i < records; i++) {
    items.push({
      id: i,
      name: `user-${i}-${(i * 2654435761) % 100000}`,
      email: `user${i}@example.org`,
      active: i % 3 !== 0,
      score: ((i * 7919) % 10000) / 100,
      tags: ['alpha', 'beta', 'gamma'].slice(0, 1 + (i % 3)),
      address: { street: `${i} Main Street`, city: i % 2 ? 'Lisbon' : 'Zürich', zip: 10000 + i },
      manager: i % 5 === 0 ? null : i - 1,
    });
  }
  return { version: 3, generated: '2026-12-01T00:00:00Z', items };
}

/** The per-object way: one call into the core per object and per key. */
function buildByCalls(heap: Heap, value: JsonValue): number {
  if (value === null) return heap.none();
  switch (typeof value) {
    case 'boolean': return heap.newBool(value);
    case 'number': return Number.isSafeInteger(value) ? heap.newInt(value) : heap.newFloat(value);
    case 'bigint': return heap.newInt(value);
    case 'string': return heap.newStr(value);
  }
  if (Array.isArray(value)) {
    const list = heap.newList();
    for (const item of value) {
      const o = buildByCalls(heap, item);
      heap.listAppend(list, o);
      heap.decref(o);
    }
    return list;
  }
  const d = heap.newDict();
  for (const key in value) {
    const o = buildByCalls(heap, value[key]);
    heap.dictSet(d, key, o);
    heap.decref(o);
  }
  return d;
}

const heap = await Heap.create();
heap.gc.disable();

interface Row {
  size: string;
  name: string;
  us: number;
  rme: number;
}
const rows: Row[] = [];
const suite = new Benchmark.Suite('json');
const sizes: Array<[string, number]> = [['10 KB', 60], ['50 KB', 300], ['100 KB', 600]];
for (const [size, records] of sizes) {
  const doc = document(records);
  const text = JSON.stringify(doc);
  const root = heap.fromJSON(doc);
  if (JSON.stringify(heap.toJSON(root)) !== text || heap.stringifyJSON(root) !== text) throw new Error('the round trip differs');
  const cases: Array<[string, () => unknown]> = [
    ['fromJSON + decref', () => heap.decref(heap.fromJSON(doc))],
    ['parseJSON(text) + decref', () => heap.decref(heap.parseJSON(text))],
    ['per-object API + decref', () => heap.decref(buildByCalls(heap, doc))],
    ['structuredClone', () => structuredClone(doc)],
    ['JSON.parse(JSON.stringify)', () => JSON.parse(JSON.stringify(doc))],
    ['JSON.stringify', () => JSON.stringify(doc)],
    ['JSON.parse', () => JSON.parse(text)],
    ['toJSON', () => heap.toJSON(root)],
    ['stringifyJSON', () => heap.stringifyJSON(root)],
  ];
  for (const [name, fn] of cases) {
    suite.add(`${name} (${size})`, fn, {
      maxTime: 2,
      minSamples: 10,
      onComplete(event: Benchmark.Event) {
        const bench = event.target as unknown as Benchmark;
        rows.push({ size: `${size}: ${text.length} bytes`, name, us: bench.stats.mean * 1e6, rme: bench.stats.rme });
      },
    });
  }
}
suite.run({ async: false });
heap.check();

function ratio(reference: number, value: number): string {
  return value <= reference ? `${(reference / value).toFixed(2)}x faster` : `${(value / reference).toFixed(2)}x slower`;
}

for (const [size] of sizes) {
  const selected = rows.filter((r) => r.size.startsWith(`${size}:`));
  const find = (name: string) => selected.find((r) => r.name === name)!.us;
  console.log(`\n${selected[0].size}\n  ${'case'.padEnd(28)} ${'µs'.padStart(9)}    ±%   ${'vs structuredClone'.padEnd(20)} ${'vs JSON.parse(JSON.stringify)'.padEnd(30)} ${'vs JSON.parse'.padEnd(20)} vs JSON.stringify`);
  for (const r of selected) {
    console.log(
      `  ${r.name.padEnd(28)} ${r.us.toFixed(1).padStart(9)} ${r.rme.toFixed(1).padStart(5)}   ` +
        `${ratio(find('structuredClone'), r.us).padEnd(20)} ${ratio(find('JSON.parse(JSON.stringify)'), r.us).padEnd(30)} ` +
        `${ratio(find('JSON.parse'), r.us).padEnd(20)} ${ratio(find('JSON.stringify'), r.us)}`,
    );
  }
}
