// heap.parseJSON: JSON text straight to a graph in the core, checked against JSON.parse on
// the same text (byte for byte through JSON.stringify), malformed text refused at the byte
// that is wrong, and nothing left behind by a parse that fails.
import { describe, it, expect, beforeEach } from 'vitest';
import fc from 'fast-check';
import { Heap } from '../../src/index.js';

for (const build of ['release', 'debug'] as const) {
  describe(`parseJSON (${build} build)`, () => {
    let heap: Heap;

    beforeEach(async () => {
      heap = await Heap.create({ build });
      heap.gc.disable();
    });

    /**
     * What the graph of `text` reads back as, through toJSON and JSON.stringify (an int past
     * 2^53, a bigint, printed as the double JSON.parse makes of its digits).
     */
    function roundTrip(text: string | Uint8Array): string {
      const root = heap.parseJSON(text);
      const out = JSON.stringify(heap.toJSON(root), (_key, v) => (typeof v === 'bigint' ? Number(v) : v));
      heap.decref(root);
      return out;
    }

    function footprint(): number {
      const stats = heap.stats();
      return stats.bytes.inAllocatedBlocks + stats.raw.bytes - stats.quarantine.bytes;
    }

    it('reads random JSON texts as JSON.parse does, compact and indented (fast-check)', () => {
      fc.assert(
        fc.property(fc.jsonValue({ stringUnit: 'grapheme', maxDepth: 6 }), fc.boolean(), (value, indent) => {
          const text = JSON.stringify(value, null, indent ? 2 : undefined);
          return roundTrip(text) === JSON.stringify(JSON.parse(text));
        }),
        { numRuns: 300 },
      );
      heap.check();
    });

    it('writes the text back byte for byte with stringifyJSON, from parseJSON and from fromJSON (fast-check)', () => {
      fc.assert(
        fc.property(fc.jsonValue({ stringUnit: 'grapheme', maxDepth: 6 }), (value) => {
          const text = JSON.stringify(value);
          const parsed = heap.parseJSON(text);
          const built = heap.fromJSON(value);
          const same = heap.stringifyJSON(parsed) === text && heap.stringifyJSON(built) === text;
          heap.decref(parsed);
          heap.decref(built);
          return same;
        }),
        { numRuns: 300 },
      );
      heap.check();
    });

    it('writes what json.dumps would where JSON.stringify cannot: insertion order, 64-bit ints, escapes', () => {
      const d = heap.newDict();
      heap.dictSet(d, 'b', heap.newInt(2n ** 62n));
      // A float prints as JSON.stringify prints it: 2 ** 60 with its shortest digits, -0 as 0, NaN as null.
      heap.dictSet(d, 5n, heap.newTuple([heap.newFloat(0.1), heap.newFloat(-0), heap.newFloat(NaN), heap.newFloat(2 ** 60)]));
      heap.dictSet(d, 'a', heap.newStr('q"\\\u0001\u001f\u007f\n é'));
      expect(heap.stringifyJSON(d)).toBe('{"b":4611686018427387904,"5":[0.1,0,null,1152921504606847000],"a":"q\\"\\\\\\u0001\\u001f\u007f\\n é"}');
      const cycle = heap.newList();
      heap.listAppend(cycle, cycle);
      expect(() => heap.stringifyJSON(cycle)).toThrow(/circular/);
      const Thing = heap.defineType({ name: 'Thing' });
      const w = heap.weakref(heap.newObject(Thing));
      expect(() => heap.stringifyJSON(heap.newList([w]))).toThrow(/weakref object at 0x[0-9a-f]+> has no JSON value/);
      heap.check();
    });

    it('prints every float as JSON.stringify does: short decimals in the core, the rest by the host (fast-check)', () => {
      const decimals = fc.tuple(fc.integer({ min: -(10 ** 9), max: 10 ** 9 }), fc.integer({ min: 0, max: 14 })).map(([m, k]) => m / 10 ** k);
      const floats = fc.oneof(fc.double(), decimals, fc.double({ min: 1e-7, max: 1e16 }));
      fc.assert(
        fc.property(fc.array(floats, { maxLength: 50 }), (xs) => {
          const list = heap.newList();
          for (const x of xs) {
            const f = heap.newFloat(x);
            heap.listAppend(list, f);
            heap.decref(f);
          }
          const text = heap.stringifyJSON(list);
          heap.decref(list);
          return text === JSON.stringify(xs);
        }),
        { numRuns: 400 },
      );
    });

    it('rounds every float as JSON.parse does, on the fast path and off it (fast-check)', () => {
      fc.assert(
        fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer({ min: -30, max: 30 }), (x, shift) => {
          const shortest = JSON.stringify(x);
          const texts = [shortest, x.toPrecision(17), x.toExponential(20), shortest.includes('e') ? shortest : `${shortest}e${shift}`];
          return texts.every((text) => roundTrip(`[${text}]`) === JSON.stringify([JSON.parse(text)]));
        }),
        { numRuns: 500 },
      );
    });

    it('keeps integers exact to 64 bits, and makes longer ones floats as JSON.parse does', () => {
      const root = heap.parseJSON('[9007199254740993, -9223372036854775808, 9223372036854775807, 9223372036854775808, 123456789012345678901234]');
      expect(heap.toJSON(root)).toEqual([9007199254740993n, -(2n ** 63n), 2n ** 63n - 1n, 2 ** 63, 1.2345678901234568e23]);
      expect(heap.typeOf(heap.getRef(root, 3)!).kind).toBe('float');
    });

    it('unescapes strings into UTF-8, a surrogate pair into one character and a lone surrogate into U+FFFD', () => {
      const root = heap.parseJSON(String.raw`["a\"b\\c\/d\b\f\n\r\t", "\u00e9\u4e2d\ud83d\ude00", "\ud800", "\udc00x", "raw é 中 😀"]`);
      expect(heap.toJSON(root)).toEqual(['a"b\\c/d\b\f\n\r\t', 'é中😀', '\ufffd', '\ufffdx', 'raw é 中 😀']);
      expect(heap.strValue(heap.getRef(root, 1)!)).toBe('é中😀');
    });

    it('reads UTF-8 bytes as they arrive in a Buffer, and keeps the text\'s key order and a duplicate key\'s last value', () => {
      const body = Buffer.from('{"b": 1, "a": [true, false, null], "b": "last", "\u00e9": {}}');
      const root = heap.parseJSON(body);
      expect(heap.dictKeys(root).map((k) => heap.strValue(k))).toEqual(['b', 'a', 'é']);
      expect(heap.strValue(heap.dictGet(root, 'b')!)).toBe('last');
      heap.check();
    });

    it('makes one str per key spelled alike, as CPython\'s json scanner memoizes keys', () => {
      const text = JSON.stringify(Array.from({ length: 100 }, (_, i) => ({ id: i, name: `n${i}`, id2: 'id' })));
      const root = heap.parseJSON(text.replace('"id2"', '"\\u0069d2"'));
      const keysOf = (i: number) => heap.dictKeys(heap.getRef(root, i)!);
      const [id, name] = keysOf(0);
      for (let i = 1; i < 100; i++) expect(keysOf(i).slice(0, 2)).toEqual([id, name]);
      expect(heap.refcount(id)).toBe(100);
      // A key written with an escape is a str of its own; a value spelled like a key is not the key.
      expect(keysOf(0)[2]).not.toBe(keysOf(1)[2]);
      expect(heap.dictGet(heap.getRef(root, 0)!, 'id2')).not.toBe(id);
      heap.decref(root);
      heap.check();
    });

    it('refuses malformed text with a SyntaxError at the byte that is wrong, building nothing', () => {
      heap.decref(heap.parseJSON(`[null, true, false, ${Array.from({ length: 262 }, (_, i) => i - 5).join(',')}]`));
      const before = footprint();
      const cases: Array<[string | Uint8Array, RegExp]> = [
        ['', /unexpected end of the text at byte 0 of 0/],
        ['[1, 2,]', /unexpected character at byte 6/],
        ['{"a": 1,}', /unexpected character at byte 8/],
        ['{"a" 1}', /unexpected character at byte 5/],
        ['{1: 2}', /unexpected character at byte 1/],
        ['[1 2]', /unexpected character at byte 3/],
        ['tru', /unexpected character at byte 0/],
        ['01', /unexpected character at byte 1/],
        ['1.', /unexpected character at byte 0/],
        ['[1]]', /unexpected character at byte 3/],
        ['"abc', /unexpected end of the text at byte 4/],
        ['"a\\x"', /a bad escape at byte 2/],
        ['"\\u12g4"', /a bad escape at byte 1/],
        ['"a\tb"', /a control character in a string at byte 2/],
        [new Uint8Array([0x5b, 0x22, 0xc3, 0x28, 0x22, 0x5d]), /not UTF-8 at byte 2/],
        [new Uint8Array([0x22, 0xed, 0xa0, 0x80, 0x22]), /not UTF-8 at byte 1/], // an encoded surrogate
        ['[{"deep": [1, "x", {"y": [2.5, 3' , /unexpected end of the text at byte 32/],
      ];
      for (const [text, message] of cases) {
        expect(() => heap.parseJSON(text)).toThrow(SyntaxError);
        expect(() => heap.parseJSON(text)).toThrow(message);
      }
      expect(() => heap.parseJSON(5 as never)).toThrow(TypeError);
      expect(footprint()).toBe(before);
      heap.check();
    });

    it('builds the same graph as fromJSON: presized dicts, exact refcounts, nothing left once the root goes', () => {
      const doc = { items: Array.from({ length: 300 }, (_, i) => ({ id: i, name: `n${i}`, score: i / 8, tags: ['a'] })) };
      const a = heap.fromJSON(doc);
      const b = heap.parseJSON(JSON.stringify(doc));
      const first = (root: number) => heap.getRef(heap.dictGet(root, 'items')!, 7)!;
      expect(heap.dictLayout(first(b))).toEqual(heap.dictLayout(first(a)));
      expect(heap.refcount(first(b))).toBe(1);
      expect(heap.refcount(heap.dictGet(first(b), 'name')!)).toBe(1);
      heap.decref(a);
      const before = footprint();
      const c = heap.parseJSON(JSON.stringify(doc));
      heap.decref(c);
      expect(footprint()).toBe(before);
      heap.decref(b);
      heap.check();
    });
  });
}
