// One worker of the service's piscina pool. In 'heap' mode it attaches to the shared heap
// (piscina hands every worker the same workerData: the heap's handle, the store's address) and
// runs the store's handlers on it; in 'js' mode (the baseline) it only parses and prints the
// documents the main thread keeps, each crossing by postMessage's structured clone.

import { workerData } from 'node:worker_threads';
import { Heap, OutOfMemoryError } from '../../src/index.js';
import { PauseCounts } from './pauses.js';
import { Store, error, type Reply } from './store.js';
import type { ServiceWorkerData, Task } from './server.js';

const data = workerData as ServiceWorkerData;

/** The answer to a handler's failure: what the client did wrong, or what the heap could not do. */
function failure(e: unknown): Reply {
  if (e instanceof SyntaxError) return error(400, `malformed JSON: ${e.message}`);
  if (e instanceof OutOfMemoryError) return error(507, e.message);
  throw e;
}

function heapHandlers(heap: Heap, store: Store): (task: Task) => Reply {
  const pauses = new PauseCounts(data.pauses);
  let started = 0;
  heap.gc.callbacks.push((phase, info) => {
    if (phase === 'start') started = performance.now();
    else pauses.record(info.generation, (performance.now() - started) / 1000);
  });
  return (task) => {
    try {
      switch (task.op) {
        case 'put': return store.put(task.id, task.body);
        case 'get': return store.get(task.id);
        case 'delete': return store.delete(task.id);
        case 'reachable': return store.reachable(task.id);
        case 'crash':
          // A worker dying mid-request, holding the GIL and a graph only its JS locals refer to.
          return heap.gil.run(() => {
            heap.parseJSON(task.body);
            return process.exit(70);
          });
        default: throw new TypeError(`the heap worker has no ${task.op}`);
      }
    } catch (e) {
      return failure(e);
    }
  };
}

/** The baseline's work: the text parsed into a JS object (posted back), or a posted object printed. */
function jsHandler(task: Task): Reply | { status: number; doc: unknown } {
  switch (task.op) {
    case 'parse':
      try {
        return { status: 200, doc: JSON.parse(new TextDecoder().decode(task.body)) };
      } catch (e) {
        return failure(e);
      }
    case 'stringify': return { status: 200, body: JSON.stringify(task.doc) };
    default: throw new TypeError(`the js worker has no ${task.op}`);
  }
}

async function handler() {
  if (data.mode === 'js') return jsHandler;
  const heap = await Heap.attach(data.handle!);
  return heapHandlers(heap, new Store(heap, data.store!));
}

export default await handler();
