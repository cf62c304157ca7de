import { GcModule, type GcExports } from './gc.js';
import { TapeWriter, readTape, type JsonValue } from './json.js';
import {
  HeapCorruptionError, HeapDisposedError, InvalidObjectError, ObjectTypeError, OutOfMemoryError, hex,
} from './errors.js';
import type { HeapMutex, World } from './shared.js';

/** The exports of assembly/abi/objects.ts: the object layer's, and the gc module's. */
export interface ObjectExports extends GcExports {
  objectsInit(): number;
  objectError(): number;
  typeDefine(kind: number, refSlots: number, dataBytes: number, finalizer: number, weakrefable: number, name: number): number;
  typeCount(): number;
  typeAt(index: number): number;
  typeDescribe(type: number): number;
  ioBuffer(): number;
  builtinType(index: number): number;
  objectNew(type: number): number;
  tupleNew(type: number, size: number): number;
  listNew(type: number): number;
  intNew(value: bigint): number;
  strNew(length: number): number;
  strIntern(s: number): number;
  objectKind(o: number): number;
  objectType(o: number): number;
  objectData(o: number): number;
  objectDataBytes(o: number): number;
  objectIncref(o: number): number;
  objectDecref(o: number): number;
  objectRefcount(o: number): number;
  /** The free-threaded build's decref under the heap mutex (assembly/abi/threads.ts). */
  objectDecrefLocked?(o: number): number;
  objectLength(o: number): number;
  objectGetRef(o: number, index: number): number;
  objectSetRef(o: number, index: number, value: number): number;
  listAppendItem(list: number, item: number): number;
  listPopItem(list: number, index: number): number;
  weakrefNew(o: number, callback: number): number;
  weakrefGet(wr: number): number;
  dictNew(): number;
  dictSetItem(d: number, key: number, value: number): number;
  dictGetItem(d: number, key: number): number;
  dictDelItem(d: number, key: number): number;
  dictEntriesOf(d: number): number;
  dictLayout(d: number): number;
  floatNew(value: number): number;
  boolGet(value: number): number;
  noneGet(): number;
  scratchAlloc(bytes: number): number;
  scratchFree(block: number): void;
  jsonBuild(tape: number, words: number, text: number, textBytes: number): number;
  jsonDump(o: number): number;
  jsonParse(text: number, bytes: number): number;
  jsonDumpText(o: number): number;
}

/** What an object is made of. 'fixed': host-defined slots and data. */
export type ObjectKind = 'fixed' | 'tuple' | 'list' | 'int' | 'str' | 'weakref' | 'dict' | 'float' | 'bool' | 'none';

/** A dict key: a str or int object's address, a JS string (a str) or a bigint (an int). */
export type DictKey = number | string | bigint;

/** A dict's table as CPython lays it out (assembly/objects/dict.ts). */
export interface DictLayout {
  /** Slots of the index table, a power of two; 0 while the dict has never held an entry. */
  size: number;
  /** Bytes per index: 1, 2 or 4. */
  indexBytes: number;
  /** Entries that can still be appended before the table grows (dk_usable). */
  usable: number;
  /** Entries appended, deleted ones included (dk_nentries). */
  entries: number;
  /** Each slot: an entry's position, -1 (EMPTY) or -2 (DUMMY: a deleted key's). */
  indices: number[];
}

/** A finalizer (tp_finalize): called once per object, with the object still intact. */
export type Finalizer = (object: number) => void;
/** A weakref callback: called with the weakref object once its referent is gone. */
export type WeakrefCallback = (weakref: number) => void;

export interface TypeSpec {
  /** Shown in errors and in the collector's debug output. */
  name: string;
  /**
   * 'fixed': refSlots references then dataBytes raw bytes; 'tuple': a fixed-length array of
   * references; 'list': a growable one (its items in a separate block).
   * @default 'fixed'
   */
  kind?: 'fixed' | 'tuple' | 'list';
  /** References of a fixed object (0 to 65536). Objects with references are tracked by the GC. @default 0 */
  refSlots?: number;
  /** Raw bytes of a fixed object (0 to 16 MiB). @default 0 */
  dataBytes?: number;
  /** Called once per object before it is freed; it may resurrect the object (PEP 442). */
  finalizer?: Finalizer;
  /** Whether weakref() accepts objects of a fixed type (each gets a weak-list word). @default true */
  weakrefable?: boolean;
}

/** A type, as defineType returns it. */
export interface ObjectType {
  readonly name: string;
  readonly kind: ObjectKind;
  /** The type record's address in the heap (the objects' type word). */
  readonly address: number;
  readonly refSlots: number;
  readonly dataBytes: number;
}

/** What unraisableHook receives: an error no caller could be handed (CPython's sys.unraisablehook). */
export interface UnraisableInfo {
  error: unknown;
  /** The object being finalized, the weakref whose callback failed, or 0 for a gc callback. */
  object: number;
  /** Where it happened, as CPython words it: "Exception ignored in: ..." */
  message: string;
}

const KIND_CODES = { fixed: 1, tuple: 2, list: 3 } as const;
/** The keys of a TypeSpec: any other is a misspelling, refused rather than ignored. */
const SPEC_KEYS: ReadonlySet<string> = new Set(['name', 'kind', 'refSlots', 'dataBytes', 'finalizer', 'weakrefable']);
/** The built-in types, [name, kind, data bytes], in the core's order (assembly/objects/builtins.ts, Builtin). */
const BUILTINS: ReadonlyArray<readonly [string, ObjectKind, number]> = [
  ['int', 'int', 8], ['str', 'str', 0], ['tuple', 'tuple', 0], ['list', 'list', 0], ['weakref', 'weakref', 0],
  ['dict', 'dict', 0], ['float', 'float', 8], ['bool', 'bool', 8], ['NoneType', 'none', 0],
];

