// The debug hooks (PYTHONMALLOC=debug): CPython's layout around every block, and its report,
// byte for byte, for each way a program breaks a block. After each report the heap is usable:
// the bad block is left as it was, and once it is repaired (or freed properly) check() passes.
//
//   [4: size, big-endian]['o'|'m'|'r'][fd fd fd] data... [fd fd fd fd]   (S = 4, wasm32)
import { describe, it, expect } from 'vitest';
import { Heap, MemoryCorruptionError, PRESETS, type PresetName } from '../../src/index.js';

const hex = (p: number) => `0x${p.toString(16)}`;
const cd = (n: number) => Array(n).fill('cd').join(' ');
const NO_TRACEBACK = ['', 'Enable tracemalloc to get the memory block allocation traceback', ''];

function thrown(call: () => unknown): MemoryCorruptionError {
  try {
    call();
  } catch (error) {
    expect(error).toBeInstanceOf(MemoryCorruptionError);
    return error as MemoryCorruptionError;
  }
  throw new Error('the call did not throw');
}

/** The report of a 16-byte 'o' block whose pads are as given. */
function report16(p: number, api: string, lead: string[], tail: string[], ending: string): string {
  return [
    `Debug memory block at address p=${hex(p)}: API '${api}'`,
    '    16 bytes originally requested',
    ...lead,
    ...tail,
    `    Data at p: ${cd(16)}`,
    ...NO_TRACEBACK,
    ending,
  ].join('\n');
}
const LEAD_OK = ['    The 3 pad bytes at p-3 are FORBIDDENBYTE, as expected.'];
const tailOk = (p: number) => [`    The 4 pad bytes at tail=${hex(p + 16)} are FORBIDDENBYTE, as expected.`];

