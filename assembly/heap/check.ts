// The whole-heap checker: every layer's own validator, bottom up, plus what only the whole heap
// can say (the memory the header counts against the size of linear memory).
//
// Each `...IsValid` (raw/tlsf.ts, pymalloc/pool.ts, pymalloc/arena.ts, pymalloc/obmalloc.ts,
// gc/collector.ts) returns the first broken invariant and leaves the address of the offending
// structure in HeapHeader.errorAddress; the host turns the code into a HeapCorruptionError
// naming the invariant (src/heap/errors.ts). The layers' codes do not overlap:
//   1..15   pymalloc (PymallocBroken)     16..19  raw allocator (RawBroken)
//   20      memory (HeapBroken)           21..23  objects and generations (ObjectsBroken)
//   24      raw overrun (RawBroken)       25      block bits (PymallocBroken)
//   26..31  the object layer's lists, quarantine and blocks (ObjectLayerBroken)
//   32      a debug block's layout, with the hooks on (debug/hooks.ts: the record says which)
//   33..34  the dict table and the brc queue (ObjectLayerBroken)
//   35..36  free-threaded pools: owners and remote lists (PymallocBroken)
// Codes 24 and 26..29 are found by operations too, which stop with corrupt() (memory/header.ts).
// Walks are bounded by counts already established, so a corrupted link cannot make one loop.

import { header, broken } from "../memory/header";
import { rawIsValid } from "../raw/tlsf";
import { pymallocIsValid } from "../pymalloc/obmalloc";
import { objectsAreValid } from "../gc/collector";
import { debugBlocksAreValid } from "../debug/hooks";

export const enum HeapBroken {
  NONE = 0,
  MEMORY = 20,
}

/** Checks the whole heap; 0, or the code of the first broken invariant. */
export function heapIsValid(): u32 {
  const hdr = header();
  if (
    hdr.committedPages > <u32>memory.size() || hdr.peakCommittedPages < hdr.committedPages ||
    hdr.committedPages > hdr.maxPages
  ) {
    return broken(HeapBroken.MEMORY, 0);
  }
  return rawIsValid() || pymallocIsValid() || objectsAreValid() || debugBlocksAreValid();
}