// ObjectError codes of assembly/objects/object.ts.
const NOT_AN_OBJECT = 1;
const BAD_VALUE = 2;
const INDEX = 3;
const WRONG_KIND = 4;
const OUT_OF_MEMORY = 5;
const TOO_MANY_TYPES = 6;
const UNHASHABLE = 7;
const KEY = 8;
const CYCLE = 9;
const SYNTAX = 10;
/** Why a parse failed (SyntaxProblem of assembly/heap/json.ts), as a message. */
const SYNTAX_PROBLEMS = ['', 'unexpected character', 'unexpected end of the text', 'a string that is not UTF-8', 'a bad escape', 'a control character in a string'];
/** Words per float parseJSON leaves for the host to convert: object, text address, text length. */
const PENDING_WORDS = 3;
/** Bytes per float stringifyJSON leaves for the host to print: UTF-16 offset, value. */
const PENDING_FLOAT_BYTES = 12;
/** Free-threaded build: objectDecref could not finish lock-free. */
const NEEDS_LOCK = 11;
/** FAILED (2^32 - 1) as the i32 the ABI returns it as. */
const FAILED = -1;
/** Refcounts from here up are immortal (assembly/objects/object.ts). */
const IMMORTAL = 0x3fff_ffff;

/** Whether the value is an index or an address: an integer in [0, 2^32) (typeof first: `>>>` throws on a bigint). */
function isAddress(value: unknown): value is number {
  return typeof value === 'number' && value >>> 0 === value;
}

function addressError(name: string, value: unknown): Error {
  if (typeof value !== 'number') return new TypeError(`${name} must be an object address (a number), not ${typeof value}`);
  return new RangeError(`${name} must be an integer in [0, 2^32), not ${value}`);
}

function indexError(name: string, value: unknown): Error {
  if (typeof value === 'bigint') return new TypeError(`${name} must be a non-negative integer as a number, not the bigint ${value}n`);
  if (typeof value !== 'number') return new TypeError(`${name} must be a number, not ${typeof value}`);
  return new RangeError(`${name} must be a non-negative integer, not ${value}`);
}

/** What a failed call was doing, for its error message. */
interface ErrorContext {
  /** For WRONG_KIND: what the object should have been ("a list"). */
  expected?: string;
  /** For INDEX: the index asked for. */
  index?: number;
  /** For BAD_VALUE: the value that was to be stored. */
  value?: number;
  /** For OUT_OF_MEMORY: what was being allocated ("a tuple of 10 references"). */
  allocating?: string;
}

interface TypeEntry {
  type: ObjectType;
  finalizer?: Finalizer;
  /** The record says the type has a finalizer: one may be defined in another instance only. */
  finalizes: boolean;
  weakrefable: boolean;
}

/** The exports after dispose(): nothing reaches them, as exports() throws first. */
const DISPOSED = refusingExports<ObjectExports>();

/** Exports whose every function throws HeapDisposedError naming it, and why the heap is gone. */
export function refusingExports<T extends object>(why?: string): T {
  return new Proxy({} as T, {
    get: (_target, name) => () => {
      throw new HeapDisposedError(String(name), why);
    },
  });
}

/** `a fixed type of 2 references and 8 data bytes, with a finalizer`, for the errors of #adopt. */
type Layout = Pick<TypeEntry, 'finalizes' | 'weakrefable'> & Pick<ObjectType, 'kind' | 'refSlots' | 'dataBytes'>;

function layoutText(layout: Layout): string {
  const parts = layout.kind === 'fixed' ? ` of ${layout.refSlots} references and ${layout.dataBytes} data bytes` : '';
  const finalizer = layout.finalizes ? ', with a finalizer' : '';
  const weak = layout.kind === 'fixed' && !layout.weakrefable ? ', not weakly referenceable' : '';
  return `a ${layout.kind} type${parts}${finalizer}${weak}`;
}

/** The IO buffer's layout after dictLayout (assembly/abi/objects.ts). */
const LAYOUT_WORDS = 4;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The Wasm imports of the object layer. They exist before the instance does, so they are
 * bound to their ObjectSpace afterwards. No exception crosses into Wasm: what a host
 * function throws is reported to unraisableHook and the Wasm caller carries on.
 */
export class ObjectImports {
  space: ObjectSpace | undefined;
  readonly functions = {
    objectFinalize: (o: number) => this.space?.runFinalizer(o >>> 0),
    weakrefCallback: (wr: number) => this.space?.runWeakrefCallback(wr >>> 0),
    weakrefDropped: (wr: number) => this.space?.dropWeakrefCallback(wr >>> 0),
    gcEvent: (phase: number, generation: number, collected: number, uncollectable: number) =>
      this.space?.gc.onEvent(phase, generation, collected >>> 0, uncollectable >>> 0),
    gcDebugObject: (o: number) => this.space?.gc.onDebugObject(o >>> 0),
    gcScheduled: () => this.space?.scheduleCollection(),
  };
}

/**
 * Objects with reference counts on a heap, and its cycle collector (`gc`). Addresses are
 * plain numbers; every one is validated in Wasm, and a bad one throws InvalidObjectError
 * with the heap unchanged.
 */
export class ObjectSpace {
  readonly gc: GcModule;
  /** Receives errors thrown by finalizers, weakref callbacks and gc callbacks. */
  unraisableHook: (info: UnraisableInfo) => void;
  #ex: ObjectExports;
  /** False until the object space is set up, and again after dispose(), so that exports() checks both at once. */
  #ready = false;
  /** Why the space was disposed (HeapDisposedError's reason), or undefined while it is not. */
  #disposed: string | undefined;
  #types = new Map<number, TypeEntry>();
  #callbacks = new Map<number, WeakrefCallback>();
  #builtins: ObjectType[] = [];
  #tapeWriter: TapeWriter | undefined;
  #u32: Uint32Array;

  readonly #maxMemory: number;
  /**
   * Other instances share the heap: a type defined in one is known to all by its record (and
   * its name, a str the record holds), and defining it again by name adopts it.
   */
  readonly #shared: boolean;
  /** The exports the gc module calls: `gcExports` (src/heap/guard.ts wraps them), until disposed. */
  #gcEx: GcExports;

