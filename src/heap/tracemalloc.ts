// tracemalloc for a heap (CPython's module, REFERENCE.md section 8): which line allocated what.
//
// While tracing, the Heap calls the core through a tracing view of its exports, which records
// each call that succeeded; off, the allocation calls are what they were, and cost nothing more.
// Object constructors and decref test the tracer once, after the core call.
//
// What is traced: malloc/calloc/realloc/free, mallocMany/freeMany and the mem* calls (domain 0,
// CPython's DEFAULT_DOMAIN), the raw* calls (domain RAW_DOMAIN, so that a DomainFilter can tell
// them apart), and the object constructors newObject, newTuple, newList, newInt, newStr,
// intern(string) and weakref (domain 0; size: the bytes of the object's block, its GC header
// included). Not traced: blocks the core allocates for itself (list item arrays as a list grows,
// type records), and immortal objects (small ints), which no constructor call allocated.
//
// Objects die inside the core (decref, the collector), unseen by the host: a traced object whose
// address no longer holds a live object is dropped when traces are read (takeSnapshot,
// getTracedMemory, getObjectTraceback) and, for the object itself, when the host's decref
// frees it. Until then it still counts towards the current size and the peak.
//
// The trace table lives in the heap's own linear memory, as CPython keeps its hash table: one
// raw block, allocated through the core's raw allocator directly (so not traced itself), grown by
// doubling; getTracemallocMemory() reports its bytes. Tracebacks are interned host-side.
//
//   trace table: open addressing, linear probing, at most half full; address 0 marks a free slot
//   ┌──────────────┬──────────────┬──────────────┬──────────────────────────────┐
//   │ address  +0  │ size     +4  │ traceback +8 │ domain | OBJECT_BIT     +12  │  × capacity
//   └──────────────┴──────────────┴──────────────┴──────────────────────────────┘

import { fileURLToPath } from 'node:url';
import { OutOfMemoryError, TracemallocNotTracingError } from './errors.js';
import { DEFAULT_DOMAIN, Snapshot, type Frame, type Trace, type Traceback } from './snapshot.js';

/** What the tracer needs of the core's exports. */
export interface TracerCore {
  memory: WebAssembly.Memory;
  rawMalloc(size: number): number;
  rawFree(address: number): number;
  usableSize(address: number): number;
  objectBlockBytes(o: number): number;
}

const WORDS = 4;
const OBJECT_BIT = 1 << 16;
const DOMAIN_MASK = 0xffff;
const FIRST_CAPACITY = 1024;
const MAX_FRAMES = 65535;
/** Directory of the library's own modules: their frames are left out of tracebacks. */
const LIBRARY_DIR = fileURLToPath(new URL('.', import.meta.url));

function limitError(nframe: unknown): Error {
  return new RangeError(`nframe must be an integer in [1, ${MAX_FRAMES}], not ${typeof nframe === 'string' ? JSON.stringify(nframe) : String(nframe)}`);
}

/** A hash of a block address: its bits above the alignment, spread by a Fibonacci multiply. */
const slotOf = (address: number, mask: number): number => (Math.imul(address >>> 3, 0x9e3779b1) >>> 0) & mask;

/** Frames between a Heap call and callerFrames (Heap method, tracing export, Tracer.add, #tracebackId), and a margin. */
const LIBRARY_FRAMES = 6;
const keepSites = (_error: Error, sites: NodeJS.CallSite[]) => sites;
/** File names as V8 gives them (file: URLs for ES modules) to paths. */
const paths = new Map<string, string>();

function pathOf(name: string): string {
  let path = paths.get(name);
  if (path === undefined) {
    path = name.startsWith('file:') ? fileURLToPath(name) : name;
    paths.set(name, path);
  }
  return path;
}

