// tracemalloc: a known allocation program, each part under a tag so that every size and count
// below is computed by hand; then the JS stack as traceback, objects the core frees, filters,
// dump/load, bad input and the debug hooks' report.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Heap, Snapshot, Filter, DomainFilter, RAW_DOMAIN, DEFAULT_DOMAIN, MemoryCorruptionError,
  TracemallocNotTracingError, NotASnapshotError, OutOfMemoryError, formatSize,
} from '../../src/index.js';

const THIS_FILE = fileURLToPath(import.meta.url);

/** The line of the caller, as tracemalloc's tracebacks see it (same stack machinery). */
function callerLine(): number {
  const saved = Error.prepareStackTrace;
  Error.prepareStackTrace = (_e, sites) => sites;
  const holder: { stack?: NodeJS.CallSite[] } = {};
  Error.captureStackTrace(holder, callerLine);
  const line = holder.stack![0].getLineNumber()!;
  Error.prepareStackTrace = saved;
  return line;
}

/**
 * The program: a.js 3 × malloc(100); b.js malloc(1000) + calloc(10, 20); c.js rawMalloc(5000).
 * Traced: a.js 300 B in 3, b.js 1200 B in 2, c.js 5000 B in 1 (raw domain); 6500 B in all.
 */
function program(heap: Heap): { a: number[]; b: number[]; c: number } {
  const tm = heap.tracemalloc;
  const a = tm.withTag('a.js', () => [heap.malloc(100), heap.malloc(100), heap.malloc(100)]);
  const b = tm.withTag('b.js', () => [heap.malloc(1000), heap.calloc(10, 20)]);
  const c = tm.withTag('c.js', () => heap.rawMalloc(5000));
  return { a, b, c };
}