  /**
   * The heap mutex of a free-threaded heap: incref, decref and refcount run lock-free and take it
   * only for what cannot (docs/free-threaded.md); undefined for every other heap.
   */
  readonly #mutex: HeapMutex | undefined;
  /** The mutex's stop-the-world: every lock-free call runs between its enter() and exit(). */
  readonly #world: World | undefined;

  constructor(exports: ObjectExports, imports: ObjectImports, maxMemory: number, gcExports: GcExports = exports, shared = false, mutex?: HeapMutex) {
    this.#ex = exports;
    this.#shared = shared;
    this.#mutex = mutex;
    this.#world = mutex?.world;
    this.#gcEx = gcExports;
    this.#maxMemory = maxMemory;
    this.#u32 = new Uint32Array(exports.memory.buffer);
    this.gc = new GcModule({
      exports: (operation) => {
        this.exports(operation);
        return this.#gcEx;
      },
      isObject: (o) => this.isObject(o),
      debugName: (o) => this.debugName(o),
      reportUnraisable: (error, object, message) => this.reportUnraisable(error, object, message),
      world: this.#world,
    });
    if (mutex) mutex.collectScheduled = () => this.gc.collectScheduled();
    this.unraisableHook = (info) => {
      const error = info.error;
      const detail = error instanceof Error ? (error.stack ?? `${error.name}: ${error.message}`) : String(error);
      this.gc.stderr(`${info.message}\n${detail}\n`);
    };
    imports.space = this;
  }

  /**
   * The exports, after setting the object space up on first use. `operation` is the public
   * call being made (`newTuple`, `gc.collect`): what HeapDisposedError names after dispose().
   */
  exports(operation: string): ObjectExports {
    if (!this.#ready) {
      if (this.#mutex) this.#locked(operation, () => this.#init(operation));
      else this.#init(operation);
    }
    return this.#ex;
  }

  /** fn under the heap mutex of a free-threaded heap, its refusals naming `operation`. */
  #locked<T>(operation: string, fn: () => T): T {
    const mutex = this.#mutex!;
    mutex.enter(operation);
    try {
      return fn();
    } finally {
      mutex.exit();
    }
  }

