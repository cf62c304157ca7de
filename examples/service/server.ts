// The example service: node:http in the main thread, every request's work in a piscina pool.
// In 'heap' mode the workers all attach to one shared heap that holds the documents (store.ts);
// in 'js' mode, the baseline, the main thread keeps them as JS objects in a Map and each
// request's document is copied to a worker and back by postMessage, as a pool's task arguments
// and results are. The main thread touches the heap only to create it and to scrape /metrics.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Piscina } from 'piscina';
import { Counter, Gauge, Registry } from 'prom-client';
import { Heap, type SharedHeapHandle } from '../../src/index.js';
import { CountedHistogram, registerHeapMetrics } from '../../src/tools/metrics/index.js';
import { PauseCounts } from './pauses.js';
import { error, recordType, type Reply } from './store.js';

export interface ServiceOptions {
  /**
   * The port to listen on; 0 picks a free one.
   * @default 8080
   */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /**
   * Where the documents live: 'heap' (one shared heap, every worker attached) or 'js' (the
   * baseline: a Map in the main thread, documents posted to the workers and back).
   * @default 'heap'
   */
  mode?: 'heap' | 'js';
  /**
   * Workers in the pool (piscina's minThreads and maxThreads both).
   * @default 4
   */
  threads?: number;
  /**
   * The shared heap's maxMemory: a document whose graph does not fit is a 507.
   * @default 512 MiB
   */
  maxMemory?: number;
  /**
   * The largest request body taken, in bytes; a larger one is a 413.
   * @default 16 MiB
   */
  bodyLimit?: number;
  /**
   * Adds `POST /debug/crash`: a worker parses the body into the heap and exits holding the GIL,
   * to show what the service survives. Never on in production.
   * @default false
   */
  crashRoute?: boolean;
}

const DEFAULTS: Required<ServiceOptions> = {
  port: 8080, host: '127.0.0.1', mode: 'heap', threads: 4, maxMemory: 512 * 2 ** 20, bodyLimit: 16 * 2 ** 20, crashRoute: false,
};
const OPTION_KEYS: ReadonlySet<string> = new Set(Object.keys(DEFAULTS));

/** What every worker is handed (piscina's workerData). */
export interface ServiceWorkerData {
  mode: 'heap' | 'js';
  handle?: SharedHeapHandle;
  /** The store dict's address in the heap. */
  store?: number;
  /** The workers' collection pauses (pauses.ts). */
  pauses: SharedArrayBuffer;
}

/** A request's work, as posted to a worker. */
export type Task =
  | { op: 'put' | 'crash'; id: string; body: Uint8Array }
  | { op: 'get' | 'delete' | 'reachable'; id: string }
  | { op: 'parse'; body: Uint8Array }
  | { op: 'stringify'; doc: unknown };

/** The baseline's record: the same shape as the heap's (store.ts), in JS objects. */
interface JsRecord {
  id: string;
  doc: unknown;
  links: JsRecord[];
}

export interface Service {
  readonly url: string;
  readonly port: number;
  readonly options: Required<ServiceOptions>;
  /** The shared heap and the store dict's address ('heap' mode). */
  readonly heap?: Heap;
  readonly store?: number;
  readonly pool: Piscina;
  readonly registry: Registry;
  readonly pauses: PauseCounts;
  close(): Promise<void>;
}

function validated(options: ServiceOptions): Required<ServiceOptions> {
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new TypeError(`unknown option '${key}' (valid: ${[...OPTION_KEYS].join(', ')})`);
  }
  const o = { ...DEFAULTS, ...options };
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new RangeError('options.port must be an integer from 0 to 65535');
  if (o.mode !== 'heap' && o.mode !== 'js') throw new TypeError("options.mode must be 'heap' or 'js'");
  if (!Number.isInteger(o.threads) || o.threads < 1) throw new RangeError('options.threads must be a positive integer');
  if (!Number.isInteger(o.bodyLimit) || o.bodyLimit < 1) throw new RangeError('options.bodyLimit must be a positive integer');
  return o;
}

/** The body, or undefined once a 413 has been sent for it. */
function readBody(req: IncomingMessage, res: ServerResponse, limit: number): Promise<Uint8Array | undefined> {
  const tooLarge = () => send(res, error(413, `the body is larger than the limit of ${limit} bytes`), { connection: 'close' });
  if (Number(req.headers['content-length'] ?? 0) > limit) {
    tooLarge();
    req.resume();
    return Promise.resolve(undefined);
  }
  return new Promise((resolve, reject) => {
    // A body sent without a length (chunked) is counted as it comes, and dropped past the limit.
    const chunks: Buffer[] = [];
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      const under = length <= limit;
      length += chunk.length;
      if (length <= limit) chunks.push(chunk);
      else if (under) {
        chunks.length = 0;
        tooLarge();
        resolve(undefined);
      }
    });
    req.on('end', () => resolve(length <= limit ? Buffer.concat(chunks, length) : undefined));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, reply: Reply, headers: Record<string, string> = {}): void {
  res.writeHead(reply.status, reply.body === '' ? headers : { 'content-type': 'application/json', ...headers });
  res.end(reply.body);
}

const DOC_PATH = /^\/doc\/([^/]+)(\/reachable)?$/;

