// AddressMap, the open-addressing table from live addresses to ids that the mtrace and logalloc
// importers share: exact ids and counts against a plain reference model, table invariants after
// growth and deletion, and the address reuse that made the Map-based version quadratic.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { OP_ALLOC, OP_FREE, OP_REALLOC, type OpKind } from '../../src/tools/trace/format.js';
import { AddressMap, type OpSink } from '../../src/tools/trace/ops.js';

class OpList implements OpSink {
  readonly ops: number[][] = [];
  push(kind: OpKind, id: number, size: number): void {
    this.ops.push([kind, id, size]);
  }
  declareSite(): void {}
}

/**
 * The semantics AddressMap must keep, written the obvious way: a Map keyed by the address's
 * value (a BigInt for pointers, "#n" for block numbers), ids recycled from a stack.
 */
class ReferenceMap {
  readonly sink = new OpList();
  skippedFrees = 0;
  impliedFrees = 0;
  private readonly live = new Map<bigint | string, number>();
  private readonly releasedIds: number[] = [];
  private nextId = 0;

  allocate(address: string, size: number): void {
    const key = keyOf(address);
    const stale = this.live.get(key);
    if (stale !== undefined) {
      this.impliedFrees++;
      this.release(stale);
    }
    const id = this.releasedIds.pop() ?? this.nextId++;
    this.live.set(key, id);
    this.sink.push(OP_ALLOC, id, size);
  }

  free(address: string): void {
    const key = keyOf(address);
    const id = this.live.get(key);
    if (id === undefined) {
      this.skippedFrees++;
      return;
    }
    this.live.delete(key);
    this.release(id);
  }

  reallocate(oldAddress: string, newAddress: string, size: number): void {
    const id = this.live.get(keyOf(oldAddress));
    if (id === undefined) {
      this.skippedFrees++;
      this.allocate(newAddress, size);
      return;
    }
    this.live.delete(keyOf(oldAddress));
    const stale = this.live.get(keyOf(newAddress));
    if (stale !== undefined) {
      this.impliedFrees++;
      this.release(stale);
    }
    this.live.set(keyOf(newAddress), id);
    this.sink.push(OP_REALLOC, id, size);
  }

  releaseAll(): void {
    for (const id of [...this.live.values()].sort((a, b) => a - b)) this.release(id);
    this.live.clear();
  }

  get liveCount(): number {
    return this.live.size;
  }

  private release(id: number): void {
    this.releasedIds.push(id);
    this.sink.push(OP_FREE, id, 0);
  }
}

function keyOf(address: string): bigint | string {
  return address.startsWith('#') ? address : BigInt(address);
}

function hex(value: bigint, upperCase = false): string {
  const digits = value.toString(16);
  return `0x${upperCase ? digits.toUpperCase() : digits}`;
}

