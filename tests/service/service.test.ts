// The example service (examples/service), one short bounded run on an ephemeral port: documents
// written from several clients at once and read back byte for byte, the error statuses, a
// worker that dies mid-request, /metrics against the heap's own counts, and at the end the heap
// checked and every stored record's refcount exactly what the store and the links hold.
import { request } from 'node:http';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startService, type Service } from '../../examples/service/server.js';
import { Documents } from '../../examples/service/documents.js';
import { DOCUMENT, LINKS } from '../../examples/service/store.js';
import type { Heap } from '../../src/index.js';
import { parse } from '../metrics/helpers.js';

const THREADS = 3;
const MAX_MEMORY = 48 * 2 ** 20;
const BODY_LIMIT = 12 * 2 ** 20;

/** Runs `tasks` with at most `width` at once. */
async function inParallel<T>(width: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  }));
  return results;
}

describe('the example service, shared-heap mode', () => {
  let service: Service;
  let heap: Heap;
  /** What the test expects stored: id -> its text and the ids its links name. */
  const model = new Map<string, { text: string; links: string[] }>();
  /** Requests made, by `route status`, to compare with service_requests_total. */
  const made = new Map<string, number>();
  /** Collections this thread ran, per generation (the test's own, and any its allocations set off). */
  const mainCollections = [0, 0, 0];

  async function call(route: string, method: string, path: string, body?: string | Buffer): Promise<{ status: number; text: string }> {
    const response = await fetch(service.url + path, { method, body: typeof body === 'string' ? body : body && new Uint8Array(body) });
    const text = await response.text();
    const key = `${route} ${response.status}`;
    made.set(key, (made.get(key) ?? 0) + 1);
    return { status: response.status, text };
  }
  const put = (id: string, text: string | Buffer) => call('put', 'PUT', `/doc/${id}`, text);
  const get = (id: string) => call('get', 'GET', `/doc/${id}`);
  const allocated = () => {
    const s = heap.stats();
    return s.bytes.inAllocatedBlocks + s.raw.bytes;
  };

  beforeAll(async () => {
    service = await startService({ port: 0, threads: THREADS, maxMemory: MAX_MEMORY, bodyLimit: BODY_LIMIT, crashRoute: true });
    heap = service.heap!;
    heap.gc.callbacks.push((phase, info) => {
      if (phase === 'stop') mainCollections[info.generation]++;
    });
  });

  afterAll(async () => {
    await service?.close();
  });

  it('stores 150 documents of 10-100 KB written by 8 clients at once, linking earlier ones, and returns each byte for byte', async () => {
    const docs = new Documents(12);
    // In rounds of 30, each document linking two of the rounds before (stored by then).
    for (let round = 0; round < 150; round += 30) {
      const writes = Array.from({ length: 30 }, (_, j) => {
        const id = `d${round + j}`;
        const links = round > 0 ? [`d${docs.int(0, round - 1)}`, `d${docs.int(0, round - 1)}`] : [];
        const text = docs.make(id, docs.int(10_000, 100_000), links);
        model.set(id, { text, links });
        return () => put(id, text);
      });
      const statuses = await inParallel(8, writes);
      expect(statuses.map((r) => r.status)).toEqual(Array(30).fill(201));
    }
    // Cycles: rewrite the first 20 to link documents written after them.
    await inParallel(4, Array.from({ length: 20 }, (_, i) => () => {
      const id = `d${i}`;
      const links = [`d${149 - i}`, `d${100 + i}`];
      const text = docs.make(id, 10_000 + i * 1000, links);
      model.set(id, { text, links });
      return put(id, text).then((r) => expect(r.status).toBe(200));
    }));
    const reads = await inParallel(8, [...model.keys()].map((id) => () => get(id)));
    [...model.values()].forEach(({ text }, i) => {
      expect(reads[i].status).toBe(200);
      expect(reads[i].text).toBe(text);
    });
    expect(heap.gc.getStats().reduce((n, g) => n + g.collections, 0)).toBeGreaterThan(0);
  });

  it('walks the links in the heap, cycles included', async () => {
    const expected: string[] = ['d0'];
    for (let next = 0; next < expected.length; next++) {
      for (const l of model.get(expected[next])!.links) if (!expected.includes(l)) expected.push(l);
    }
    const r = await call('reachable', 'GET', '/doc/d0/reachable');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual(expected);
    expect(expected.length).toBeGreaterThan(3);
  });

  it('answers bad requests with 4xx and a message, and a document too large for maxMemory with 507, then goes on serving', async () => {
    const malformed = await put('bad', '{"a": [1, 2,, 3]}');
    expect(malformed).toEqual({ status: 400, text: JSON.stringify({ error: 'malformed JSON: parseJSON: unexpected character at byte 12 of 17' }) });
    expect(await get('nothing')).toEqual({ status: 404, text: '{"error":"no document \\"nothing\\""}' });
    expect((await call('delete', 'DELETE', '/doc/nothing')).status).toBe(404);
    expect((await call('reachable', 'GET', '/doc/nothing/reachable')).status).toBe(404);
    expect(await call('other', 'GET', '/doc/%E0%A4%A')).toEqual({ status: 400, text: '{"error":"the id \\"%E0%A4%A\\" is not a valid URI component"}' });
    expect((await call('other', 'GET', '/nowhere')).status).toBe(404);
    expect(await put('dangling', '{"links":["d1","nowhere"]}')).toEqual({ status: 400, text: '{"error":"\\"links\\" names \\"nowhere\\", which is not stored"}' });
    expect((await put('notids', '{"links":[1]}')).text).toBe('{"error":"\\"links\\" must be an array of document ids"}');

    // 2.2 million small ints: about 10 MB of text, past 48 MiB as a graph.
    const huge = Buffer.from(`[${Array.from({ length: 2_200_000 }, (_, i) => 1000 + (i % 9000)).join(',')}]`);
    expect(huge.length).toBeLessThan(BODY_LIMIT);
    const before = allocated();
    const oom = await put('huge', huge);
    expect(oom.status).toBe(507);
    expect(JSON.parse(oom.text).error).toMatch(/^parseJSON: out of memory/);
    expect(allocated()).toBe(before);
    heap.check();

    const tooLarge = await put('larger', Buffer.alloc(BODY_LIMIT + 1, 0x20));
    expect(tooLarge).toEqual({ status: 413, text: JSON.stringify({ error: `the body is larger than the limit of ${BODY_LIMIT} bytes` }) });
    // Sent chunked, without a length: counted as it comes.
    const chunked = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(`${service.url}/doc/chunked`, { method: 'PUT' }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode!, text }));
      });
      req.on('error', reject);
      req.write(Buffer.alloc(BODY_LIMIT / 2, 0x20));
      req.end(Buffer.alloc(BODY_LIMIT / 2 + 1, 0x20));
    });
    made.set('put 413', made.get('put 413')! + 1);
    expect(chunked).toEqual(tooLarge);
    expect((await get('d5')).text).toBe(model.get('d5')!.text);
  });

  it('deletes an id once when 8 clients delete it at once: one 204, seven 404', async () => {
    const text = new Documents(5).make('victim', 20_000);
    expect((await put('victim', text)).status).toBe(201);
    const results = await Promise.all(Array.from({ length: 8 }, () => call('delete', 'DELETE', '/doc/victim')));
    expect(results.map((r) => r.status).sort()).toEqual([204, 404, 404, 404, 404, 404, 404, 404]);
    expect((await get('victim')).status).toBe(404);
  });

  it('survives a worker that dies holding the GIL: the GIL is taken back, its slot freed, a new worker attached; what only its JS locals held leaks, exactly', async () => {
    const body = '[[1,2],[3],{"k":"leaked"}]';
    // What the worker's parse allocates, measured here on the same heap.
    const start = allocated();
    const graph = heap.parseJSON(body);
    const graphBytes = allocated() - start;
    heap.decref(graph);
    expect(allocated()).toBe(start);

    const tracked = heap.gc.getObjects().length;
    const recoveries = heap.gil.stats().recoveries;
    const crashed = await call('failed', 'POST', '/debug/crash', body);
    expect(crashed).toEqual({ status: 500, text: '{"error":"worker exited with code: 70"}' });
    // The exit reaches the main thread's watch, and piscina starts a replacement.
    for (const deadline = Date.now() + 20_000; heap.attachments() !== THREADS + 1 || service.pool.threads.length !== THREADS;) {
      if (Date.now() > deadline) throw new Error(`${heap.attachments()} attachments, ${service.pool.threads.length} threads`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(heap.gil.stats().recoveries).toBe(recoveries + 1);
    heap.check();
    expect(allocated() - start).toBe(graphBytes);
    // Its four containers stay tracked, and no collection can find them: their refcount of 1
    // is the dead worker's, which nothing in the heap accounts for.
    heap.gc.collect();
    expect(heap.gc.getObjects().length).toBe(tracked + 4);
    expect(allocated() - start).toBe(graphBytes);
    // Every worker serves again.
    const reads = await Promise.all(Array.from({ length: 12 }, (_, i) => get(`d${i + 30}`)));
    expect(reads.map((r) => r.text)).toEqual(Array.from({ length: 12 }, (_, i) => model.get(`d${i + 30}`)!.text));
  });

  it('serves /metrics with the heap\'s values at the scrape, the requests made and the workers\' collection pauses', async () => {
    const response = await fetch(`${service.url}/metrics`);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const s = parse(await response.text());
    // Nothing ran since: the heap reads now what it read at the scrape.
    const stats = heap.stats();
    const gil = heap.gil.stats();
    expect(s.get('pymalloc_committed_bytes')).toBe(stats.memory.committedBytes);
    expect(s.get('pymalloc_blocks_bytes{state="allocated"}')).toBe(stats.bytes.inAllocatedBlocks);
    expect(s.get('pymalloc_raw_bytes')).toBe(stats.raw.bytes);
    expect(s.get('pymalloc_gil_acquisitions_total')).toBe(gil.acquisitions - 1);
    expect(s.get('pymalloc_gil_contended_total')).toBe(gil.contended);
    expect(s.get('pymalloc_gil_recoveries_total')).toBe(1);
    expect(s.get('pymalloc_gil_wait_seconds_count')).toBe(gil.contended);
    const collections = heap.gc.getStats();
    collections.forEach((g, i) => expect(s.get(`pymalloc_gc_collections_total{generation="${i}"}`)).toBe(g.collections));
    // The workers' pauses: every collection but those this thread ran.
    expect(mainCollections[2]).toBeGreaterThan(0);
    const pauses = service.pauses.read();
    collections.forEach((g, i) => {
      expect(s.get(`service_gc_pause_seconds_count{generation="${i}"}`)).toBe(g.collections - mainCollections[i]);
      expect(s.get(`service_gc_pause_seconds_sum{generation="${i}"}`)).toBe(pauses[i].sum);
    });
    expect(s.get('service_gc_pause_max_seconds')).toBe(service.pauses.longestSeconds);
    for (const [key, count] of made) {
      const [route, status] = key.split(' ');
      expect(s.get(`service_requests_total{route="${route}",status="${status}"}`), key).toBe(count);
    }
  });

  it('leaves the heap valid, every record held exactly by the store and the links, every document by its record', async () => {
    // Records deleted or replaced in cycles are the collector's; after it, what is left is live.
    heap.gc.collect();
    heap.check();
    const store = service.store!;
    const records = new Map(heap.dictItems(store).map(([k, v]) => [heap.strValue(k), v]));
    expect([...records.keys()].sort()).toEqual([...model.keys()].sort());
    const linked = new Map<number, number>();
    for (const [id, record] of records) {
      const links = heap.getRef(record, LINKS)!;
      expect(heap.length(links)).toBe(model.get(id)!.links.length);
      for (let i = 0; i < heap.length(links); i++) {
        const target = heap.getRef(links, i)!;
        expect(target).toBe(records.get(model.get(id)!.links[i]));
        linked.set(target, (linked.get(target) ?? 0) + 1);
      }
      expect(heap.refcount(heap.getRef(record, DOCUMENT)!)).toBe(1);
      expect(heap.refcount(links)).toBe(1);
    }
    for (const record of records.values()) expect(heap.refcount(record)).toBe(1 + (linked.get(record) ?? 0));

    // Deleting every document leaves no record: the cycles among them are collected.
    const deleted = await inParallel(8, [...records.keys()].map((id) => () => call('delete', 'DELETE', `/doc/${id}`)));
    expect(deleted.every((r) => r.status === 204)).toBe(true);
    heap.gc.collect();
    expect(heap.gc.getObjects().filter((o) => heap.typeOf(o).name === 'Doc')).toEqual([]);
    heap.check();
  });
});
