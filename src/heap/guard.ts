// The host boundary of the core: every function the Wasm instance exports, wrapped so that
// no trap reaches a caller bare.
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
// which the heap became broken throws too, even if a finalizer swallowed the first error and
// Wasm returned normally.

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
  objectNew: 'newObject',
  tupleNew: 'newTuple',
  listNew: 'newList',
  intNew: 'newInt',
  strNew: 'newStr',
  strIntern: 'intern',
  typeDefine: 'defineType',
  objectIncref: 'incref',
  objectDecref: 'decref',
  objectRefcount: 'refcount',
  objectLength: 'length',
  objectGetRef: 'getRef',
  objectSetRef: 'setRef',
  listAppendItem: 'listAppend',
  listPopItem: 'listPop',
  weakrefNew: 'weakref',
  gcCollect: 'gc.collect',
  gcFreeze: 'gc.freeze',
  gcUnfreeze: 'gc.unfreeze',
  gcClearGarbage: 'gc.clearGarbage',
  gcListObjects: 'gc.getObjects',
  gcListReferents: 'gc.getReferents',
};

type CoreFunction = (...args: never[]) => unknown;

export class CoreGuard {
  #broken: HeapCorruptionError | undefined;
  readonly #diagnostics: CoreDiagnostics;

  constructor(diagnostics: CoreDiagnostics) {
    this.#diagnostics = diagnostics;
  }

  /** The error that broke the heap, if one has. */
  get broken(): HeapCorruptionError | undefined {
    return this.#broken;
  }

  /** A copy of `exports` whose functions are guarded; other exports (memory) are passed on. */
  wrap<T extends object>(exports: T): T {
    const guarded: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(exports)) {
      guarded[name] = typeof value === 'function' ? this.#guard(OPERATION_NAMES[name] ?? name, value as CoreFunction) : value;
    }
    return guarded as T;
  }

  /**
   * The guarded function. One wrapper per arity, without rest parameters: V8 then inlines the
   * wrapper into the API's methods, and a call costs a compare more than the bare export.
   */
  #guard(operation: string, fn: CoreFunction): CoreFunction {
    const f = fn as (...args: unknown[]) => unknown;
    const enter = () => {
      if (this.#broken) throw this.#refusal(operation);
    };
    const leave = (result: unknown) => {
      if (this.#broken) throw this.#refusal(operation);
      return result;
    };
    const fail = (error: unknown) => this.#failure(operation, error);
    switch (f.length) {
      case 0:
        return () => {
          enter();
          try {
            return leave(f());
          } catch (error) {
            throw fail(error);
          }
        };
      case 1:
        return (a: unknown) => {
          enter();
          try {
            return leave(f(a));
          } catch (error) {
            throw fail(error);
          }
        };
      case 2:
        return (a: unknown, b: unknown) => {
          enter();
          try {
            return leave(f(a, b));
          } catch (error) {
            throw fail(error);
          }
        };
      default:
        return (...args: unknown[]) => {
          enter();
          try {
            return leave(f(...args));
          } catch (error) {
            throw fail(error);
          }
        };
    }
  }

  /** Throws at once if the heap is broken (for calls that are not wrapped). */
  enter(operation: string): void {
    if (this.#broken) throw this.#refusal(operation);
  }

  /** Passes a call's result on, unless the heap became broken during the call. */
  leave<T>(operation: string, result: T): T {
    if (this.#broken) throw this.#refusal(operation);
    return result;
  }

  /** What an error thrown by a call into the core becomes; a trap or an assertion breaks the heap. */
  failure(operation: string, error: unknown): unknown {
    return this.#failure(operation, error);
  }

  #refusal(operation: string): HeapCorruptionError {
    const first = this.#broken!;
    return new HeapCorruptionError(first.invariant, first.address, operation, first);
  }

  /** What a call that threw becomes; a trap or an assertion breaks the heap. */
  #failure(operation: string, error: unknown): unknown {
    if (error instanceof HeapCorruptionError) {
      this.#broken ??= error;
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
    this.#broken = new HeapCorruptionError(invariant, address, operation);
    return this.#broken;
  }
}
