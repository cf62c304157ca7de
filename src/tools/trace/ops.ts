// The plumbing every importer shares: where ops go (OpSink, ChunkBuilder) and how addresses
// become ids (AddressMap).
//
// Glossary
//   op        one heap operation: alloc, free or realloc of a block named by an id
//   chunk     a Uint32Array of op triples [kind, id, size], handed to the consumer whole
//   address   how address-based formats (mtrace, logalloc) name a block: an opaque token such
//             as "0x55ccfb66c2a0" or "#12", compared as text
//   live      allocated and not yet freed

import { OP_ALLOC, OP_FIELDS, OP_FREE, OP_REALLOC, type OpKind } from './format.js';

/** Where an importer puts the ops it produces. */
export interface OpSink {
  push(kind: OpKind, id: number, size: number): void;
}

/** What an importer knows at the end that the op counts do not say; see TraceSummary. */
export interface ImportCounts {
  idLimit: number;
  liveAtEnd: number;
  skippedFrees: number;
  impliedFrees: number;
  otherProcessEvents: number;
}

/** Turns the event lines of one format into ops. Blank lines and comments never reach it. */
export interface LineImporter {
  /** Takes one line (no newline); throws TraceFormatError if it is malformed or inconsistent. */
  line(text: string, lineNumber: number): void;
  /** Called once after the last line; throws TraceFormatError if the input stopped mid-event. */
  end(lineNumber: number): ImportCounts;
}

/**
 * Packs ops into chunks of a fixed number of ops. Full chunks wait in `ready` until the reader
 * hands them out, which it does after every piece of input: the queue stays short.
 */
export class ChunkBuilder implements OpSink {
  readonly ready: Uint32Array[] = [];
  allocs = 0;
  frees = 0;
  reallocs = 0;
  private chunk: Uint32Array;
  private filled = 0;

  constructor(private readonly chunkOps: number) {
    this.chunk = new Uint32Array(chunkOps * OP_FIELDS);
  }

  push(kind: OpKind, id: number, size: number): void {
    const at = this.filled;
    this.chunk[at] = kind;
    this.chunk[at + 1] = id;
    this.chunk[at + 2] = size;
    this.filled = at + OP_FIELDS;
    if (kind === OP_ALLOC) this.allocs++;
    else if (kind === OP_FREE) this.frees++;
    else this.reallocs++;
    if (this.filled === this.chunk.length) {
      this.ready.push(this.chunk);
      this.chunk = new Uint32Array(this.chunkOps * OP_FIELDS);
      this.filled = 0;
    }
  }

  /** The ops pushed since the last full chunk, copied into an array of their own size. */
  takePartial(): Uint32Array {
    const partial = this.chunk.slice(0, this.filled);
    this.filled = 0;
    return partial;
  }
}

/**
 * Maps the addresses of live blocks to ids, for importers of address-based formats. Memory is
 * bounded by the live blocks: an address leaves the map when its block is freed, and its id
 * goes on a stack to be handed out again.
 *
 * Invariant: an address is in `live` iff its block was allocated while tracing and not freed
 * since; an id is in `live`'s values or in `releasedIds` (never both) iff it is below nextId.
 */
export class AddressMap {
  skippedFrees = 0;
  impliedFrees = 0;
  private readonly live = new Map<string, number>();
  private readonly releasedIds: number[] = [];
  private nextId = 0;

  constructor(private readonly sink: OpSink) {}

  allocate(address: string, size: number): void {
    const stale = this.live.get(address);
    if (stale !== undefined) {
      // The allocator handed out a live address again, so the block was freed untraced.
      this.impliedFrees++;
      this.release(stale);
    }
    const id = this.releasedIds.pop() ?? this.nextId++;
    this.live.set(address, id);
    this.sink.push(OP_ALLOC, id, size);
  }

  free(address: string): void {
    const id = this.live.get(address);
    if (id === undefined) {
      this.skippedFrees++;
      return;
    }
    this.live.delete(address);
    this.release(id);
  }

  reallocate(oldAddress: string, newAddress: string, size: number): void {
    const id = this.live.get(oldAddress);
    if (id === undefined) {
      // Allocated before tracing began: the block is new to us, so it starts here.
      this.skippedFrees++;
      this.allocate(newAddress, size);
      return;
    }
    this.live.delete(oldAddress);
    const stale = this.live.get(newAddress);
    if (stale !== undefined) {
      this.impliedFrees++;
      this.live.delete(newAddress);
      this.release(stale);
    }
    this.live.set(newAddress, id);
    this.sink.push(OP_REALLOC, id, size);
  }

  /** Frees every live block: the process image that owned them is gone (exec). */
  releaseAll(): void {
    for (const id of this.live.values()) this.release(id);
    this.live.clear();
  }

  counts(): ImportCounts {
    return {
      idLimit: this.nextId,
      liveAtEnd: this.live.size,
      skippedFrees: this.skippedFrees,
      impliedFrees: this.impliedFrees,
      otherProcessEvents: 0,
    };
  }

  private release(id: number): void {
    this.releasedIds.push(id);
    this.sink.push(OP_FREE, id, 0);
  }
}