describe('AddressMap', () => {
  it('keeps apart addresses that differ only in their top or bottom bits, and block numbers from pointers', () => {
    const sink = new OpList();
    const map = new AddressMap(sink);
    map.allocate('0x10', 1);
    map.allocate('0x8000000000000010', 2); // bit 63 set: a tagged pointer
    map.allocate('0x100000010', 3); // bit 32 set
    map.allocate('0xffffffffffffffff', 4);
    map.allocate('#16', 5); // block number 16, not the pointer 0x10
    map.free('0x10');
    map.free('0x100000010');
    map.reallocate('0x8000000000000010', '0x7fffffffffff0', 6);
    map.free('#16');
    map.free('0xffffffffffffffff');
    expect(sink.ops).toEqual([
      [OP_ALLOC, 0, 1],
      [OP_ALLOC, 1, 2],
      [OP_ALLOC, 2, 3],
      [OP_ALLOC, 3, 4],
      [OP_ALLOC, 4, 5],
      [OP_FREE, 0, 0],
      [OP_FREE, 2, 0],
      [OP_REALLOC, 1, 6],
      [OP_FREE, 4, 0],
      [OP_FREE, 3, 0],
    ]);
    expect(map.counts()).toMatchObject({ idLimit: 5, liveAtEnd: 1, skippedFrees: 0, impliedFrees: 0 });
    expect(map.tableIsValid()).toBe(true);
  });

  it('keeps apart thousands of live keys that share their low 32 bits or their value', () => {
    // Enough keys to fill long probe runs, so that keys meet in the same runs: the
    // comparison, not the hash, must tell them apart.
    const sink = new OpList();
    const map = new AddressMap(sink);
    const keys: string[] = [];
    for (let i = 1; i <= 2000; i++) keys.push(`0x${i.toString(16)}00000010`, `0x${i.toString(16)}`, `#${i}`);
    keys.forEach((key, id) => map.allocate(key, id));
    expect(map.tableIsValid()).toBe(true);
    const frees = [...keys.keys()].reverse();
    for (const id of frees) map.free(keys[id]!);
    expect(sink.ops.slice(keys.length)).toEqual(frees.map((id) => [OP_FREE, id, 0]));
    expect(map.counts()).toMatchObject({ liveAtEnd: 0, skippedFrees: 0, impliedFrees: 0 });
  });

  it('reads pointers by value: upper-case digits and leading zeros name the same block', () => {
    const sink = new OpList();
    const map = new AddressMap(sink);
    map.allocate('0x7F90495120E0', 32);
    map.free('0x00007f90495120e0');
    expect(sink.ops).toEqual([
      [OP_ALLOC, 0, 32],
      [OP_FREE, 0, 0],
    ]);
    expect(map.counts()).toMatchObject({ liveAtEnd: 0, skippedFrees: 0 });
  });

  it('stays exact while 100k blocks are live and 8 addresses are freed and reused 300k times', () => {
    // The churn of a real mtrace: malloc hands the address it just got back straight out again.
    // A JS Map took 24 s for this; the table's cost does not depend on the live count.
    const sink = { count: 0, push: () => sink.count++, declareSite: () => {} };
    const map = new AddressMap(sink);
    const base = 0x55cc_0000_0000;
    for (let i = 0; i < 100_000; i++) map.allocate(`0x${(base + i * 0x30).toString(16)}`, 32);
    const reused = Array.from({ length: 8 }, (_, i) => `0x${(0x7f00_0000_0000 + i * 0x20).toString(16)}`);
    for (let round = 0; round < 300_000; round++) {
      const address = reused[round % 8]!;
      if (round >= 8) map.free(address);
      map.allocate(address, 16);
    }
    expect(sink.count).toBe(100_000 + 300_000 + (300_000 - 8));
    expect(map.counts()).toEqual({
      idLimit: 100_008,
      liveAtEnd: 100_008,
      skippedFrees: 0,
      impliedFrees: 0,
      otherProcessEvents: 0,
      truncatedLines: 0,
    });
    expect(map.tableIsValid()).toBe(true);
  });

  it('agrees with the reference model on random programs, growth and exec included', () => {
    // Three kinds of addresses: heap-like (16-byte steps from one base, the hash's hard case),
    // any 64-bit value, and logalloc block numbers.
    const heapLike = fc.nat({ max: 3000 }).map((i) => hex(0x55cc_fb66_0000n + BigInt(i) * 16n));
    const anyPointer = fc.bigInt({ min: 1n, max: 2n ** 64n - 1n }).chain((value) => fc.boolean().map((upper) => hex(value, upper)));
    const blockNumber = fc.nat({ max: 3000 }).map((n) => `#${n}`);
    const address = fc.oneof({ weight: 6, arbitrary: heapLike }, { weight: 2, arbitrary: anyPointer }, { weight: 1, arbitrary: blockNumber });
    const step = fc.oneof(
      { weight: 10, arbitrary: fc.tuple(fc.constant('allocate' as const), address, fc.nat({ max: 4096 })) },
      { weight: 5, arbitrary: fc.tuple(fc.constant('free' as const), address) },
      { weight: 2, arbitrary: fc.tuple(fc.constant('reallocate' as const), address, address, fc.nat({ max: 4096 })) },
    );
    // Where the program execs, emptying the heap: rarely, so that the table has time to grow.
    const execs = fc.array(fc.nat({ max: 6000 }), { maxLength: 2 });
    let mostLive = 0;
    fc.assert(
      fc.property(fc.array(step, { minLength: 3000, maxLength: 6000 }), execs, (program, execAt) => {
        const sink = new OpList();
        const map = new AddressMap(sink);
        const reference = new ReferenceMap();
        const steps: (typeof program[number] | readonly ['releaseAll'])[] = [...program];
        for (const at of execAt) steps.splice(at, 0, ['releaseAll']);
        for (const [index, [kind, ...args]] of steps.entries()) {
          mostLive = Math.max(mostLive, reference.liveCount);
          switch (kind) {
            case 'allocate':
              map.allocate(args[0] as string, args[1] as number);
              reference.allocate(args[0] as string, args[1] as number);
              break;
            case 'free':
              map.free(args[0] as string);
              reference.free(args[0] as string);
              break;
            case 'reallocate':
              map.reallocate(args[0] as string, args[1] as string, args[2] as number);
              reference.reallocate(args[0] as string, args[1] as string, args[2] as number);
              break;
            case 'releaseAll':
              map.releaseAll();
              reference.releaseAll();
              break;
          }
          if (index % 500 === 0) expect(map.tableIsValid()).toBe(true);
        }
        expect(sink.ops).toEqual(reference.sink.ops);
        expect(map.counts()).toMatchObject({
          liveAtEnd: reference.liveCount,
          skippedFrees: reference.skippedFrees,
          impliedFrees: reference.impliedFrees,
        });
        expect(map.tableIsValid()).toBe(true);
      }),
      { numRuns: 60 },
    );
    expect(mostLive).toBeGreaterThan(1024); // the table, 1024 slots at first, grew at least twice

  });
});