describe('tracemalloc', () => {
  let heap: Heap;
  beforeEach(async () => {
    heap = await Heap.create();
  });
  afterEach(() => {
    heap.tracemalloc.stop();
    heap.check();
  });

  it('starts, stops and traces nothing while off', () => {
    const tm = heap.tracemalloc;
    expect(tm.isTracing()).toBe(false);
    expect(tm.getTracebackLimit()).toBe(1);
    heap.malloc(64);
    tm.start(5);
    expect(tm.isTracing()).toBe(true);
    expect(tm.getTracebackLimit()).toBe(5);
    expect(tm.getTracedMemory()).toEqual({ current: 0, peak: 0 });
    expect(tm.takeSnapshot().traces).toEqual([]);
    expect(tm.takeSnapshot().tracebackLimit).toBe(5);
    tm.stop();
    expect(tm.isTracing()).toBe(false);
    expect(tm.getTracedMemory()).toEqual({ current: 0, peak: 0 });
    expect(tm.getTracemallocMemory()).toBe(0);
  });

  it('keeps its table in the heap, outside what it traces', () => {
    const tm = heap.tracemalloc;
    const before = heap.stats();
    tm.start();
    // 1024 slots of 16 bytes, one raw block.
    expect(tm.getTracemallocMemory()).toBeGreaterThanOrEqual(16384);
    expect(heap.stats()).not.toEqual(before);
    expect(tm.getTracedMemory().current).toBe(0);
    // Growing the table past 512 traces keeps every trace.
    const blocks = tm.withTag('many', () => Array.from({ length: 2000 }, () => heap.malloc(8)));
    expect(tm.getTracemallocMemory()).toBeGreaterThanOrEqual(4096 * 16);
    expect(tm.getTracedMemory()).toEqual({ current: 16000, peak: 16000 });
    for (const p of blocks.slice(0, 1500)) heap.free(p);
    expect(tm.getTracedMemory()).toEqual({ current: 4000, peak: 16000 });
    expect(tm.takeSnapshot().traces.length).toBe(500);
    for (const p of blocks.slice(1500)) expect(tm.getObjectTraceback(p)).toEqual([{ filename: 'many', lineno: 0 }]);
    for (const p of blocks.slice(0, 1500)) expect(tm.getObjectTraceback(p)).toBeNull();
  });

  it('gives statistics by filename, lineno and traceback, biggest first', () => {
    heap.tracemalloc.start();
    program(heap);
    const snapshot = heap.tracemalloc.takeSnapshot();
    expect(snapshot.traces.length).toBe(6);
    expect(snapshot.statistics('filename').map(String)).toEqual([
      'c.js:0: size=5000 B, count=1, average=5000 B',
      'b.js:0: size=1200 B, count=2, average=600 B',
      'a.js:0: size=300 B, count=3, average=100 B',
    ]);
    const byLine = snapshot.statistics('lineno');
    expect(byLine.map((s) => [s.traceback, s.size, s.count])).toEqual([
      [[{ filename: 'c.js', lineno: 0 }], 5000, 1],
      [[{ filename: 'b.js', lineno: 0 }], 1200, 2],
      [[{ filename: 'a.js', lineno: 0 }], 300, 3],
    ]);
    expect(snapshot.statistics('traceback').map((s) => s.size)).toEqual([5000, 1200, 300]);
    expect(() => snapshot.statistics('traceback', true)).toThrow("cumulative mode cannot be used with keyType 'traceback'");
    expect(() => snapshot.statistics('file' as 'filename')).toThrow(TypeError);
  });

  it('counts current and peak, and resetPeak lowers the peak to now', () => {
    const tm = heap.tracemalloc;
    tm.start();
    const { a } = program(heap);
    expect(tm.getTracedMemory()).toEqual({ current: 6500, peak: 6500 });
    heap.free(a[0]);
    const d = tm.withTag('d.js', () => heap.malloc(20000));
    expect(tm.getTracedMemory()).toEqual({ current: 26400, peak: 26400 });
    heap.free(d);
    expect(tm.getTracedMemory()).toEqual({ current: 6400, peak: 26400 });
    tm.resetPeak();
    expect(tm.getTracedMemory()).toEqual({ current: 6400, peak: 6400 });
    // realloc moves the trace to the new size (and address).
    const moved = tm.withTag('e.js', () => heap.realloc(a[1], 3000));
    expect(tm.getTracedMemory()).toEqual({ current: 9300, peak: 9300 });
    expect(tm.getObjectTraceback(moved)).toEqual([{ filename: 'e.js', lineno: 0 }]);
    tm.clearTraces();
    expect(tm.getTracedMemory()).toEqual({ current: 0, peak: 0 });
    expect(tm.takeSnapshot().traces).toEqual([]);
  });

  it('compares snapshots, biggest change first', () => {
    const tm = heap.tracemalloc;
    tm.start();
    const { a } = program(heap);
    const first = tm.takeSnapshot();
    heap.free(a[0]);
    tm.withTag('d.js', () => heap.malloc(20000));
    const second = tm.takeSnapshot();
    const diff = second.compareTo(first, 'filename');
    expect(diff.map(String)).toEqual([
      'd.js:0: size=19.5 KiB (+19.5 KiB), count=1 (+1), average=19.5 KiB',
      'a.js:0: size=200 B (-100 B), count=2 (-1), average=100 B',
      'c.js:0: size=5000 B (+0 B), count=1 (+0), average=5000 B',
      'b.js:0: size=1200 B (+0 B), count=2 (+0), average=600 B',
    ]);
    expect(first.compareTo(second, 'lineno').map((d) => [d.traceback[0].filename, d.size, d.sizeDiff, d.count, d.countDiff])).toEqual([
      ['d.js', 0, -20000, 0, -1],
      ['a.js', 300, 100, 3, 1],
      ['c.js', 5000, 0, 1, 0],
      ['b.js', 1200, 0, 2, 0],
    ]);
  });

  it('takes the caller\'s JS stack, the library left out, up to the limit', () => {
    const tm = heap.tracemalloc;
    tm.start(2);
    const [p, line] = [heap.malloc(10), callerLine()];
    const allocate = () => [heap.malloc(20), callerLine()] as const;
    const [[q, inner], outer] = [allocate(), callerLine()];
    expect(tm.getObjectTraceback(p)![0]).toEqual({ filename: THIS_FILE, lineno: line });
    expect(tm.getObjectTraceback(q)).toEqual([
      { filename: THIS_FILE, lineno: inner },
      { filename: THIS_FILE, lineno: outer },
    ]);
    const stats = tm.takeSnapshot().statistics('lineno');
    expect(stats.map((s) => [s.traceback[0].lineno, s.size])).toEqual([[inner, 20], [line, 10]]);
    expect(String(stats[1])).toBe(`${THIS_FILE}:${line}: size=10 B, count=1, average=10 B`);
    // Cumulative: q's outer frame counts too (p's second frame is the test runner's, wherever it is).
    const cumulative = tm.takeSnapshot().statistics('lineno', true);
    const sizeAt = (lineno: number) => cumulative.find((s) => s.traceback[0].filename === THIS_FILE && s.traceback[0].lineno === lineno)?.size;
    expect([sizeAt(inner), sizeAt(outer), sizeAt(line)]).toEqual([20, 20, 10]);
    const byFile = tm.takeSnapshot().statistics('filename', true).find((s) => s.traceback[0].filename === THIS_FILE)!;
    expect([byFile.size, byFile.count]).toEqual([30, 2]);
  });

  it('filters by filename pattern, line, all frames and domain', () => {
    const tm = heap.tracemalloc;
    tm.start(2);
    program(heap);
    const [, line] = [heap.malloc(7), callerLine()];
    const snapshot = tm.takeSnapshot();
    const files = (s: Snapshot) => s.statistics('filename').map((x) => `${x.traceback[0].filename} ${x.size}`);
    expect(files(snapshot.filterTraces([new Filter(true, 'a.js')]))).toEqual(['a.js 300']);
    expect(files(snapshot.filterTraces([new Filter(false, 'a.js')]))).toEqual(['c.js 5000', 'b.js 1200', `${THIS_FILE} 7`]);
    expect(files(snapshot.filterTraces([new Filter(true, '[ab].js')]))).toEqual(['b.js 1200', 'a.js 300']);
    expect(files(snapshot.filterTraces([new Filter(true, '?.js'), new Filter(false, 'b*')]))).toEqual(['c.js 5000', 'a.js 300']);
    // `*` matches across slashes, as CPython's fnmatch does.
    expect(files(snapshot.filterTraces([new Filter(true, '*/tracemalloc/*.test.ts')]))).toEqual([`${THIS_FILE} 7`]);
    expect(snapshot.filterTraces([new Filter(true, THIS_FILE, line)]).traces.length).toBe(1);
    expect(snapshot.filterTraces([new Filter(true, THIS_FILE, line + 1)]).traces.length).toBe(0);
    expect(snapshot.filterTraces([new Filter(true, '*', undefined, false, RAW_DOMAIN)]).traces.map((t) => t.size)).toEqual([5000]);
    expect(files(snapshot.filterTraces([new DomainFilter(true, RAW_DOMAIN)]))).toEqual(['c.js 5000']);
    expect(files(snapshot.filterTraces([new DomainFilter(false, RAW_DOMAIN)]))).toEqual(['b.js 1200', 'a.js 300', `${THIS_FILE} 7`]);
    expect(snapshot.filterTraces([new DomainFilter(true, DEFAULT_DOMAIN)]).traces.length).toBe(6);
    // allFrames: a frame below the most recent one matches.
    const helper = () => heap.malloc(9);
    helper();
    const deep = tm.takeSnapshot().filterTraces([new Filter(true, THIS_FILE, callerLine() - 1, true)]);
    expect(deep.traces.map((t) => t.size)).toEqual([9]);
    expect(tm.takeSnapshot().filterTraces([new Filter(true, THIS_FILE, callerLine() - 3, false)]).traces).toEqual([]);
  });

  it('drops objects the core frees: by decref and by the collector', () => {
    const tm = heap.tracemalloc;
    tm.start();
    const items = tm.withTag('tuple', () => [heap.newInt(1000), heap.newStr('abc')]);
    const tuple = tm.withTag('tuple', () => heap.newTuple(items));
    const small = tm.withTag('small', () => heap.newInt(5));
    expect(tm.getObjectTraceback(small)).toBeNull(); // immortal: no call allocated it
    const sizes = tm.takeSnapshot().traces.map((t) => t.size);
    expect(sizes.length).toBe(3);
    // The tuple holds the items' last references: its decref frees all three inside the core.
    heap.decref(items[0]);
    heap.decref(items[1]);
    expect(tm.takeSnapshot().traces.length).toBe(3);
    heap.decref(tuple);
    expect(tm.takeSnapshot().traces).toEqual([]);
    expect(tm.getTracedMemory().current).toBe(0);

    const Node = heap.defineType({ name: 'Node', refSlots: 1, dataBytes: 0 });
    const [x, y] = tm.withTag('cycle', () => [heap.newObject(Node), heap.newObject(Node)]);
    heap.setRef(x, 0, y);
    heap.setRef(y, 0, x);
    heap.decref(x);
    heap.decref(y);
    const cycle = tm.takeSnapshot().statistics('filename');
    expect(cycle.map((s) => [s.traceback[0].filename, s.count])).toEqual([['cycle', 2]]);
    expect(cycle[0].size).toBe(2 * tm.takeSnapshot().traces[0].size);
    expect(heap.gc.collect()).toBe(2);
    expect(tm.takeSnapshot().traces).toEqual([]);
    expect(tm.getTracedMemory().current).toBe(0);
  });

  it('traces every allocation family, and nothing after stop', () => {
    const tm = heap.tracemalloc;
    tm.start();
    const blocks = tm.withTag('many', () => heap.mallocMany([10, 20, 30]));
    const m = tm.withTag('mem', () => heap.memRealloc(heap.memCalloc(4, 5), 40));
    const r = tm.withTag('raw', () => heap.rawRealloc(0, 700));
    const domains = tm.takeSnapshot().statistics('filename').map((s) => `${s.traceback[0].filename} ${s.size} ${s.count}`);
    expect(domains).toEqual(['raw 700 1', 'many 60 3', 'mem 40 1']);
    expect(tm.takeSnapshot().traces.find((t) => t.size === 700)!.domain).toBe(RAW_DOMAIN);
    heap.freeMany(blocks);
    heap.memFree(m);
    expect(tm.getTracedMemory()).toEqual({ current: 700, peak: 800 }); // 60 + 40 (the calloc's 20 resized) + 700
    tm.start(3); // tracing already: only the limit changes, the traces stay
    expect(tm.getTracebackLimit()).toBe(3);
    expect(tm.getTracedMemory().current).toBe(700);
    tm.stop();
    heap.rawFree(r);
    const p = heap.malloc(5);
    tm.start();
    expect(tm.getObjectTraceback(p)).toBeNull();
    expect(tm.takeSnapshot().traces).toEqual([]);
    heap.free(p);
  });

  it('formats sizes as CPython does, signs and ties to even included', () => {
    expect([0, 24.5, 25.5, 1000, 10_240, 20_000, 102_400, -100, 5 * 1024 ** 3].map((n) => formatSize(n))).toEqual([
      '0 B', '24 B', '26 B', '1000 B', '10.0 KiB', '19.5 KiB', '100 KiB', '-100 B', '5120 MiB',
    ]);
    expect([0, 9800, -20_000].map((n) => formatSize(n, true))).toEqual(['+0 B', '+9800 B', '-19.5 KiB']);
  });

  it('dumps and loads a snapshot', () => {
    const tm = heap.tracemalloc;
    tm.start(3);
    program(heap);
    heap.malloc(1);
    const snapshot = tm.takeSnapshot();
    const path = join(mkdtempSync(join(tmpdir(), 'tracemalloc-')), 'snap.json');
    snapshot.dump(path);
    const loaded = Snapshot.load(path);
    expect(loaded.tracebackLimit).toBe(3);
    expect(loaded.traces).toEqual(snapshot.traces);
    expect(loaded.statistics('lineno').map(String)).toEqual(snapshot.statistics('lineno').map(String));
    expect(loaded.compareTo(snapshot, 'traceback').every((d) => d.sizeDiff === 0 && d.countDiff === 0)).toBe(true);
  });

  it('refuses bad input with typed errors and stays usable', () => {
    const tm = heap.tracemalloc;
    for (const nframe of [0, -1, 1.5, 65536, NaN, '2', 2n]) {
      expect(() => tm.start(nframe as number)).toThrow(RangeError);
      expect(tm.isTracing()).toBe(false);
    }
    expect(() => tm.start(0)).toThrow('nframe must be an integer in [1, 65535], not 0');
    expect(() => tm.takeSnapshot()).toThrow(TracemallocNotTracingError);
    expect(() => tm.takeSnapshot()).toThrow('takeSnapshot: tracemalloc is not tracing memory allocations');
    expect(() => tm.withTag(3 as unknown as string, () => 0)).toThrow(TypeError);
    const dir = mkdtempSync(join(tmpdir(), 'tracemalloc-'));
    const cases: [string, string][] = [
      ['not json', 'not JSON'],
      ['{"format": "something else"}', 'no "format"'],
      ['{"format": "pymalloc-wasm tracemalloc snapshot", "version": 9}', 'version 9'],
      ['{"format": "pymalloc-wasm tracemalloc snapshot", "version": 1, "tracebackLimit": 1, "tracebacks": [], "traces": [[0, 1, 0]]}', 'traces[0]'],
    ];
    for (const [i, [text, reason]] of cases.entries()) {
      const path = join(dir, `${i}.json`);
      writeFileSync(path, text);
      expect(() => Snapshot.load(path)).toThrow(NotASnapshotError);
      expect(() => Snapshot.load(path)).toThrow(reason);
    }
    tm.start(65535);
    expect(tm.getTracebackLimit()).toBe(65535);
    heap.free(heap.malloc(8));
  });
});