/** The JS stack of the caller, library frames left out, at most `limit` frames. */
function callerFrames(limit: number): Frame[] {
  const savedPrepare = Error.prepareStackTrace;
  const savedLimit = Error.stackTraceLimit;
  Error.prepareStackTrace = keepSites;
  Error.stackTraceLimit = limit + LIBRARY_FRAMES;
  const holder: { stack?: NodeJS.CallSite[] } = {};
  Error.captureStackTrace(holder, callerFrames);
  const sites = holder.stack ?? [];
  Error.prepareStackTrace = savedPrepare;
  Error.stackTraceLimit = savedLimit;
  const frames: Frame[] = [];
  for (const site of sites) {
    const filename = pathOf(site.getFileName() ?? '<unknown>');
    if (filename.startsWith(LIBRARY_DIR)) continue;
    frames.push({ filename, lineno: site.getLineNumber() ?? 0 });
    if (frames.length === limit) break;
  }
  if (!frames.length) frames.push({ filename: '<unknown>', lineno: 0 });
  return frames;
}

/** The live tracing state of one heap: its trace table, interned tracebacks and counters. */
export class Tracer {
  /** Frames kept per traceback taken from now on. */
  limit: number;
  #core: TracerCore;
  #table = 0;
  #capacity = 0;
  #used = 0;
  #view: Uint32Array;
  #tracebacks: Traceback[] = [];
  #ids = new Map<string, number>();
  current = 0;
  peak = 0;
  /** The tag of the innermost withTag, or undefined to take the JS stack. */
  #tag: string | undefined;
  /** The tag's traceback id, interned when the tag is set. */
  #tagId = 0;

  readonly #maxMemory: number;

  constructor(core: TracerCore, limit: number, maxMemory: number) {
    this.#core = core;
    this.limit = limit;
    this.#maxMemory = maxMemory;
    this.#view = new Uint32Array(0);
    this.#allocate(FIRST_CAPACITY);
  }

  /** Records a block the host was just given (replacing a trace at the same address). */
  add(address: number, size: number, domain: number): void {
    this.#put(address, size, this.#tracebackId(), domain);
  }

  /** Records an object a constructor just made; immortal ones are not allocations. */
  addObject(o: number): void {
    const size = this.#core.objectBlockBytes(o) >>> 0;
    if (size) this.#put(o, size, this.#tracebackId(), DEFAULT_DOMAIN | OBJECT_BIT);
  }

  /** Forgets the trace of a block the host freed (if it had one). */
  remove(address: number): void {
    const view = this.#words();
    const mask = this.#capacity - 1;
    for (let slot = slotOf(address, mask); view[slot * WORDS] !== 0; slot = (slot + 1) & mask) {
      if (view[slot * WORDS] === address) {
        this.#delete(slot);
        return;
      }
    }
  }

