// The plumbing every importer shares: where ops go (OpSink, ChunkBuilder) and how addresses
// become ids (AddressMap).
//
// Glossary
//   op        one heap operation: alloc, free or realloc of a block named by an id
//   chunk     a Uint32Array of op triples [kind, id, size], handed to the consumer whole
//   address   how address-based formats (mtrace, logalloc) name a block: a hex pointer of up to
//             64 bits such as "0x55ccfb66c2a0", or a block number "#12" (logalloc_munge.py).
//             Compared by value ("0x0A" is "0xa"); a block number never equals a pointer.
//   live      allocated and not yet freed
//   slot      one entry of AddressMap's hash table: an address and the id of its block

import {
  NO_SITE,
  OP_ALLOC,
  OP_FIELDS,
  OP_FREE,
  OP_REALLOC,
  type CallSite,
  type OpKind,
  type TraceChunk,
  type TraceSummary,
} from './format.js';

/** Where an importer puts the ops it produces. */
export interface OpSink {
  /** `site` is the call site of an alloc or realloc, declared before, or NO_SITE. */
  push(kind: OpKind, id: number, size: number, site?: number): void;
  /** Declares a site before the first op that uses it. */
  declareSite(site: CallSite): void;
}

/** What an importer knows at the end that the op counts do not say (TraceSummary documents each). */
export type ImportCounts = Pick<
  TraceSummary, 'idLimit' | 'liveAtEnd' | 'skippedFrees' | 'impliedFrees' | 'otherProcessEvents' | 'truncatedLines'
>;

/** Turns the event lines of one format into ops. Blank lines and comments never reach it. */
export interface LineImporter {
  /** Takes one line (no newline); throws TraceFormatError if it is malformed or inconsistent. */
  line(text: string, lineNumber: number): void;
  /**
   * Takes the last line of a stream that ended without a newline. A format whose writer ends
   * every line (mtrace) drops it, as the writer was cut off mid-line; the others read it as a line.
   */
  unterminatedLine(text: string, lineNumber: number): void;
  /** Takes a comment line, for a format whose comments may carry data ("# site" lines). */
  comment?(text: string, lineNumber: number): void;
  /** Called once after the last line; throws TraceFormatError if the input stopped mid-event. */
  end(lineNumber: number): ImportCounts;
}

/**
 * Packs ops into chunks of a fixed number of ops. Full chunks wait in `ready` until the reader
 * hands them out, which it does after every piece of input: the queue stays short. A chunk gets
 * a sites array only once one of its ops has a site, so traces without sites cost nothing more.
 */
export class ChunkBuilder implements OpSink {
  readonly ready: TraceChunk[] = [];
  allocs = 0;
  frees = 0;
  reallocs = 0;
  /** Sites declared in all. */
  siteCount = 0;
  private chunk: Uint32Array;
  private sites: Uint32Array | undefined;
  private declared: CallSite[] = [];
  private filled = 0;

  constructor(private readonly chunkOps: number) {
    this.chunk = new Uint32Array(chunkOps * OP_FIELDS);
  }

  push(kind: OpKind, id: number, size: number, site = NO_SITE): void {
    const at = this.filled;
    this.chunk[at] = kind;
    this.chunk[at + 1] = id;
    this.chunk[at + 2] = size;
    if (site !== NO_SITE) (this.sites ??= new Uint32Array(this.chunkOps))[at / OP_FIELDS] = site;
    this.filled = at + OP_FIELDS;
    if (kind === OP_ALLOC) this.allocs++;
    else if (kind === OP_FREE) this.frees++;
    else this.reallocs++;
    if (this.filled === this.chunk.length) {
      this.ready.push(this.finish(this.chunk));
      this.chunk = new Uint32Array(this.chunkOps * OP_FIELDS);
      this.filled = 0;
    }
  }

  declareSite(site: CallSite): void {
    this.declared.push(site);
    this.siteCount++;
  }