describe('tracemalloc out of memory', () => {
  it('keeps tracing in a table it cannot grow, and the heap stays usable', async () => {
    const heap = await Heap.create({ maxMemory: 2 * 1024 * 1024 });
    heap.tracemalloc.start();
    const blocks: number[] = [];
    let error: unknown;
    try {
      heap.tracemalloc.withTag('fill', () => { for (;;) blocks.push(heap.malloc(480)); });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(OutOfMemoryError);
    // Every block handed out is traced, whichever failed: the heap's or the table's growth.
    const { current } = heap.tracemalloc.getTracedMemory();
    expect(current === 480 * blocks.length || current === 480 * (blocks.length + 1)).toBe(true);
    for (const p of blocks) heap.free(p);
    heap.check();
    heap.tracemalloc.stop();
    heap.free(heap.malloc(480));
  });
});

describe('tracemalloc under debug hooks', () => {
  it('shows the block\'s traceback in a corruption report', async () => {
    const heap = await Heap.create({ debugHooks: true });
    heap.tracemalloc.start(1);
    const [p, line] = [heap.malloc(8), callerLine()];
    const bytes = new Uint8Array(heap.memory.buffer);
    bytes[p - 1] = 0;
    let error: MemoryCorruptionError | undefined;
    try {
      heap.free(p);
    } catch (e) {
      error = e as MemoryCorruptionError;
    }
    expect(error).toBeInstanceOf(MemoryCorruptionError);
    expect(error!.message).toContain(`\n\nMemory block allocated at (most recent call first):\n  File "${THIS_FILE}", line ${line}\n\nfree: bad leading pad byte`);
    new Uint8Array(heap.memory.buffer)[p - 1] = 0xfd;
    heap.free(p);
    heap.check();
  });
});
