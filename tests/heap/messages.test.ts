// What a new user broke (issue 8, item 8): each test is named after the mistake, calls the
// API the way the user did, and checks the exact error and that the heap is unchanged.
import { describe, it, expect, beforeEach } from 'vitest';
import {
  Heap, HeapDisposedError, InvalidAddressError, InvalidObjectError, OutOfMemoryError,
} from '../../src/index.js';

function thrown(call: () => unknown): Error {
  try {
    call();
  } catch (error) {
    return error as Error;
  }
  throw new Error('the call did not throw');
}

let heap: Heap;
beforeEach(async () => {
  heap = await Heap.create({ preset: 'cpython-3.12' });
});

describe('defineType', () => {
  it("refuses a misspelt key such as 'refslots' instead of making a type of 0 slots", () => {
    const Leaf = heap.defineType({ name: 'Leaf' });
    const before = heap.stats();
    const error = thrown(() => heap.defineType({ name: 'Node', refslots: 3 } as never));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe("unknown spec key 'refslots' (valid: name, kind, refSlots, dataBytes, finalizer, weakrefable)");
    expect(heap.stats()).toEqual(before);
    // Nothing was defined: the correct spelling takes the next type record.
    const Node = heap.defineType({ name: 'Node', refSlots: 3 });
    expect(Node.refSlots).toBe(3);
    expect(Node.address - Leaf.address).toBe(32); // TYPE_BYTES: the very next record
  });
});

