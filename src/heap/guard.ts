// The host boundary of the core: what a trap inside Wasm becomes, and what the heap does after.
//
// The core traps in three ways: an operation that finds the heap corrupted calls corrupt()
// (assembly/memory/header.ts), which records the invariant and executes `unreachable`; a
// debug-build assertion calls the abort import; anything else (a load out of bounds through a
// link the program overwrote) is a plain trap. Each becomes a HeapCorruptionError naming the
// operation and, where the core recorded one, the invariant.
//
// Such a call stopped half way: lists may be half moved, a collection half done, the
// collector's "collecting" flag left set. Going on would hand out memory from structures that
// are known to be wrong, which is how silent corruption starts. So the heap is broken from
// then on: every later call, from the host or from a finalizer, throws a HeapCorruptionError
// at once (its `firstFound` is the first error), and only dispose() is left. A call during
// which the heap broke throws too, even if a finalizer swallowed the first error and Wasm
// returned normally.
//
// Where the catching happens: V8 makes a JS-to-Wasm call fast only where the export is called
// directly, and a wrapper function in between costs 3-5 ns a call (measured on the churn
// loop). So the Heap's methods call the exports themselves inside a try (src/heap/heap.ts), and
// wrap() serves the gc module, whose calls are few; once broken, the Heap swaps its exports
// and its object space for refusing() stand-ins, so the check costs nothing before that.

import { HeapCorruptionError, INVARIANTS } from './errors.js';

/** A debug-build assertion failed inside the core (thrown by the abort import). */
export class CoreAssertion extends Error {
  override name = 'CoreAssertion';
}

/** What the guard reads from the raw exports after a trap. */
interface CoreDiagnostics {
  corruption(): number;
  errorAddress(): number;
}

/** Exports the API knows by another name: the operation an error names. */
const OPERATION_NAMES: Record<string, string> = {
  gcCollect: 'gc.collect',
  gcFreeze: 'gc.freeze',
  gcUnfreeze: 'gc.unfreeze',
  gcClearGarbage: 'gc.clearGarbage',
  gcListObjects: 'gc.getObjects',
  gcListReferents: 'gc.getReferents',
  gcIsTracked: 'gc.isTracked',
  gcIsFinalized: 'gc.isFinalized',
  gcGenerationSize: 'gc.getFreezeCount',
};

type CoreFunction = (...args: unknown[]) => unknown;

export class CoreGuard {
  /** The error that broke the heap, once one has. */
  broken: HeapCorruptionError | undefined;
  readonly #diagnostics: CoreDiagnostics;
  readonly #listeners: (() => void)[] = [];

  constructor(diagnostics: CoreDiagnostics) {
    this.#diagnostics = diagnostics;
  }

  /** Calls `listener` once, when the heap breaks. */
  onBreak(listener: () => void): void {
    this.#listeners.push(listener);
  }

  /** A copy of `exports` whose functions are guarded; other exports (memory) are passed on. */
  wrap<T extends object>(exports: T): T {
    const guarded: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(exports)) {
      guarded[name] = typeof value === 'function' ? this.#guard(OPERATION_NAMES[name] ?? name, value as CoreFunction) : value;
    }
    return guarded as T;
  }

  #guard(operation: string, fn: CoreFunction): CoreFunction {
    return (...args: unknown[]) => {
      if (this.broken) throw this.refusal(operation);
      let result: unknown;
      try {
        result = fn(...args);
      } catch (error) {
        throw this.failure(operation, error);
      }
      if (this.broken) throw this.refusal(operation);
      return result;
    };
  }

  /** What the heap throws for `operation` once it is broken. */
  refusal(operation: string): HeapCorruptionError {
    const first = this.broken!;
    return new HeapCorruptionError(first.invariant, first.address, operation, first);
  }

  /**
   * A stand-in for the exports or the object space of a broken heap: every function throws
   * refusal(); `memory` stays readable, for a post-mortem; `gc` is a stand-in too.
   */
  refusing<T>(memory: WebAssembly.Memory, prefix = ''): T {
    const gc = prefix ? undefined : this.refusing<unknown>(memory, 'gc.');
    return new Proxy({} as object, {
      get: (_target, name) => {
        if (name === 'memory') return memory;
        if (name === 'gc') return gc;
        return () => {
          throw this.refusal(prefix + String(name));
        };
      },
    }) as T;
  }

  /** What an error thrown by a call into the core becomes; a trap or an assertion breaks the heap. */
  failure(operation: string, error: unknown): unknown {
    if (error instanceof HeapCorruptionError) {
      if (!this.broken) this.#break(error);
      return error;
    }
    let invariant: string;
    let address = 0;
    if (error instanceof WebAssembly.RuntimeError) {
      const code = this.#diagnostics.corruption();
      if (code) {
        invariant = INVARIANTS[code] ?? `invariant ${code}`;
        address = this.#diagnostics.errorAddress() >>> 0;
      } else {
        invariant = `trap inside the core: ${error.message}`;
      }
    } else if (error instanceof CoreAssertion) {
      invariant = error.message;
    } else if (error instanceof RangeError && /call stack/i.test(error.message)) {
      invariant = `trap inside the core: ${error.message}`;
    } else {
      return error;
    }
    if (this.broken) return this.refusal(operation);
    const corruption = new HeapCorruptionError(invariant, address, operation);
    this.#break(corruption);
    return corruption;
  }

  #break(error: HeapCorruptionError): void {
    this.broken = error;
    for (const listener of this.#listeners) listener();
  }
}