for (const preset of Object.keys(PRESETS) as PresetName[]) {
  for (const build of ['release', 'debug'] as const) {
    describe(`debug hooks, ${preset}, ${build} build`, () => {
      const create = (serialNumbers = false) =>
        Heap.create({ preset, build, debugHooks: serialNumbers ? { serialNumbers } : true });
      const bytes = (heap: Heap, from: number, n: number) => [...new Uint8Array(heap.memory.buffer, from, n)];
      const poke = (heap: Heap, at: number, value: number) => { new Uint8Array(heap.memory.buffer)[at] = value; };

      it('lays out every block as CPython does: size, API id, pads, CLEAN data, pads', async () => {
        const heap = await create();
        const o = heap.malloc(5), m = heap.memMalloc(5), r = heap.rawMalloc(5), z = heap.calloc(1, 5);
        const layout = (id: number, data: number) => [0, 0, 0, 5, id, 0xfd, 0xfd, 0xfd, ...Array(5).fill(data), 0xfd, 0xfd, 0xfd, 0xfd];
        expect(bytes(heap, o - 8, 17)).toEqual(layout(0x6f, 0xcd));
        expect(bytes(heap, m - 8, 17)).toEqual(layout(0x6d, 0xcd));
        expect(bytes(heap, r - 8, 17)).toEqual(layout(0x72, 0xcd));
        expect(bytes(heap, z - 8, 17)).toEqual(layout(0x6f, 0x00));
        expect(heap.owns(o) && heap.owns(m)).toBe(true); // 'o' and 'm' are pymalloc's ...
        expect(heap.owns(r)).toBe(false); // ... 'r' the raw allocator's, whatever the size
        expect(heap.usableSize(o)).toBe(5); // exactly what was asked for
        heap.free(o);
        // Freed: DEAD from p-4 on; pymalloc's free-list link has the size word.
        expect(bytes(heap, o - 4, 20)).toEqual(Array(20).fill(0xdd)); // 17 bytes: class 24 or 32
        heap.memFree(m);
        heap.rawFree(r);
        heap.free(z);
        heap.check();
      });

      it('counts the 3S extra bytes as pymalloc sees them: 500 bytes is a small block, 501 is not', async () => {
        const heap = await create();
        heap.malloc(16); // 28 bytes: class 32
        heap.malloc(500); // 512: the last class
        const big = heap.malloc(501); // 513: the raw allocator's
        const classes = heap.stats().sizeClasses.filter((c) => c.blocksInUse > 0).map((c) => [c.size, c.blocksInUse]);
        expect(classes).toEqual([[32, 1], [512, 1]]);
        expect(heap.owns(big)).toBe(false);
        expect(heap.debugMallocStats()).toMatch(/\n {4}\d+ {5}32 {11}1 {15}1 /);
      });

      it('numbers the blocks with serial numbers on (4S extra) and names the call in the report', async () => {
        const heap = await create(true);
        const a = heap.malloc(16);
        const b = heap.malloc(16);
        expect(bytes(heap, b + 20, 4)).toEqual([0, 0, 0, 2]);
        heap.realloc(a, 16); // a realloc is a call too
        poke(heap, b + 16, 0x78);
        const error = thrown(() => heap.free(b));
        expect(error.message.split('\n')[8]).toBe('    The block was made by call #2 to debug malloc/realloc.');
        expect(heap.stats().sizeClasses.find((c) => c.blocksInUse > 0)!.size).toBe(32); // 16 + 16
      });

      it('one byte written before a block: "bad leading pad byte", the block kept, check() names it', async () => {
        const heap = await create();
        const p = heap.malloc(16);
        poke(heap, p - 1, 0xfb);
        const lead = [
          '    The 3 pad bytes at p-3 are not all FORBIDDENBYTE (0xfd):',
          '        at p-3: 0xfd',
          '        at p-2: 0xfd',
          '        at p-1: 0xfb *** OUCH',
        ];
        const error = thrown(() => heap.free(p));
        expect(error.message).toBe(report16(p, 'o', lead, tailOk(p), 'free: bad leading pad byte'));
        expect([error.operation, error.address, error.problem]).toEqual(['free', p, 'bad-leading-pad']);
        expect(heap.usableSize(p)).toBe(16); // not freed
        const found = thrown(() => heap.check());
        expect(found.message).toBe(report16(p, 'o', lead, tailOk(p), 'check: bad leading pad byte'));
        poke(heap, p - 1, 0xfd);
        heap.free(p);
        heap.check();
        expect(heap.malloc(16)).toBe(p);
      });

      it('one byte written after a block: "bad trailing pad byte"', async () => {
        const heap = await create();
        const p = heap.malloc(16);
        const other = heap.malloc(16);
        poke(heap, p + 16, 0x78);
        const tail = [
          `    The 4 pad bytes at tail=${hex(p + 16)} are not all FORBIDDENBYTE (0xfd):`,
          '        at tail+0: 0x78 *** OUCH',
          '        at tail+1: 0xfd',
          '        at tail+2: 0xfd',
          '        at tail+3: 0xfd',
        ];
        expect(thrown(() => heap.free(p)).message).toBe(report16(p, 'o', LEAD_OK, tail, 'free: bad trailing pad byte'));
        expect(thrown(() => heap.realloc(p, 40)).message).toBe(report16(p, 'o', LEAD_OK, tail, 'realloc: bad trailing pad byte'));
        heap.free(other); // everything else works
        poke(heap, p + 16, 0xfd);
        heap.free(p);
        heap.check();
      });

      it('a write after free: found by check(), and when the block is handed out again', async () => {
        const heap = await create();
        const p = heap.malloc(16);
        heap.free(p);
        poke(heap, p + 3, 0x41);
        const freed = (operation: string, problem: string) => [
          `Debug memory block at address p=${hex(p)}: freed`,
          '    The 28 bytes at p-4 are not all DEADBYTE (0xdd):',
          '        at p+3: 0x41 *** OUCH',
          '    Data at p: dd dd dd 41 dd dd dd dd ... dd dd dd dd dd dd dd dd',
          ...NO_TRACEBACK,
          `${operation}: ${problem}`,
        ].join('\n');
        const byCheck = thrown(() => heap.check());
        expect(byCheck.message).toBe(freed('check', 'use after free: a freed block was written to'));
        const byMalloc = thrown(() => heap.malloc(16));
        expect(byMalloc.message).toBe(freed('malloc', 'use after free: a freed block was written to'));
        expect(byMalloc.problem).toBe('written-after-free');
        heap.check(); // the block was made DEAD again and given back
        expect(heap.malloc(16)).toBe(p);
        heap.check();
      });

      it('a double free, and realloc of a freed block', async () => {
        const heap = await create();
        const p = heap.malloc(16);
        heap.free(p);
        const freed = (ending: string) => [
          `Debug memory block at address p=${hex(p)}: freed`,
          '    The 28 bytes at p-4 are DEADBYTE, as expected.',
          '    Data at p: dd dd dd dd dd dd dd dd ... dd dd dd dd dd dd dd dd',
          ...NO_TRACEBACK,
          ending,
        ].join('\n');
        expect(thrown(() => heap.free(p)).message).toBe(freed('free: double free: the block is free already'));
        expect(thrown(() => heap.realloc(p, 8)).message).toBe(freed('realloc: realloc of a freed block'));
        heap.check();
        expect(heap.malloc(16)).toBe(p);
      });

      it('a free through the wrong API: "bad ID", and the block still frees through its own', async () => {
        const heap = await create();
        const m = heap.memMalloc(16);
        expect(thrown(() => heap.free(m)).message).toBe(
          report16(m, 'm', LEAD_OK, tailOk(m), "free: bad ID: Allocated using API 'm', verified using API 'o'"),
        );
        const r = heap.rawMalloc(16);
        expect(thrown(() => heap.memFree(r)).message).toBe(
          report16(r, 'r', LEAD_OK, tailOk(r), "memFree: bad ID: Allocated using API 'r', verified using API 'm'"),
        );
        const o = heap.malloc(16);
        expect(thrown(() => heap.rawRealloc(o, 32)).problem).toBe('bad-id');
        heap.check();
        heap.memFree(m);
        heap.rawFree(r);
        heap.free(o);
        heap.check();
      });

      it('realloc moves the block, keeps the data, makes the old one DEAD', async () => {
        const heap = await create();
        const p = heap.malloc(4);
        heap.write(p, [1, 2, 3, 4]);
        const q = heap.memRealloc(0, 1); // realloc(0) is malloc
        const p2 = heap.realloc(p, 6);
        expect(p2).not.toBe(p);
        expect([...heap.read(p2)]).toEqual([1, 2, 3, 4, 0xcd, 0xcd]);
        expect(thrown(() => heap.free(p)).problem).toBe('freed');
        heap.memFree(q);
        heap.free(p2);
        heap.check();
      });

      it('objects allocate through the hooks with API o, and the collector works over them', async () => {
        const heap = await create();
        const n = heap.newInt(12345678901234n);
        const list = heap.newList([n]);
        heap.decref(n);
        for (let i = 0; i < 200; i++) {
          const s = heap.newStr(`item ${i}`);
          heap.listAppend(list, s);
          heap.decref(s);
        }
        expect(bytes(heap, n - 4, 1)).toEqual([0x6f]); // an int has no GC header: its block is 'o'
        heap.setRef(list, 0, list); // a cycle (the int dies)
        heap.check();
        heap.decref(list);
        expect(heap.gc.collect()).toBe(1);
        heap.check();
        const stats = heap.stats();
        // All freed; the debug build parks freed objects in quarantine, still held.
        const inUse = stats.sizeClasses.reduce((sum, c) => sum + c.blocksInUse, 0);
        expect(inUse).toBe(stats.quarantine.objects);
        // The list, the int and the 200 strs; the list's item array is no object, freed at once.
        expect(inUse).toBe(build === 'debug' ? 202 : 0);
      });
    });
  }
}

describe('debug hooks: options', () => {
  it('refuses a debugHooks option that is not a boolean or { serialNumbers }', async () => {
    await expect(Heap.create({ debugHooks: 1 as never })).rejects.toThrow(
      new TypeError('options.debugHooks must be a boolean or { serialNumbers?: boolean }'),
    );
    await expect(Heap.create({ debugHooks: { serial: true } as never })).rejects.toThrow(
      new TypeError("unknown option 'debugHooks.serial' (valid: serialNumbers)"),
    );
  });

  it('leaves blocks bare when off: a freed block through another API is not an error', async () => {
    const heap = await Heap.create();
    const m = heap.memMalloc(16);
    expect(heap.usableSize(m)).toBe(16);
    heap.free(m);
    heap.check();
  });
});