describe('out of memory in the object layer', () => {
  let small: Heap;
  beforeEach(async () => {
    small = await Heap.create({ preset: 'cpython-3.12', maxMemory: 4 * 1024 * 1024 });
  });

  it('names the object being allocated, not "0 bytes"', () => {
    const Big = small.defineType({ name: 'Big', refSlots: 2, dataBytes: 1 << 24 });
    const cases: [() => unknown, RegExp][] = [
      [() => small.newObject(Big), /^newObject: out of memory for a Big object \(2 references, 16777216 data bytes\) \(\d+ bytes committed, maxMemory 4194304\)$/],
      [() => small.newTuple(4_000_000), /^newTuple: out of memory for a tuple of 4000000 references \(/],
      [() => small.newStr('x'.repeat(5_000_000)), /^newStr: out of memory for a str of 5000000 bytes \(/],
    ];
    for (const [call, message] of cases) {
      const error = thrown(call);
      expect(error).toBeInstanceOf(OutOfMemoryError);
      expect(error.message).toMatch(message);
      expect(error.message).not.toMatch(/for 0 bytes/);
    }
    small.check();
  });

  it('names the list that could not grow, and the item it was making room for', () => {
    const list = small.newList();
    const item = small.newInt(7); // a small int: immortal, the same object every time
    let appended = 0;
    const error = thrown(() => {
      for (;;) {
        small.listAppend(list, item);
        appended++;
      }
    });
    expect(error).toBeInstanceOf(OutOfMemoryError);
    expect(error.message).toMatch(
      new RegExp(`^listAppend: out of memory for room for item ${appended} of <list object at 0x${list.toString(16).padStart(8, '0')}> \\(`),
    );
    expect(small.length(list)).toBe(appended);
    small.check();
  });
});

describe('messages naming the operation', () => {
  it('bytes(), read() and write() of a bad address name themselves, not usableSize', () => {
    const p = heap.malloc(24);
    for (const [name, call] of [
      ['bytes', () => heap.bytes(p + 8)],
      ['read', () => heap.read(p + 8)],
      ['write', () => heap.write(p + 8, [1])],
    ] as const) {
      const error = thrown(call);
      expect(error).toBeInstanceOf(InvalidAddressError);
      expect((error as InvalidAddressError).operation).toBe(name);
      expect(error.message).toBe(`${name}(0x${(p + 8).toString(16).padStart(8, '0')}): address is inside a pool but not at the start of one of its blocks`);
    }
    expect(thrown(() => heap.read(p, 33)).message).toBe("read: length must be an integer from 0 to the block's 32 bytes, not 33");
    heap.check();
  });

  it('setRef with a dead value names the target object first and the value second', () => {
    //   a ──slot 0──> (raw block r, not an object)
    const Node = heap.defineType({ name: 'Node', refSlots: 1 });
    const a = heap.newObject(Node);
    const r = heap.malloc(24);
    const error = thrown(() => heap.setRef(a, 0, r));
    expect(error).toBeInstanceOf(InvalidObjectError);
    const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;
    expect(error.message).toBe(`setRef(${hex(a)}): the value to store, ${hex(r)}, is not a live object (never one, or already deallocated)`);
    expect((error as InvalidObjectError).address).toBe(a);
    expect((error as InvalidObjectError).value).toBe(r);
    const list = heap.newList();
    expect(thrown(() => heap.listAppend(list, r)).message).toBe(
      `listAppend(${hex(list)}): the value to store, ${hex(r)}, is not a live object (never one, or already deallocated)`,
    );
    expect(heap.getRef(a, 0)).toBeNull();
    expect(heap.length(list)).toBe(0);
    heap.check();
  });

  it('gc.collect() and the other gc calls after dispose() say gc.collect, not gcCollect', () => {
    const Node = heap.defineType({ name: 'Node', refSlots: 1 });
    const a = heap.newObject(Node);
    heap.dispose();
    for (const [name, call] of [
      ['gc.collect', () => heap.gc.collect()],
      ['gc.enable', () => heap.gc.enable()],
      ['gc.getCount', () => heap.gc.getCount()],
      ['gc.isTracked', () => heap.gc.isTracked(a)],
      ['gc.getObjects', () => heap.gc.getObjects()],
      ['newObject', () => heap.newObject(Node)],
      ['newTuple', () => heap.newTuple([a])],
      ['decref', () => heap.decref(a)],
      ['bytes', () => heap.bytes(a)],
      ['write', () => heap.write(a, [1])],
      ['debugMallocStats', () => heap.debugMallocStats()],
    ] as const) {
      const error = thrown(call);
      expect(error).toBeInstanceOf(HeapDisposedError);
      expect(error.message).toBe(`${name}: the heap has been disposed`);
    }
  });

  it('gc.collect() after dispose() on a heap that never made an object says gc.collect too', () => {
    heap.dispose();
    expect(thrown(() => heap.gc.collect()).message).toBe('gc.collect: the heap has been disposed');
  });
});

describe('the built-in container types on a fresh heap', () => {
  it('newList() and newTuple() work as the first object calls, before any defineType', async () => {
    const list = heap.newList();
    const fresh = await Heap.create();
    const tuple = fresh.newTuple(2);
    expect(heap.typeOf(list).name).toBe('list');
    expect(fresh.typeOf(tuple).name).toBe('tuple');
    expect(fresh.length(tuple)).toBe(2);
    heap.check();
    fresh.check();
  });
});

describe('heap.memory after dispose()', () => {
  it('throws HeapDisposedError like every other call, instead of returning something that is not a memory', () => {
    const memory = heap.memory;
    expect(memory).toBeInstanceOf(WebAssembly.Memory);
    heap.dispose();
    const error = thrown(() => heap.memory);
    expect(error).toBeInstanceOf(HeapDisposedError);
    expect(error.message).toBe('memory: the heap has been disposed');
    expect(heap.config.preset).toBe('cpython-3.12'); // plain data stays readable
  });
});

describe('bigints where numbers are expected', () => {
  it('malloc(10n) is our TypeError naming the argument, not the engine\'s "Cannot mix BigInt"', () => {
    const before = heap.stats();
    const T = TypeError, R = RangeError;
    for (const [call, type, message] of [
      [() => heap.malloc(10n as never), T, 'size must be an integer in [0, 2^32) as a number, not the bigint 10n'],
      [() => heap.calloc(2n as never, 8), T, 'count must be an integer in [0, 2^32) as a number, not the bigint 2n'],
      [() => heap.realloc(0, 10n as never), T, 'size must be an integer in [0, 2^32) as a number, not the bigint 10n'],
      [() => heap.free(16n as never), T, 'address must be an integer in [0, 2^32) as a number, not the bigint 16n'],
      [() => heap.usableSize(16n as never), T, 'address must be an integer in [0, 2^32) as a number, not the bigint 16n'],
      [() => heap.owns(16n as never), T, 'address must be an integer in [0, 2^32) as a number, not the bigint 16n'],
      [() => heap.mallocMany([8, 9n as never]), T, 'sizes[1] must be an integer in [0, 2^32) as a number, not the bigint 9n'],
      [() => heap.freeMany([16n as never]), T, 'address must be an integer in [0, 2^32) as a number, not the bigint 16n'],
      [() => heap.bytes(heap.malloc(8), 4n as never), R, "bytes: length must be an integer from 0 to the block's 16 bytes, not 4n"],
      [() => heap.getRef(heap.newList(), 0n as never), T, 'index must be a non-negative integer as a number, not the bigint 0n'],
      [() => heap.gc.setThreshold(700n as never), T, 'threshold0 must be a number, not bigint'],
      [() => heap.malloc(Symbol('s') as never), T, 'size must be a number, not symbol'],
    ] as const) {
      const error = thrown(call);
      expect(error).toBeInstanceOf(type);
      expect(error.message).toBe(message);
    }
    heap.check();
    expect(heap.stats().raw).toEqual(before.raw);
  });
});

describe('write() of values that are not bytes', () => {
  it('refuses [300, -1, "a"] naming the index and value, and leaves the block as it was', () => {
    const p = heap.malloc(8);
    heap.write(p, [1, 2, 3, 4]);
    for (const [data, message] of [
      [[300, -1, 'a'], 'data[0] must be an integer in [0, 255], not 300'],
      [[7, -1], 'data[1] must be an integer in [0, 255], not -1'],
      [[7, 8, 'a'], 'data[2] must be an integer in [0, 255], not "a"'],
      [[1.5], 'data[0] must be an integer in [0, 255], not 1.5'],
      [[NaN], 'data[0] must be an integer in [0, 255], not NaN'],
      [[5n], 'data[0] must be an integer in [0, 255], not 5n'],
      [new Int16Array([9, 256]), 'data[1] must be an integer in [0, 255], not 256'],
    ] as const) {
      const error = thrown(() => heap.write(p, data as unknown as number[]));
      expect(error).toBeInstanceOf(RangeError);
      expect(error.message).toBe(message);
      expect([...heap.read(p, 4)]).toEqual([1, 2, 3, 4]);
    }
    heap.write(p, [0, 255, 128]);
    heap.write(p + 0, Buffer.from([9]));
    heap.write(p, new Uint8Array([10, 11]));
    expect([...heap.read(p, 4)]).toEqual([10, 11, 128, 4]);
    heap.check();
  });
});
