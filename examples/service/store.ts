// The document store, as the pool's workers run it: one dict in the shared heap maps each id
// to a record, and each handler does its heap work inside one gil.run, so that every request
// sees and leaves the store whole (two DELETEs of one id: one finds it, the other does not).
//
//   store (dict)  id str -> record
//   record (Doc)  slot 0  the id (str)
//                 slot 1  the document: the graph parseJSON built from the body
//                 slot 2  links: a list of the records the document's top-level "links" named
//
// A link is a reference to the other record, as a Python attribute would hold one: a record
// lives while the store or another record refers to it, so documents linking each other make
// cycles, and a cycle of deleted documents is the collector's to find (CPython's thresholds,
// in whichever worker's allocation crosses them). A PUT of a stored id replaces the record's
// document and links in place, so the records linking it see the new version.

import type { Heap, ObjectType } from '../../src/index.js';

export const ID = 0;
export const DOCUMENT = 1;
export const LINKS = 2;

/** What a handler answers: an HTTP status, and its body (JSON text). */
export interface Reply {
  status: number;
  body: string;
}

export const error = (status: number, message: string): Reply => ({ status, body: JSON.stringify({ error: message }) });

/** The record type; defining it again in another instance of the shared heap returns the same one. */
export function recordType(heap: Heap): ObjectType {
  return heap.defineType({ name: 'Doc', refSlots: 3 });
}

/** The ids a parsed document's top-level "links" names, or a message saying why they are not ids. */
function linkIds(h: Heap, doc: number): string[] | string {
  if (h.typeOf(doc).kind !== 'dict') return [];
  const links = h.dictGet(doc, 'links');
  if (links === null) return [];
  if (h.typeOf(links).kind !== 'list') return '"links" must be an array of document ids';
  const ids: string[] = [];
  for (let i = 0; i < h.length(links); i++) {
    const item = h.getRef(links, i)!;
    if (h.typeOf(item).kind !== 'str') return '"links" must be an array of document ids';
    ids.push(h.strValue(item));
  }
  return ids;
}

export class Store {
  readonly #heap: Heap;
  readonly #store: number;
  readonly #record: ObjectType;

  constructor(heap: Heap, store: number) {
    this.#heap = heap;
    this.#store = store;
    this.#record = recordType(heap);
  }

  /** Stores `body` (JSON text) under `id`: 201 when new, 200 when it replaced a document. */
  put(id: string, body: Uint8Array): Reply {
    return this.#heap.gil.run(() => {
      const h = this.#heap;
      const doc = h.parseJSON(body);
      let links: number | undefined;
      try {
        const ids = linkIds(h, doc);
        if (typeof ids === 'string') return error(400, ids);
        const targets = ids.map((target) => h.dictGet(this.#store, target));
        const unknown = ids.find((_, i) => targets[i] === null);
        if (unknown !== undefined) return error(400, `"links" names ${JSON.stringify(unknown)}, which is not stored`);
        links = h.newList(targets as number[]);
        const stored = h.dictGet(this.#store, id);
        if (stored !== null) {
          h.setRef(stored, DOCUMENT, doc);
          h.setRef(stored, LINKS, links);
          return { status: 200, body: '' };
        }
        const record = h.newObject(this.#record);
        try {
          const key = h.newStr(id);
          h.setRef(record, ID, key);
          h.decref(key);
          h.setRef(record, DOCUMENT, doc);
          h.setRef(record, LINKS, links);
          h.dictSet(this.#store, id, record);
        } finally {
          h.decref(record);
        }
        return { status: 201, body: '' };
      } finally {
        // The record and the list hold their own references now (or nothing was stored).
        h.decref(doc);
        if (links !== undefined) h.decref(links);
      }
    });
  }

  get(id: string): Reply {
    return this.#heap.gil.run(() => {
      const h = this.#heap;
      const record = h.dictGet(this.#store, id);
      if (record === null) return error(404, `no document ${JSON.stringify(id)}`);
      return { status: 200, body: h.stringifyJSON(h.getRef(record, DOCUMENT)!) };
    });
  }

  delete(id: string): Reply {
    return this.#heap.gil.run(() => (this.#heap.dictDelete(this.#store, id) ? { status: 204, body: '' } : error(404, `no document ${JSON.stringify(id)}`)));
  }

  /** The ids of every record reachable from `id` through links, breadth first, `id` first. */
  reachable(id: string): Reply {
    return this.#heap.gil.run(() => {
      const h = this.#heap;
      const start = h.dictGet(this.#store, id);
      if (start === null) return error(404, `no document ${JSON.stringify(id)}`);
      const seen = new Set([start]);
      const order = [start];
      for (let next = 0; next < order.length; next++) {
        const links = h.getRef(order[next], LINKS)!;
        for (let i = 0; i < h.length(links); i++) {
          const target = h.getRef(links, i)!;
          if (!seen.has(target)) {
            seen.add(target);
            order.push(target);
          }
        }
      }
      return { status: 200, body: JSON.stringify(order.map((r) => h.strValue(h.getRef(r, ID)!))) };
    });
  }
}
