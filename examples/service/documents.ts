// The documents the tests and the load test store: JSON text of a given size, made from a
// seeded generator so that a run can be repeated. Each is what JSON.stringify prints (so a
// store that keeps it whole returns the same bytes): records of strings, ints, floats with
// short fractions, bools and nulls, a nested object, and a top-level "links" naming others.

import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

const WORDS = ['arena', 'pool', 'block', 'size class', 'refcount', 'génération', 'cycle', '"quoted"', 'tab\there', 'ünïcødé ✓'];

export class Documents {
  readonly #rng;

  constructor(seed: number) {
    this.#rng = xoroshiro128plus(seed);
  }

  int(lo: number, hi: number): number {
    return uniformInt(this.#rng, lo, hi);
  }

  /** A document of about `bytes` bytes of JSON text (within one record's size above it), linking `links`. */
  make(id: string, bytes: number, links: string[] = []): string {
    const head = { id, title: `document ${id}`, version: this.int(1, 1_000_000), links };
    const items: unknown[] = [];
    const doc = { ...head, items };
    let size = JSON.stringify(doc).length;
    while (size < bytes) {
      const item = {
        name: WORDS[this.int(0, WORDS.length - 1)],
        n: this.int(-(2 ** 31), 2 ** 31),
        big: this.int(0, 1) ? this.int(0, 2 ** 30) * 2 ** 20 : -this.int(0, 1000),
        score: this.int(0, 100_000) / 8,
        ok: this.int(0, 1) === 1,
        none: null,
        nested: { tag: WORDS[this.int(0, WORDS.length - 1)], depth: [this.int(0, 9), this.int(0, 9)] },
      };
      items.push(item);
      size += JSON.stringify(item).length + 1;
    }
    return JSON.stringify(doc);
  }
}