  /** Drops the traces of objects the core has freed since they were traced. */
  reconcile(): void {
    const view = this.#words();
    for (let slot = 0; slot < this.#capacity; ) {
      const address = view[slot * WORDS];
      // A deletion shifts a later entry into this slot: look at it again.
      if (address !== 0 && view[slot * WORDS + 3] & OBJECT_BIT && !this.#core.objectBlockBytes(address)) this.#delete(slot);
      else slot++;
    }
  }

  /** The traceback of the traced block at address, or undefined. */
  traceback(address: number): Traceback | undefined {
    const view = this.#words();
    const mask = this.#capacity - 1;
    for (let slot = slotOf(address, mask); view[slot * WORDS] !== 0; slot = (slot + 1) & mask) {
      if (view[slot * WORDS] === address) return this.#tracebacks[view[slot * WORDS + 2]];
    }
    return undefined;
  }

  /** Every trace, as plain copies. */
  traces(): Trace[] {
    const view = this.#words();
    const traces: Trace[] = [];
    for (let slot = 0; slot < this.#capacity; slot++) {
      const at = slot * WORDS;
      if (view[at] === 0) continue;
      traces.push({ domain: view[at + 3] & DOMAIN_MASK, size: view[at + 1], traceback: this.#tracebacks[view[at + 2]] });
    }
    return traces;
  }

  /** Forgets every trace; current and peak restart at 0. */
  clear(): void {
    this.#words().fill(0, 0, this.#capacity * WORDS);
    this.#used = 0;
    this.current = 0;
    this.peak = 0;
  }

  /** Bytes of the trace table in linear memory. */
  tableBytes(): number {
    return this.#core.usableSize(this.#table) >>> 0;
  }

  /** Gives the table back to the raw allocator. */
  release(): void {
    this.#core.rawFree(this.#table);
    this.#table = 0;
  }

  get tag(): string | undefined {
    return this.#tag;
  }

  /** Sets (or, with undefined, clears) the tag every traceback is until it is set again. */
  setTag(tag: string | undefined): void {
    this.#tag = tag;
    if (tag !== undefined) this.#tagId = this.#intern([{ filename: tag, lineno: 0 }]);
  }

  #tracebackId(): number {
    return this.#tag === undefined ? this.#intern(callerFrames(this.limit)) : this.#tagId;
  }

  #intern(frames: Frame[]): number {
    const key = frames.map((f) => `${f.filename}\0${f.lineno}`).join('\n');
    let id = this.#ids.get(key);
    if (id === undefined) {
      id = this.#tracebacks.length;
      this.#tracebacks.push(Object.freeze(frames.map((f) => Object.freeze(f))));
      this.#ids.set(key, id);
    }
    return id;
  }

  #put(address: number, size: number, traceback: number, domainWord: number): void {
    // Past half full the table doubles; if the heap has no room for that, it fills up further,
    // and only a full table makes the call that allocated throw (its block stays allocated).
    if (2 * (this.#used + 1) > this.#capacity) {
      try {
        this.#grow();
      } catch (error) {
        if (!(error instanceof OutOfMemoryError) || this.#used + 1 >= this.#capacity) throw error;
      }
    }
    const view = this.#words();
    const mask = this.#capacity - 1;
    let slot = slotOf(address, mask);
    while (view[slot * WORDS] !== 0 && view[slot * WORDS] !== address) slot = (slot + 1) & mask;
    const at = slot * WORDS;
    if (view[at] === address) this.current -= view[at + 1];
    else this.#used++;
    view[at] = address;
    view[at + 1] = size;
    view[at + 2] = traceback;
    view[at + 3] = domainWord;
    this.current += size;
    if (this.current > this.peak) this.peak = this.current;
  }

  /** Empties the slot and shifts later entries of its probe run back (no tombstones). */
  #delete(slot: number): void {
    const view = this.#words();
    const mask = this.#capacity - 1;
    this.current -= view[slot * WORDS + 1];
    this.#used--;
    let hole = slot;
    for (let next = (slot + 1) & mask; view[next * WORDS] !== 0; next = (next + 1) & mask) {
      const home = slotOf(view[next * WORDS], mask);
      // The entry may fill the hole iff its home is not in (hole, next], cyclically.
      const stays = hole <= next ? hole < home && home <= next : hole < home || home <= next;
      if (stays) continue;
      view.copyWithin(hole * WORDS, next * WORDS, next * WORDS + WORDS);
      hole = next;
    }
    view.fill(0, hole * WORDS, hole * WORDS + WORDS);
  }

  #allocate(capacity: number): void {
    const bytes = capacity * WORDS * 4;
    const table = this.#core.rawMalloc(bytes) >>> 0;
    if (table === 0) {
      throw new OutOfMemoryError('tracemalloc', bytes, this.#core.memory.buffer.byteLength, this.#maxMemory, `a trace table of ${capacity} slots`);
    }
    this.#table = table;
    this.#capacity = capacity;
    this.#view = new Uint32Array(this.#core.memory.buffer, table, capacity * WORDS);
    this.#view.fill(0);
  }

  #grow(): void {
    const old = this.#words().slice(0, this.#capacity * WORDS);
    const oldTable = this.#table;
    // On failure #allocate throws with the old table still in place.
    this.#allocate(this.#capacity * 2);
    this.#core.rawFree(oldTable);
    this.#used = 0;
    const current = this.current;
    const peak = this.peak;
    for (let at = 0; at < old.length; at += WORDS) {
      if (old[at] !== 0) this.#put(old[at], old[at + 1], old[at + 2], old[at + 3]);
    }
    this.current = current;
    this.peak = peak;
  }