export async function startService(options: ServiceOptions = {}): Promise<Service> {
  const o = validated(options);
  const pauses = new PauseCounts();
  const registry = new Registry();
  const requests = new Counter({ name: 'service_requests_total', help: 'Requests answered, by route and status.', labelNames: ['route', 'status'], registers: [registry] });
  new CountedHistogram({
    name: 'service_gc_pause_seconds', help: 'Collection pauses in the pool\'s workers (gc.callbacks in each, counted in shared memory).',
    registers: [registry], labelNames: ['generation'], read: () => pauses.read(),
  });
  new Gauge({
    name: 'service_gc_pause_max_seconds', help: 'The longest collection pause in the pool\'s workers.',
    registers: [registry], collect() { this.set(pauses.longestSeconds); },
  });

  let heap: Heap | undefined;
  let store: number | undefined;
  const records = new Map<string, JsRecord>();
  if (o.mode === 'heap') {
    heap = await Heap.create({ shared: true, maxMemory: o.maxMemory });
    recordType(heap);
    store = heap.newDict();
    registerHeapMetrics(heap, { register: registry });
  }
  const workerData: ServiceWorkerData = { mode: o.mode, handle: heap?.share(), store, pauses: pauses.buffer };
  const pool = new Piscina({
    filename: new URL('./worker.bootstrap.mjs', import.meta.url).href,
    minThreads: o.threads, maxThreads: o.threads, idleTimeout: Infinity, workerData,
  });
  if (heap) {
    // piscina names a new worker by its threadId; its Worker is among pool.threads by then.
    // Watching it frees its attachment slot when it exits and takes back a GIL it died holding.
    pool.on('workerCreate', (info: { id: number }) => {
      const worker = pool.threads.find((t) => t.threadId === info.id);
      if (worker) heap.watch(worker);
    });
  }

  const run = (task: Task): Promise<Reply> => pool.run(task) as Promise<Reply>;

  /** The baseline's handlers: the Map here, the parsing and printing in a worker. */
  const js = {
    async put(id: string, body: Uint8Array): Promise<Reply> {
      const parsed = (await pool.run({ op: 'parse', body } satisfies Task)) as Reply | { status: 200; doc: unknown };
      if (!('doc' in parsed)) return parsed;
      const { doc } = parsed;
      const named = typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as { links?: unknown }).links : undefined;
      if (named !== undefined && (!Array.isArray(named) || named.some((l) => typeof l !== 'string'))) return error(400, '"links" must be an array of document ids');
      const unknown = (named ?? []).find((l: string) => !records.has(l));
      if (unknown !== undefined) return error(400, `"links" names ${JSON.stringify(unknown)}, which is not stored`);
      const links = (named ?? []).map((l: string) => records.get(l)!);
      const stored = records.get(id);
      if (stored) Object.assign(stored, { doc, links });
      else records.set(id, { id, doc, links });
      return { status: stored ? 200 : 201, body: '' };
    },
    async get(id: string): Promise<Reply> {
      const record = records.get(id);
      return record ? run({ op: 'stringify', doc: record.doc }) : error(404, `no document ${JSON.stringify(id)}`);
    },
    delete(id: string): Reply {
      return records.delete(id) ? { status: 204, body: '' } : error(404, `no document ${JSON.stringify(id)}`);
    },
    reachable(id: string): Reply {
      const start = records.get(id);
      if (!start) return error(404, `no document ${JSON.stringify(id)}`);
      const order = [start];
      const seen = new Set(order);
      for (let next = 0; next < order.length; next++) {
        for (const target of order[next].links) if (!seen.has(target)) seen.add(target), order.push(target);
      }
      return { status: 200, body: JSON.stringify(order.map((r) => r.id)) };
    },
  };

  async function route(req: IncomingMessage, res: ServerResponse): Promise<[string, Reply | undefined]> {
    const path = new URL(req.url ?? '/', 'http://service').pathname;
    if (path === '/metrics' && req.method === 'GET') {
      // Every collect() runs before metrics() first awaits: one GIL acquisition per scrape.
      const text = await (heap ? heap.gil.run(() => registry.metrics()) : registry.metrics());
      return ['metrics', { status: 200, body: text }];
    }
    if (o.crashRoute && path === '/debug/crash' && req.method === 'POST') {
      const body = await readBody(req, res, o.bodyLimit);
      return ['crash', body && (await run({ op: 'crash', id: '', body }))];
    }
    const match = DOC_PATH.exec(path);
    if (!match) return ['other', error(404, `no route ${req.method} ${path}`)];
    let id: string;
    try {
      id = decodeURIComponent(match[1]);
    } catch {
      return ['other', error(400, `the id ${JSON.stringify(match[1])} is not a valid URI component`)];
    }
    if (match[2]) return ['reachable', req.method === 'GET' ? await (heap ? run({ op: 'reachable', id }) : js.reachable(id)) : error(405, 'use GET')];
    switch (req.method) {
      case 'PUT': {
        const body = await readBody(req, res, o.bodyLimit);
        return ['put', body && (await (heap ? run({ op: 'put', id, body }) : js.put(id, body)))];
      }
      case 'GET': return ['get', await (heap ? run({ op: 'get', id }) : js.get(id))];
      case 'DELETE': return ['delete', heap ? await run({ op: 'delete', id }) : js.delete(id)];
      default: return ['doc', error(405, 'use PUT, GET or DELETE')];
    }
  }

  const server = createServer((req, res) => {
    route(req, res).then(
      ([name, reply]) => {
        if (reply) send(res, reply, name === 'metrics' ? { 'content-type': registry.contentType } : {});
        requests.inc({ route: name, status: String(reply?.status ?? 413) });
      },
      (e: Error) => {
        // A worker that died mid-request (piscina rejects its task and starts another).
        send(res, error(500, e.message));
        requests.inc({ route: 'failed', status: '500' });
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(o.port, o.host, resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://${o.host}:${port}`, port, options: o, heap, store, pool, registry, pauses,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await pool.destroy();
      heap?.dispose();
    },
  };
}