  /** The ops pushed since the last full chunk, copied into arrays of their own size. */
  takePartial(): TraceChunk {
    const partial = this.finish(this.chunk.slice(0, this.filled));
    this.filled = 0;
    return partial;
  }

  private finish(ops: Uint32Array): TraceChunk {
    const chunk: TraceChunk = { ops };
    if (this.sites !== undefined) chunk.sites = this.sites.slice(0, ops.length / OP_FIELDS);
    if (this.declared.length > 0) chunk.declaredSites = this.declared;
    this.sites = undefined;
    this.declared = [];
    return chunk;
  }
}

// ---- live addresses -----------------------------------------------------------------------------
//
// AddressMap keeps the live addresses in an open-addressing hash table of its own rather than a
// JS Map. malloc hands freed addresses straight out again, so the map sees the same keys deleted
// and re-inserted while hundreds of thousands of others are live, and V8's Map degrades under
// exactly that churn (importing a CPython mtrace became quadratic). Here a delete leaves no
// tombstone (backward-shift deletion, below), so churn costs what any insert or lookup costs.
//
// The table is one Uint32Array, SLOT_WORDS words per slot; addresses of up to 64 bits are kept
// exactly, as two 32-bit halves:
//
//     ╒══════════════════════ slot (4 words) ══════════════════════╕
//     ├──────────────┬──────────────┬──────────────┬──────────────┤
//     │ form         │ high         │ low          │ id           │
//     └──────────────┴──────────────┴──────────────┴──────────────┘
//       +0             +1             +2             +3
//     form: EMPTY, POINTER (a hex address) or BLOCK_NUMBER ("#n")
//     high, low: the value's upper and lower 32 bits
//     id: the id of the live block at that address
//
// Linear probing: a key lives at its home slot (hashOf & mask) or in the run of occupied slots
// that follows it. Invariant: for every occupied slot, no slot from its key's home up to it
// (cyclically) is empty, so a lookup may stop at the first empty slot. Emptying a slot would
// break that for the run after it, so the run is shifted back over the hole instead (Knuth's
// Algorithm R, TAOCP 6.4): no tombstones, no rehash on churn.

/** Words per slot; see the diagram. */
const SLOT_WORDS = 4;
const FORM = 0;
const HIGH = 1;
const LOW = 2;
const ID = 3;

const EMPTY = 0;
const POINTER = 1;
const BLOCK_NUMBER = 2;

// ---- tunables: INITIAL_SLOTS a power of two (the mask needs it); 0 < MAX_LOAD < 1 ----

/** Slots of a new table. */
const INITIAL_SLOTS = 1024;
/** The table doubles when more than this share of its slots is occupied. At 1/2, linear
 *  probing reads 1.5 slots per hit and 2.5 per miss on average (Knuth, TAOCP 6.4). */
const MAX_LOAD = 0.5;

const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const LETTER_A = 0x61;
/** ORed into a letter's code, makes it lower case; digits already have the bit. */
const LOWER_CASE_BIT = 0x20;
const HASH_SIGN = 0x23; /* # */
const TWO_TO_32 = 2 ** 32;

/** The key read by the last readAddress(); module variables keep the lookups allocation-free. */
let keyForm = EMPTY;
let keyHigh = 0;
let keyLow = 0;

/**
 * Reads an address token into keyForm, keyHigh and keyLow. The importers' patterns have already
 * checked its form: "0x" and at most 16 significant hex digits (either case), or "#" and at
 * most 15 decimal digits, which a double holds exactly.
 */