  /** The table's view, rebuilt when memory has grown (which detaches views). */
  #words(): Uint32Array {
    if (this.#view.buffer !== this.#core.memory.buffer) {
      this.#view = new Uint32Array(this.#core.memory.buffer, this.#table, this.#capacity * WORDS);
    }
    return this.#view;
  }
}

/**
 * heap.tracemalloc: CPython's tracemalloc module for one heap. The heap owns the tracer;
 * this object starts and stops it and reads it.
 */
export class Tracemalloc {
  #core: TracerCore;
  #install: (tracer: Tracer | undefined) => void;
  #tracer: Tracer | undefined;
  #limit = 1;

  /** @internal Heap makes it; `install` switches the heap's tracing on (a tracer) or off. */
  readonly #maxMemory: number;

  constructor(core: TracerCore, maxMemory: number, install: (tracer: Tracer | undefined) => void) {
    this.#core = core;
    this.#maxMemory = maxMemory;
    this.#install = install;
  }

  /**
   * Starts tracing, keeping up to nframe frames per traceback (an integer in [1, 65535]).
   * Already tracing, it only sets the limit for tracebacks taken from now on, as CPython does.
   */
  start(nframe = 1): void {
    if (typeof nframe !== 'number' || !Number.isInteger(nframe) || nframe < 1 || nframe > MAX_FRAMES) throw limitError(nframe);
    this.#limit = nframe;
    if (this.#tracer) {
      this.#tracer.limit = nframe;
      return;
    }
    this.#tracer = new Tracer(this.#core, nframe, this.#maxMemory);
    this.#install(this.#tracer);
  }

  /** Stops tracing and forgets every trace (the table goes back to the heap). */
  stop(): void {
    if (!this.#tracer) return;
    this.#install(undefined);
    this.#tracer.release();
    this.#tracer = undefined;
  }

  isTracing(): boolean {
    return this.#tracer !== undefined;
  }

  /** Forgets every trace; tracing goes on. */
  clearTraces(): void {
    this.#tracer?.clear();
  }

  /** The frames a traceback keeps (what start() was given; 1 before the first start). */
  getTracebackLimit(): number {
    return this.#limit;
  }

  /** Bytes of traced blocks now and at their highest since start, clearTraces or resetPeak. */
  getTracedMemory(): { current: number; peak: number } {
    const tracer = this.#tracer;
    if (!tracer) return { current: 0, peak: 0 };
    tracer.reconcile();
    return { current: tracer.current, peak: tracer.peak };
  }

  /** Sets the peak to the current size. */
  resetPeak(): void {
    const tracer = this.#tracer;
    if (!tracer) return;
    tracer.reconcile();
    tracer.peak = tracer.current;
  }

  /** Bytes tracemalloc itself holds in the heap: its trace table. 0 when not tracing. */
  getTracemallocMemory(): number {
    return this.#tracer?.tableBytes() ?? 0;
  }

  /** Where the block or object at address was allocated, or null if it is not traced. */
  getObjectTraceback(address: number): Traceback | null {
    const tracer = this.#tracer;
    if (!tracer) return null;
    tracer.reconcile();
    return tracer.traceback(address) ?? null;
  }

  /**
   * Runs fn with every allocation it makes traced under the tag (one frame, lineno 0) instead
   * of the JS stack: deterministic, and cheaper. Returns what fn returns.
   */
  withTag<T>(tag: string, fn: () => T): T {
    if (typeof tag !== 'string') throw new TypeError(`tag must be a string, not ${typeof tag}`);
    const tracer = this.#tracer;
    if (!tracer) return fn();
    const outer = tracer.tag;
    tracer.setTag(tag);
    try {
      return fn();
    } finally {
      tracer.setTag(outer);
    }
  }

  /** A copy of every trace. Throws TracemallocNotTracingError when not tracing. */
  takeSnapshot(): Snapshot {
    const tracer = this.#tracer;
    if (!tracer) throw new TracemallocNotTracingError('takeSnapshot');
    tracer.reconcile();
    return new Snapshot(tracer.traces(), tracer.limit);
  }
}