  #init(operation: string): void {
    if (this.#disposed !== undefined) throw new HeapDisposedError(operation, this.#disposed);
    if (this.#ex.objectsInit() !== 0) {
      throw new OutOfMemoryError(operation, 0, this.#ex.memory.buffer.byteLength, this.#maxMemory, 'the object space (its type table)');
    }
    this.#ready = true;
    BUILTINS.forEach(([name, kind, dataBytes], index) => {
      const type: ObjectType = { name, kind, address: this.#ex.builtinType(index) >>> 0, refSlots: 0, dataBytes };
      this.#builtins.push(type);
      this.#types.set(type.address, { type, finalizes: false, weakrefable: false });
    });
  }

  /** The core's gcScheduled import (free-threaded build): the collection runs when the outermost call ends. */
  scheduleCollection(): void {
    if (this.#mutex) this.#mutex.collectionDue = true;
  }

  /** Drops the instance; exports() throws HeapDisposedError (saying `why`) from now on. */
  dispose(why = 'the heap has been disposed'): void {
    this.#ex = DISPOSED;
    this.#gcEx = DISPOSED;
    this.#disposed = why;
    this.#ready = false;
  }

  // ───────────── types ─────────────

  defineType(spec: TypeSpec): ObjectType {
    if (typeof spec !== 'object' || spec === null) throw new TypeError('spec must be an object');
    for (const key of Object.keys(spec)) {
      if (!SPEC_KEYS.has(key)) throw new TypeError(`unknown spec key '${key}' (valid: ${[...SPEC_KEYS].join(', ')})`);
    }
    const { name, kind = 'fixed', refSlots = 0, dataBytes = 0, finalizer, weakrefable = true } = spec;
    if (typeof name !== 'string' || !name) throw new TypeError('spec.name must be a non-empty string');
    if (!Object.hasOwn(KIND_CODES, kind)) throw new RangeError("spec.kind must be 'fixed', 'tuple' or 'list'");
    if (!Number.isInteger(refSlots) || refSlots < 0 || refSlots > 65536) {
      throw new RangeError('spec.refSlots must be an integer from 0 to 65536');
    }
    if (!Number.isInteger(dataBytes) || dataBytes < 0 || dataBytes > 1 << 24) {
      throw new RangeError('spec.dataBytes must be an integer from 0 to 16777216');
    }
    if (finalizer !== undefined && typeof finalizer !== 'function') {
      throw new TypeError('spec.finalizer must be a function');
    }
    if (kind !== 'fixed' && (refSlots || dataBytes)) {
      throw new RangeError(`spec.refSlots and spec.dataBytes are for fixed types, not '${kind}'`);
    }
    const ex = this.exports('defineType');
    const weakrefs = weakrefable && kind === 'fixed';
    if (this.#shared) {
      const adopted = this.#adopt(name, { kind, refSlots, dataBytes, finalizes: finalizer !== undefined, weakrefable: weakrefs });
      if (adopted) {
        adopted.finalizer = finalizer;
        return adopted.type;
      }
    }
    const nameStr = this.#shared ? this.newStr(name) : 0;
    const address = ex.typeDefine(KIND_CODES[kind], refSlots, dataBytes, finalizer ? 1 : 0, weakrefs ? 1 : 0, nameStr) >>> 0;
    if (address === 0) {
      if (nameStr) ex.objectDecref(nameStr);
      throw ex.objectError() === TOO_MANY_TYPES ? new RangeError('defineType: the type table is full (256 types)') : new RangeError('defineType: the heap refused the type');
    }
    const type: ObjectType = Object.freeze({ name, kind, address, refSlots, dataBytes });
    this.#types.set(address, { type, finalizer, finalizes: finalizer !== undefined, weakrefable: weakrefs });
    return type;
  }

  /**
   * In a shared heap, the type another instance defined under `name`, now this instance's too,
   * or undefined when there is none; a TypeError when its layout is not the one asked for.
   */
  #adopt(name: string, layout: Layout): TypeEntry | undefined {
    const ex = this.#ex;
    for (let i = this.#builtins.length, count = ex.typeCount(); i < count; i++) {
      const entry = this.#entry(ex.typeAt(i) >>> 0)!;
      if (entry.type.name !== name) continue;
      const { kind, refSlots, dataBytes } = entry.type;
      if (
        kind !== layout.kind || refSlots !== layout.refSlots || dataBytes !== layout.dataBytes ||
        entry.finalizes !== layout.finalizes || entry.weakrefable !== layout.weakrefable
      ) {
        throw new TypeError(
          `defineType: '${name}' is already defined in this shared heap as ${layoutText({ ...entry, ...entry.type })}, not as ${layoutText(layout)}`,
        );
      }
      return entry;
    }
    return undefined;
  }

  /**
   * The entry of a type record: this instance's own, or, for a type another instance of a
   * shared heap defined, one read from the record (without a finalizer: see runFinalizer).
   */
  #entry(address: number): TypeEntry | undefined {
    const known = this.#types.get(address);
    if (known !== undefined || !this.#shared) return known;
    if (this.#ex.typeDescribe(address) === 0) return undefined;
    const io = new Uint32Array(this.#ex.memory.buffer, this.#ex.ioBuffer() >>> 0, 6);
    const [kindCode, finalizes, refSlots, dataBytes, weakrefable, nameStr] = io;
    const kind = (Object.keys(KIND_CODES) as (keyof typeof KIND_CODES)[]).find((k) => KIND_CODES[k] === kindCode)!;
    const type: ObjectType = Object.freeze({ name: this.strValue(nameStr), kind, address, refSlots, dataBytes });
    const entry: TypeEntry = { type, finalizes: finalizes !== 0, weakrefable: weakrefable !== 0 };
    this.#types.set(address, entry);
    return entry;
  }

  /** The type of a live object. */
  typeOf(o: number): ObjectType {
    this.#address('typeOf', o);
    const address = this.exports('typeOf').objectType(o) >>> 0;
    if (address === 0) throw new InvalidObjectError('typeOf', o);
    return this.#entry(address)!.type;
  }

  /** Whether the address is a live object. */
  isObject(o: number): boolean {
    return isAddress(o) && this.exports('isObject').objectKind(o) !== 0;
  }

  // ───────────── constructors ─────────────

  newObject(type: ObjectType): number {
    const address = this.#typeAddress('newObject', type, 'fixed');
    const { name, refSlots, dataBytes } = this.#entry(address)!.type;
    return this.#made('newObject', this.#ex.objectNew(address), `a ${name} object (${refSlots} references, ${dataBytes} data bytes)`);
  }

  /** A tuple: `items` (each incref'd) or `length` empty slots. */
  newTuple(items: ArrayLike<number> | number, type?: ObjectType): number {
    const length = typeof items === 'number' ? items : items.length;
    if (!Number.isInteger(length) || length < 0) throw indexError('length', length);
    const address = this.#typeAddress('newTuple', type, 'tuple');
    const tuple = this.#made('newTuple', this.#ex.tupleNew(address, length), `a ${this.#entry(address)!.type.name} of ${length} references`);
    if (typeof items !== 'number') this.#fill(tuple, items, (i, item) => this.setRef(tuple, i, item));
    return tuple;
  }

  /** A list holding `items` (each incref'd). */
  newList(items: ArrayLike<number> = [], type?: ObjectType): number {
    const address = this.#typeAddress('newList', type, 'list');
    const list = this.#made('newList', this.#ex.listNew(address), `a ${this.#entry(address)!.type.name}`);
    this.#fill(list, items, (_i, item) => this.listAppend(list, item));
    return list;
  }

  /** Fills a new container; on a bad item the container is released and the error rethrown. */
  #fill(container: number, items: ArrayLike<number>, put: (i: number, item: number) => void): void {
    try {
      for (let i = 0; i < items.length; i++) put(i, items[i]);
    } catch (error) {
      this.#ex.objectDecref(container);
      throw error;
    }
  }

  /** A boxed int; -5..256 are cached and immortal. */
  newInt(value: number | bigint): number {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) {
      throw new RangeError(`value must be a safe integer or a bigint, not ${value}`);
    }
    const big = BigInt(value);
    if (big !== BigInt.asIntN(64, big)) throw new RangeError(`value ${value} does not fit in 64 bits`);
    return this.#made('newInt', this.exports('newInt').intNew(big), 'an int');
  }

  /** A str holding the UTF-8 encoding of `text`. */
  newStr(text: string): number {
    if (typeof text !== 'string') throw new TypeError(`text must be a string, not ${typeof text}`);
    const bytes = encoder.encode(text);
    const s = this.#made('newStr', this.exports('newStr').strNew(bytes.length), `a str of ${bytes.length} bytes`);
    new Uint8Array(this.#ex.memory.buffer, this.#ex.objectData(s) >>> 0, bytes.length).set(bytes);
    return s;
  }

  /**
   * sys.intern: the one interned str equal to `s` (a str object or a JS string). Interned
   * strings are immortal; the caller keeps its own reference to `s`.
   */
  intern(s: number | string): number {
    if (typeof s === 'string') {
      const fresh = this.newStr(s);
      const interned = this.intern(fresh);
      if (interned !== fresh) this.#ex.objectDecref(fresh);
      return interned;
    }
    this.#address('intern', s);
    const interned = this.exports('intern').strIntern(s);
    if (interned === FAILED) {
      throw this.#error('intern', s, this.#ex.objectError(), { expected: 'a str', allocating: 'a larger table of interned strings' });
    }
    return interned >>> 0;
  }

  // ───────────── values ─────────────

  intValue(o: number): number | bigint {
    const data = this.#data('intValue', o, 4, 'an int');
    const value = new DataView(this.#ex.memory.buffer).getBigInt64(data, true);
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  }

  strValue(o: number): string {
    const data = this.#data('strValue', o, 5, 'a str');
    return decoder.decode(new Uint8Array(this.#ex.memory.buffer, data, this.#ex.objectDataBytes(o) >>> 0));
  }

  /** A live view of a fixed object's raw data; detached when memory grows. */
  objectData(o: number): Uint8Array {
    const data = this.#data('objectData', o, 1, 'a fixed object');
    return new Uint8Array(this.#ex.memory.buffer, data, this.#ex.objectDataBytes(o) >>> 0);
  }

  #data(operation: string, o: number, kind: number, what: string): number {
    this.#address(operation, o);
    const ex = this.exports(operation);
    const actual = ex.objectKind(o);
    if (actual === 0) throw new InvalidObjectError(operation, o);
    if (actual !== kind) throw new ObjectTypeError(operation, o, `${this.#describe(o)} is not ${what}`);
    return ex.objectData(o) >>> 0;
  }

  // ───────────── reference counting ─────────────

  // On a free-threaded heap these three run lock-free, each between the world's enter() and
  // exit() (a stopped world parks them at the entry), written out in each: a closure or a try
  // costs the hot path a few ns, and a call that throws out of the core has broken the heap,
  // which then refuses every stop (so a word left ATTACHED stalls nobody). An address the lock-free check refuses
  // is checked again under the heap mutex (docs/free-threaded.md, "Address checks") before the
  // InvalidObjectError, so the refusal is exact. Elsewhere the second test costs nothing.

  incref(o: number): void {
    this.#address('incref', o);
    const ex = this.exports('incref');
    const world = this.#world;
    world?.enter();
    const status = ex.objectIncref(o);
    world?.exit();
    if (status !== 0 && (!this.#mutex || this.#locked('incref', () => ex.objectIncref(o)) !== 0)) {
      throw new InvalidObjectError('incref', o);
    }
  }

  /** Releases a reference; at zero the object is finalized, its references released, and it is freed. */
  decref(o: number): void {
    this.#address('decref', o);
    const ex = this.exports('decref');
    // The world is left before the mutex is waited for: a thread waiting attached would stall a stop.
    const world = this.#world;
    world?.enter();
    const status = ex.objectDecref(o);
    world?.exit();
    if (status === 0) return;
    if (this.#mutex && (status === NEEDS_LOCK || status === NOT_AN_OBJECT)) {
      if (this.#locked('decref', () => this.#ex.objectDecrefLocked!(o)) === 0) return;
    }
    throw new InvalidObjectError('decref', o);
  }

  refcount(o: number): number {
    this.#address('refcount', o);
    const ex = this.exports('refcount');
    const world = this.#world;
    world?.enter();
    let count = ex.objectRefcount(o);
    world?.exit();
    if (count === FAILED && this.#mutex) count = this.#locked('refcount', () => ex.objectRefcount(o));
    if (count === FAILED) throw new InvalidObjectError('refcount', o);
    return count >>> 0;
  }

  /** Whether incref and decref leave the object alone (small ints, interned strings). */
  isImmortal(o: number): boolean {
    return this.refcount(o) >= IMMORTAL;
  }

  /** References the object has room for: its slots, or the items of a tuple or list. */
  length(o: number): number {
    this.#address('length', o);
    const n = this.exports('length').objectLength(o);
    if (n === FAILED) throw new InvalidObjectError('length', o);
    return n >>> 0;
  }

  /** The borrowed reference in slot (or item) `index`, or null if it is empty. */
  getRef(o: number, index: number): number | null {
    this.#address('getRef', o);
    if (!isAddress(index)) throw indexError('index', index);
    const value = this.exports('getRef').objectGetRef(o, index);
    if (value === FAILED) throw this.#error('getRef', o, this.#ex.objectError(), { index });
    return value === 0 ? null : value >>> 0;
  }

  /** Stores a new reference to `value` (null: empty) in slot `index`, releasing what the slot held. */
  setRef(o: number, index: number, value: number | null): void {
    this.#address('setRef', o);
    if (!isAddress(index)) throw indexError('index', index);
    const v = value ?? 0;
    if (!isAddress(v)) throw addressError('value', value);
    const status = this.exports('setRef').objectSetRef(o, index, v);
    if (status !== 0) throw this.#error('setRef', o, status, { index, value: v });
  }

  listAppend(list: number, item: number): void {
    this.#address('listAppend', list);
    if (!isAddress(item)) throw addressError('item', item);
    const status = this.exports('listAppend').listAppendItem(list, item);
    if (status !== 0) {
      const allocating = `room for item ${this.#ex.objectLength(list) >>> 0} of ${this.#describe(list)}`;
      throw this.#error('listAppend', list, status, { expected: 'a list', value: item, allocating });
    }
  }

  /** list.pop(index): removes the item and hands its reference to the caller (null if the item was empty). */
  listPop(list: number, index = -1): number | null {
    this.#address('listPop', list);
    if (!Number.isInteger(index) || index < -(2 ** 31) || index >= 2 ** 31) throw new RangeError(`index must be a 32-bit integer, not ${index}`);
    const item = this.exports('listPop').listPopItem(list, index);
    if (item === FAILED) throw this.#error('listPop', list, this.#ex.objectError(), { expected: 'a list', index });
    return item === 0 ? null : item >>> 0;
  }

  // ───────────── dicts ─────────────

  /** An empty dict (CPython's compact dict: assembly/objects/dict.ts). */
  newDict(): number {
    return this.#made('newDict', this.exports('newDict').dictNew(), 'a dict');
  }

  /** d[key] = value: new references to the key and the value; an existing key keeps its key object. */
  dictSet(d: number, key: DictKey, value: number): void {
    this.#address('dictSet', d);
    if (!isAddress(value)) throw addressError('value', value);
    this.#withKey('dictSet', key, (k) => {
      const status = this.exports('dictSet').dictSetItem(d, k, value);
      if (status === 0) return;
      const v = status === BAD_VALUE && this.isObject(k) ? value : k;
      throw this.#error('dictSet', d, status, { expected: 'a dict', value: v, allocating: `room for entry ${this.#ex.objectLength(d) >>> 0} of ${this.#describe(d)}` });
    });
  }

  /** d[key] (a borrowed reference), or null when the key is absent. */
  dictGet(d: number, key: DictKey): number | null {
    this.#address('dictGet', d);
    return this.#withKey('dictGet', key, (k) => {
      const value = this.exports('dictGet').dictGetItem(d, k);
      if (value === FAILED) throw this.#error('dictGet', d, this.#ex.objectError(), { expected: 'a dict', value: k });
      return value === 0 ? null : value >>> 0;
    });
  }

  /** del d[key]: whether the key was there. */
  dictDelete(d: number, key: DictKey): boolean {
    this.#address('dictDelete', d);
    return this.#withKey('dictDelete', key, (k) => {
      const status = this.exports('dictDelete').dictDelItem(d, k);
      if (status === KEY) return false;
      if (status !== 0) throw this.#error('dictDelete', d, status, { expected: 'a dict', value: k });
      return true;
    });
  }

  /** The (key, value) pairs in insertion order, as borrowed references. */
  dictItems(d: number): Array<[number, number]> {
    this.#address('dictItems', d);
    const ex = this.exports('dictItems');
    const entries = ex.dictEntriesOf(d);
    if (entries === FAILED) throw this.#error('dictItems', d, ex.objectError(), { expected: 'a dict' });
    const n = new Uint32Array(ex.memory.buffer, ex.ioBuffer() >>> 0, 1)[0];
    const words = new Uint32Array(ex.memory.buffer, entries >>> 0, n * 2);
    const items: Array<[number, number]> = [];
    for (let i = 0; i < words.length; i += 2) {
      if (words[i] !== 0) items.push([words[i], words[i + 1]]);
    }
    return items;
  }

  /** The keys in insertion order, as borrowed references. */
  dictKeys(d: number): number[] {
    return this.dictItems(d).map(([key]) => key);
  }

  /** The dict's index table and entry counts, as dictobject.c would show them. */
  dictLayout(d: number): DictLayout {
    this.#address('dictLayout', d);
    const ex = this.exports('dictLayout');
    const status = ex.dictLayout(d);
    if (status !== 0) throw this.#error('dictLayout', d, status, { expected: 'a dict' });
    const io = new Uint32Array(ex.memory.buffer, ex.ioBuffer() >>> 0, ex.ioWords());
    const [size, indexBytes, usable, entries] = io;
    const indices = Array.from(new Int32Array(io.buffer, io.byteOffset + LAYOUT_WORDS * 4, Math.min(size, io.length - LAYOUT_WORDS)));
    return { size, indexBytes, usable, entries, indices };
  }

  /** Runs `use` with the key as an object address: a JS string or bigint becomes a temporary str or int. */
  #withKey<T>(operation: string, key: DictKey, use: (key: number) => T): T {
    if (typeof key === 'number') {
      if (!isAddress(key)) throw addressError(`${operation}: key`, key);
      return use(key);
    }
    let temporary: number;
    if (typeof key === 'string') temporary = this.newStr(key);
    else if (typeof key === 'bigint') temporary = this.newInt(key);
    else throw new TypeError(`${operation}: key must be an object address, a string or a bigint, not ${typeof key}`);
    try {
      return use(temporary);
    } finally {
      this.#ex.objectDecref(temporary);
    }
  }

  // ───────────── floats, bools and None ─────────────

  newFloat(value: number): number {
    if (typeof value !== 'number') throw new TypeError(`value must be a number, not ${typeof value}`);
    return this.#made('newFloat', this.exports('newFloat').floatNew(value), 'a float');
  }

  floatValue(o: number): number {
    return new DataView(this.#ex.memory.buffer).getFloat64(this.#data('floatValue', o, 8, 'a float'), true);
  }

  /** False or True: immortal singletons, as in CPython. */
  newBool(value: boolean): number {
    if (typeof value !== 'boolean') throw new TypeError(`value must be a boolean, not ${typeof value}`);
    return this.#made('newBool', this.exports('newBool').boolGet(value ? 1 : 0), 'a bool');
  }

  boolValue(o: number): boolean {
    return new DataView(this.#ex.memory.buffer).getBigInt64(this.#data('boolValue', o, 9, 'a bool'), true) !== 0n;
  }

  /** None: an immortal singleton. */
  none(): number {
    return this.#made('none', this.exports('none').noneGet(), 'None');
  }

  // ───────────── JSON graphs ─────────────

  /**
   * Builds the graph of a JSON value (JSON.parse's results, or bigints for ints) in one call
   * into the core: objects become dicts (str keys), arrays lists, strings strs, integers ints,
   * other numbers floats, true/false/null the singletons. Returns a new reference to the root.
   */
  fromJSON(value: unknown): number {
    const { words, text } = (this.#tapeWriter ??= new TapeWriter()).write(value);
    const ex = this.exports('fromJSON');
    // The text goes straight into the block, encoded there: at most 3 bytes per UTF-16 unit.
    const bytes = words.length + text.length * 3;
    const block = ex.scratchAlloc(bytes) >>> 0;
    if (block === 0) throw new OutOfMemoryError('fromJSON', bytes, ex.memory.buffer.byteLength, this.#maxMemory, 'the tape of the document');
    new Uint8Array(ex.memory.buffer, block, words.length).set(words);
    const textBytes = encoder.encodeInto(text, new Uint8Array(ex.memory.buffer, block + words.length, text.length * 3)).written;
    const root = ex.jsonBuild(block, words.length >>> 2, block + words.length, textBytes) >>> 0;
    ex.scratchFree(block);
    if (root === 0) throw this.#error('fromJSON', 0, ex.objectError(), { allocating: `the graph of a ${bytes}-byte tape` });
    return root;
  }

  /**
   * Builds the graph of JSON text (a string, or its UTF-8 bytes as an HTTP body arrives) in
   * one call into the core, without making JS values: as fromJSON(JSON.parse(text)) would,
   * except that integers beyond 2^53 stay exact up to 64 bits (floats beyond, as JSON.parse
   * makes them), dict keys keep the text's order, a duplicate key keeps its last value (as
   * JSON.parse and json.loads do), and a lone surrogate escape becomes U+FFFD.
   * Malformed text is a SyntaxError naming the byte offset.
   */
  parseJSON(text: string | Uint8Array): number {
    const isString = typeof text === 'string';
    if (!isString && !(text instanceof Uint8Array)) throw new TypeError(`text must be a string or a Uint8Array, not ${typeof text}`);
    const ex = this.exports('parseJSON');
    const room = isString ? text.length * 3 : text.length;
    const block = ex.scratchAlloc(room) >>> 0;
    if (block === 0) throw new OutOfMemoryError('parseJSON', room, ex.memory.buffer.byteLength, this.#maxMemory, 'a copy of the text');
    try {
      const into = new Uint8Array(ex.memory.buffer, block, room);
      const bytes = isString ? encoder.encodeInto(text, into).written : (into.set(text), text.length);
      const root = ex.jsonParse(block, bytes) >>> 0;
      const [n, list] = new Uint32Array(ex.memory.buffer, ex.ioBuffer() >>> 0, 2);
      if (root === 0) {
        const status = ex.objectError();
        if (status !== SYNTAX) throw this.#error('parseJSON', 0, status, { allocating: `the graph of ${bytes} bytes of JSON` });
        throw new SyntaxError(`parseJSON: ${SYNTAX_PROBLEMS[list]} at byte ${n} of ${bytes}`);
      }
      if (n > 0) this.#convertFloats(ex, n, list);
      return root;
    } finally {
      ex.scratchFree(block);
    }
  }

  /** The floats parseJSON left to the host: each one's text through Number(), the correctly rounded double. */
  #convertFloats(ex: ObjectExports, n: number, list: number): void {
    const memory = ex.memory.buffer;
    const entries = new Uint32Array(memory, list, n * PENDING_WORDS);
    const view = new DataView(memory);
    for (let i = 0; i < entries.length; i += PENDING_WORDS) {
      const digits = String.fromCharCode(...new Uint8Array(memory, entries[i + 1], entries[i + 2]));
      view.setFloat64(ex.objectData(entries[i]) >>> 0, Number(digits), true);
    }
    ex.scratchFree(list);
  }

  /**
   * The JSON value of the graph under o, read in one call: dicts become objects (int keys
   * as their decimal strings), lists and tuples arrays, ints numbers (bigints beyond 2^53),
   * floats numbers, bools booleans, None null. Other kinds and circular graphs throw ObjectTypeError.
   */
  toJSON(o: number): JsonValue {
    this.#address('toJSON', o);
    const ex = this.exports('toJSON');
    const address = this.#dumped('toJSON', ex, ex.jsonDump(o) >>> 0, o);
    const [words, text, textBytes] = new Uint32Array(ex.memory.buffer, ex.ioBuffer() >>> 0, 3);
    try {
      return readTape(ex.memory.buffer, { address, words, text, textBytes });
    } finally {
      ex.scratchFree(address);
      if (text !== 0) ex.scratchFree(text);
    }
  }

  /**
   * The JSON text of the graph under o, written in one call into the core: what
   * JSON.stringify(toJSON(o)) gives, except that dict keys keep their insertion order (a JS
   * object puts integer-like keys first) and ints past 2^53 keep every digit.
   */
  stringifyJSON(o: number): string {
    this.#address('stringifyJSON', o);
    const ex = this.exports('stringifyJSON');
    const address = this.#dumped('stringifyJSON', ex, ex.jsonDumpText(o) >>> 0, o);
    const [bytes, pending, count] = new Uint32Array(ex.memory.buffer, ex.ioBuffer() >>> 0, 3);
    try {
      const text = decoder.decode(new Uint8Array(ex.memory.buffer, address, bytes));
      if (count === 0) return text;
      // The floats the core left: shortest digits past 15, or an exponent (Number::toString).
      const view = new DataView(ex.memory.buffer, pending, count * PENDING_FLOAT_BYTES);
      // String(v) is JSON.stringify(v) for a finite number, and the core wrote the others.
      const parts: string[] = new Array(count * 2 + 1);
      let from = 0;
      for (let i = 0; i < count; i++) {
        const at = view.getUint32(i * PENDING_FLOAT_BYTES, true);
        parts[i * 2] = text.slice(from, at);
        parts[i * 2 + 1] = String(view.getFloat64(i * PENDING_FLOAT_BYTES + 4, true));
        from = at;
      }
      parts[count * 2] = text.slice(from);
      return parts.join('');
    } finally {
      ex.scratchFree(address);
      if (pending !== 0) ex.scratchFree(pending);
    }
  }

  /** A dump's block, or the error of a dump that failed (with the object at fault in IO[0]). */
  #dumped(operation: string, ex: ObjectExports, address: number, o: number): number {
    if (address !== 0) return address;
    const status = ex.objectError();
    const at = new Uint32Array(ex.memory.buffer, ex.ioBuffer() >>> 0, 1)[0];
    if (status === WRONG_KIND) return this.#refuse(operation, o, `${this.#describe(at)} has no JSON value`);
    if (status === BAD_VALUE) return this.#refuse(operation, o, `${this.#describe(at)} has an empty slot or is too large for a tape`);
    throw this.#error(operation, o, status, { value: at, allocating: 'the tape of the graph' });
  }

  #refuse(operation: string, o: number, detail: string): never {
    throw new ObjectTypeError(operation, o, detail);
  }

  // ───────────── weak references ─────────────

  /**
   * weakref.ref(o, callback): a new weakref object (owned by the caller). The callback runs
   * with the weakref when o dies, unless the weakref has died first.
   */
  weakref(o: number, callback?: WeakrefCallback): number {
    this.#address('weakref', o);
    if (callback !== undefined && typeof callback !== 'function') throw new TypeError('callback must be a function');
    const wr = this.exports('weakref').weakrefNew(o, callback ? 1 : 0) >>> 0;
    if (wr === 0) {
      const status = this.#ex.objectError();
      const allocating = status === OUT_OF_MEMORY ? `a weakref to ${this.#describe(o)}` : undefined;
      throw this.#error('weakref', o, status, { expected: 'weakly referenceable', allocating });
    }
    if (callback) this.#callbacks.set(wr, callback);
    return wr;
  }

  /** The weakref's referent (borrowed), or null once it has died. */
  weakrefGet(wr: number): number | null {
    this.#address('weakrefGet', wr);
    const o = this.exports('weakrefGet').weakrefGet(wr);
    if (o === FAILED) throw this.#error('weakrefGet', wr, this.#ex.objectError(), { expected: 'a weakref' });
    return o === 0 ? null : o >>> 0;
  }

  // ───────────── called from Wasm (through ObjectImports) ─────────────

  runFinalizer(o: number): void {
    const entry = this.#entry(this.#typeWord(o));
    if (!entry?.finalizer) {
      if (entry?.finalizes) {
        this.reportUnraisable(
          new Error(`${entry.type.name}'s finalizer is not defined in this instance: define the type here too (defineType adopts it by name)`),
          o, `Exception ignored in: <finalizer of ${this.#describe(o)}>`,
        );
      }
      return;
    }
    try {
      entry.finalizer(o);
    } catch (error) {
      // A heap found corrupted must stop the Wasm call under this finalizer too.
      if (error instanceof HeapCorruptionError) throw error;
      this.reportUnraisable(error, o, `Exception ignored in: <finalizer of ${this.#describe(o)}>`);
    }
  }

  runWeakrefCallback(wr: number): void {
    const callback = this.#callbacks.get(wr);
    if (!callback) return;
    try {
      callback(wr);
    } catch (error) {
      if (error instanceof HeapCorruptionError) throw error;
      this.reportUnraisable(error, wr, `Exception ignored in: <callback of ${this.#describe(wr)}>`);
    }
  }

  dropWeakrefCallback(wr: number): void {
    this.#callbacks.delete(wr);
  }

  reportUnraisable(error: unknown, object: number, message: string): void {
    try {
      this.unraisableHook({ error, object, message });
    } catch (hookError) {
      // CPython falls back to the default hook when the hook itself fails.
      this.gc.stderr(`${message}\n${String(error)}\n(unraisableHook failed: ${String(hookError)})\n`);
    }
  }

  /** `<Node object at 0x...>`, as CPython's default repr reads. */
  #describe(o: number): string {
    return `<${this.#entry(this.#typeWord(o))?.type.name ?? 'object'} object at ${hex(o)}>`;
  }

  /** CPython's debug output names an object as `<Node 0x...>`. */
  debugName(o: number): string {
    return `<${this.#entry(this.#typeWord(o))?.type.name ?? 'object'} 0x${o.toString(16)}>`;
  }

  /** The type word of an object Wasm handed over (so known to be live). */
  #typeWord(o: number): number {
    if (this.#u32.buffer !== this.#ex.memory.buffer) this.#u32 = new Uint32Array(this.#ex.memory.buffer);
    return this.#u32[(o + 4) >>> 2];
  }

  // ───────────── errors ─────────────

  #address(operation: string, o: unknown): asserts o is number {
    if (!isAddress(o)) throw addressError(`${operation}: address`, o);
  }


  /** The address of `type`, or of the built-in type of `kind` when none is given (known once set up). */
  #typeAddress(operation: string, type: ObjectType | undefined, kind: ObjectKind): number {
    this.exports(operation);
    const given = type ?? this.#builtins.find((builtin) => builtin.kind === kind);
    const entry = given && this.#entry(given.address);
    // By identity: another heap's type records sit at the same addresses.
    if (!entry || entry.type !== given) {
      throw new TypeError(`${operation}: type must be a type returned by this heap's defineType`);
    }
    if (entry.type.kind !== kind) throw new TypeError(`${operation}: ${entry.type.name} is a '${entry.type.kind}' type, not '${kind}'`);
    return entry.type.address;
  }

  /** A constructor's result: the new object, or the error of `allocating` it. */
  #made(operation: string, address: number, allocating: string): number {
    if (address === 0) throw this.#error(operation, 0, this.#ex.objectError(), { allocating });
    return address >>> 0;
  }

  #error(operation: string, o: number, status: number, context: ErrorContext = {}): Error {
    switch (status) {
      case NOT_AN_OBJECT:
        return new InvalidObjectError(operation, o);
      case BAD_VALUE:
        return new InvalidObjectError(operation, o, 'bad-value', context.value ?? 0);
      case INDEX: {
        const n = this.#ex.objectLength(o) >>> 0;
        return new RangeError(`${operation}(${hex(o)}): index ${context.index ?? 0} is out of range for ${this.#describe(o)} with ${n} references`);
      }
      case WRONG_KIND:
        return new ObjectTypeError(operation, o, `${this.#describe(o)} is not ${context.expected ?? 'of the right kind'}`);
      case OUT_OF_MEMORY:
        return new OutOfMemoryError(operation, 0, this.#ex.memory.buffer.byteLength, this.#maxMemory, context.allocating);
      case UNHASHABLE:
        return new ObjectTypeError(operation, o, `key ${this.#describe(context.value ?? 0)} is not a str or an int`);
      case CYCLE:
        return new ObjectTypeError(operation, o, `the graph is circular: ${this.#describe(context.value ?? 0)} contains itself`);
      default:
        return new Error(`${operation}(${hex(o)}): the heap reported error ${status}`);
    }
  }
}
