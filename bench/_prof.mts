import { Heap } from '../src/index.js';
import { TapeWriter, readTape } from '../src/heap/json.js';
function document(records: number): any {
  const items: any[] = [];
  for (let i = 0; i < records; i++) items.push({ id: i, name: `user-${i}-${(i * 2654435761) % 100000}`, email: `user${i}@example.org`, active: i % 3 !== 0, score: ((i * 7919) % 10000) / 100, tags: ['alpha', 'beta', 'gamma'].slice(0, 1 + (i % 3)), address: { street: `${i} Main Street`, city: i % 2 ? 'Lisbon' : 'Zürich', zip: 10000 + i }, manager: i % 5 === 0 ? null : i - 1 });
  return { version: 3, generated: '2026', items };
}
const heap = await Heap.create(); heap.gc.disable();
const doc = document(600);
const w = new TapeWriter();
const time = (name: string, f: () => void, n = 300) => { for (let i = 0; i < 50; i++) f(); const t = performance.now(); for (let i = 0; i < n; i++) f(); console.log(name, ((performance.now() - t) / n * 1000).toFixed(1), 'us'); };
time('encode', () => w.write(doc));
const tape = w.write(doc); console.log('tape bytes', tape.length);
time('fromJSON+decref', () => heap.decref(heap.fromJSON(doc)));
const roots: number[] = [];
time('fromJSON only', () => roots.push(heap.fromJSON(doc)), 200);
let k = 0; time('decref only', () => heap.decref(roots[k++]), 200);
const root = heap.fromJSON(doc);
time('toJSON', () => heap.toJSON(root));
time('structuredClone', () => structuredClone(doc));
function walk(v: any): number {
  switch (typeof v) {
    case 'string': return v.length;
    case 'number': return 1;
    case 'boolean': return 1;
    case 'object': {
      if (v === null) return 1;
      let n = 0;
      if (Array.isArray(v)) { for (let i = 0; i < v.length; i++) n += walk(v[i]); return n; }
      for (const key in v) n += key.length + walk(v[key]);
      return n;
    }
  }
  return 0;
}
time('bare walk', () => walk(doc));
const enc = new TextEncoder(); const buf = new Uint8Array(1 << 20);
function walkEnc(v: any, p: number): number {
  switch (typeof v) {
    case 'string': { for (let i = 0; i < v.length; i++) buf[p++] = v.charCodeAt(i); return p; }
    case 'number': return p + 4;
    case 'boolean': return p + 4;
    case 'object': {
      if (v === null) return p + 4;
      if (Array.isArray(v)) { for (let i = 0; i < v.length; i++) p = walkEnc(v[i], p); return p; }
      for (const key in v) { p = walkEnc(key, p); p = walkEnc(v[key], p); }
      return p;
    }
  }
  return p;
}
time('walk + copy chars', () => walkEnc(doc, 0));
const ex = (heap as any);
{
  const w2 = new TapeWriter();
  // tape dump pieces through the object space's exports
  const space = (heap as any);
}
time('JSON.parse(text)', () => JSON.parse(JSON.stringify(doc)));