function readAddress(token: string): void {
  let high = 0;
  let low = 0;
  if (token.charCodeAt(0) === HASH_SIGN) {
    let value = 0;
    for (let i = 1; i < token.length; i++) value = value * 10 + (token.charCodeAt(i) - DIGIT_0);
    keyForm = BLOCK_NUMBER;
    keyHigh = Math.floor(value / TWO_TO_32);
    keyLow = value >>> 0;
    return;
  }
  for (let i = 2; i < token.length; i++) {
    const c = token.charCodeAt(i) | LOWER_CASE_BIT;
    const digit = c <= DIGIT_9 ? c - DIGIT_0 : c - LETTER_A + 10;
    high = ((high << 4) | (low >>> 28)) >>> 0;
    low = ((low << 4) | digit) >>> 0;
  }
  keyForm = POINTER;
  keyHigh = high;
  keyLow = low;
}

/**
 * A 32-bit hash of a key's value, every input bit reaching every output bit: addresses are
 * 16-byte aligned and share their upper bits, so their raw low bits would pile up on few slots.
 * The finaliser is Chris Wellons' lowbias32. The form is left out: a trace uses one form.
 */
function hashOf(high: number, low: number): number {
  let h = low ^ Math.imul(high, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return h ^ (h >>> 16);
}

/**
 * Maps the addresses of live blocks to ids, for importers of address-based formats. Memory is
 * bounded by the live blocks: an address leaves the table when its block is freed, and its id
 * goes on a stack to be handed out again. Every operation is O(1) expected, however many blocks
 * are live and however often addresses are reused.
 *
 * Invariant: an address is in the table iff its block was allocated while tracing and not freed
 * since; an id is in the table or in `releasedIds` (never both) iff it is below nextId.
 */
export class AddressMap {
  skippedFrees = 0;
  impliedFrees = 0;
  private slots = new Uint32Array(INITIAL_SLOTS * SLOT_WORDS);
  /** Slot count - 1; the slot count is a power of two. */
  private mask = INITIAL_SLOTS - 1;
  private liveCount = 0;
  private readonly releasedIds: number[] = [];
  private nextId = 0;

  constructor(private readonly sink: OpSink) {}

  allocate(address: string, size: number, site = NO_SITE): void {
    readAddress(address);
    const at = this.find();
    const stillLive = this.slots[at + FORM] !== EMPTY;
    if (stillLive) {
      // The allocator handed out a live address again, so the block was freed untraced.
      this.impliedFrees++;
      this.release(this.slots[at + ID]!);
    }
    const id = this.releasedIds.pop() ?? this.nextId++;
    if (stillLive) this.slots[at + ID] = id;
    else this.insert(at, id);
    this.sink.push(OP_ALLOC, id, size, site);
  }

  free(address: string): void {
    readAddress(address);
    const at = this.find();
    if (this.slots[at + FORM] === EMPTY) {
      this.skippedFrees++;
      return;
    }
    const id = this.slots[at + ID]!;
    this.remove(at);
    this.release(id);
  }

  reallocate(oldAddress: string, newAddress: string, size: number, site = NO_SITE): void {
    readAddress(oldAddress);
    const from = this.find();
    if (this.slots[from + FORM] === EMPTY) {
      // Allocated before tracing began: the block is new to us, so it starts here.
      this.skippedFrees++;
      this.allocate(newAddress, size, site);
      return;
    }
    const id = this.slots[from + ID]!;
    this.remove(from);
    readAddress(newAddress);
    const to = this.find();
    if (this.slots[to + FORM] !== EMPTY) {
      this.impliedFrees++;
      this.release(this.slots[to + ID]!);
      this.slots[to + ID] = id;
    } else {
      this.insert(to, id);
    }
    this.sink.push(OP_REALLOC, id, size, site);
  }

  /** Frees every live block, in id order: the process image that owned them is gone (exec). */
  releaseAll(): void {
    const ids = new Uint32Array(this.liveCount);
    let count = 0;
    for (let at = 0; at < this.slots.length; at += SLOT_WORDS) {
      if (this.slots[at + FORM] !== EMPTY) ids[count++] = this.slots[at + ID]!;
    }
    for (const id of ids.sort()) this.release(id);
    this.slots.fill(EMPTY);
    this.liveCount = 0;
  }

  counts(): ImportCounts {
    return {
      idLimit: this.nextId,
      liveAtEnd: this.liveCount,
      skippedFrees: this.skippedFrees,
      impliedFrees: this.impliedFrees,
      otherProcessEvents: 0,
      truncatedLines: 0,
    };
  }

  /** Whether the table keeps its invariants; for tests. */
  tableIsValid(): boolean {
    const slots = this.slots;
    let occupied = 0;
    for (let at = 0; at < slots.length; at += SLOT_WORDS) {
      if (slots[at + FORM] === EMPTY) continue;
      occupied++;
      const home = hashOf(slots[at + HIGH]!, slots[at + LOW]!) & this.mask;
      for (let slot = home; slot !== at / SLOT_WORDS; slot = (slot + 1) & this.mask) {
        if (slots[slot * SLOT_WORDS + FORM] === EMPTY) return false;
      }
    }
    return occupied === this.liveCount && occupied <= (this.mask + 1) * MAX_LOAD;
  }

  private release(id: number): void {
    this.releasedIds.push(id);
    this.sink.push(OP_FREE, id, 0);
  }

  /** The word offset of the slot holding the key last read, or of the empty slot ending its run. */
  private find(): number {
    const slots = this.slots;
    let slot = hashOf(keyHigh, keyLow) & this.mask;
    for (;;) {
      const at = slot * SLOT_WORDS;
      const form = slots[at + FORM];
      if (form === EMPTY || (form === keyForm && slots[at + LOW] === keyLow && slots[at + HIGH] === keyHigh)) return at;
      slot = (slot + 1) & this.mask;
    }
  }

  /** Puts the key last read, with its id, into the empty slot find() returned for it. */
  private insert(at: number, id: number): void {
    const slots = this.slots;
    slots[at + FORM] = keyForm;
    slots[at + HIGH] = keyHigh;
    slots[at + LOW] = keyLow;
    slots[at + ID] = id;
    this.liveCount++;
    if (this.liveCount > (this.mask + 1) * MAX_LOAD) this.grow();
  }

  /**
   * Empties a slot, then walks the run after it: an entry whose home lies at or before the hole
   * (cyclically) moves back into it, and its old slot becomes the hole. The walk ends at the
   * first empty slot, so the invariant holds again without tombstones.
   */
  private remove(at: number): void {
    const slots = this.slots;
    const mask = this.mask;
    let hole = at / SLOT_WORDS;
    let slot = hole;
    for (;;) {
      slot = (slot + 1) & mask;
      const from = slot * SLOT_WORDS;
      if (slots[from + FORM] === EMPTY) break;
      const home = hashOf(slots[from + HIGH]!, slots[from + LOW]!) & mask;
      // The entry may fill the hole iff the hole lies on its probe path: home .. slot.
      if (((slot - home) & mask) >= ((slot - hole) & mask)) {
        const to = hole * SLOT_WORDS;
        slots[to + FORM] = slots[from + FORM]!;
        slots[to + HIGH] = slots[from + HIGH]!;
        slots[to + LOW] = slots[from + LOW]!;
        slots[to + ID] = slots[from + ID]!;
        hole = slot;
      }
    }
    slots[hole * SLOT_WORDS + FORM] = EMPTY;
    this.liveCount--;
  }

  private grow(): void {
    const old = this.slots;
    const slotCount = (this.mask + 1) * 2;
    const slots = new Uint32Array(slotCount * SLOT_WORDS);
    const mask = slotCount - 1;
    for (let from = 0; from < old.length; from += SLOT_WORDS) {
      if (old[from + FORM] === EMPTY) continue;
      let slot = hashOf(old[from + HIGH]!, old[from + LOW]!) & mask;
      while (slots[slot * SLOT_WORDS + FORM] !== EMPTY) slot = (slot + 1) & mask;
      slots.set(old.subarray(from, from + SLOT_WORDS), slot * SLOT_WORDS);
    }
    this.slots = slots;
    this.mask = mask;
  }
}
