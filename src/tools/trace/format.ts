// The canonical trace format, "pymalloc-trace v1".
//
// A trace is the sequence of heap operations of one program, with blocks named by small integer
// ids instead of addresses, so that any allocator can replay it. One op per line:
//
//     # pymalloc-trace v1              header: the first line that is not blank
//     # recorded from: python3 x.py    comment: any line whose first non-blank character is '#'
//     a 0 32                           allocate 32 bytes; the block is called 0 from now on
//     a 1 100
//     r 0 64                           resize block 0 to 64 bytes; it is still called 0
//     f 1                              free block 1; id 1 may be allocated again
//     f 0
//
// Grammar (fields separated by spaces or tabs; blank lines and comments allowed anywhere, but
// the header must come before the first op):
//
//     a <id> <size> [<site>]     allocate
//     f <id>                     free
//     r <id> <size> [<site>]     reallocate
//     # site <site> <address> <symbol> <module>     declares a call site (a comment to old readers)
//
// where <id> and <size> are decimal integers in [0, 2^32).
//
// Call sites (optional): an alloc or realloc may end in the id of the code that called the
// allocator, a decimal in [1, 2^32) declared by an earlier "# site" line:
//
//     # site 1 0x1184 - /tmp/prog                      module-relative address, no symbol known
//     # site 2 0x9e9aa __strdup+1a /lib/x86_64-linux-gnu/libc.so.6
//     # site 3 0x7f3a4c0a - -                           an absolute address outside any module
//     a 0 1000 1
//
// <address> is hex: relative to the module's load address (what mtrace prints for a caller in a
// program or shared object), or absolute when <module> is "-". <symbol> is the nearest dynamic
// symbol and offset as the recorder saw it, or "-". <module> is the rest of the line (it may hold
// spaces). A trace with sites also says so in a comment before its first declaration. Readers
// older than sites take "a 0 1000 1" for a malformed line and stop there, naming it: they never
// misread a size. Traces without sites read as before.
//
// Invariants, checked by the reader (a violation is a TraceFormatError naming the line):
//   - `a id` is allowed iff id is not live; afterwards id is live.
//   - `f id` and `r id` are allowed iff id is live; after `f id`, id is not live.
// Importers recycle ids (an id freed is handed out again), so one more than the largest id is
// the peak number of live blocks: a replayer can index a dense table by id.
//
// A file whose name ends in `.gz` is written gzip-compressed; readers recognise gzip by its
// magic bytes (1f 8b), whatever the name.
//
// In memory, ops travel as triples [kind, id, size] packed in a Uint32Array: kind is OP_ALLOC,
// OP_FREE or OP_REALLOC, and size is 0 for a free.

// ---- the format's constants ---------------------------------------------------------------------

/** The header line; its version number changes iff old readers could misread new files. */
export const TRACE_HEADER = '# pymalloc-trace v1';

export const OP_ALLOC = 0;
export const OP_FREE = 1;
export const OP_REALLOC = 2;
export type OpKind = typeof OP_ALLOC | typeof OP_FREE | typeof OP_REALLOC;

/** Numbers in one op triple: kind, id, size. */
export const OP_FIELDS = 3;

/** Largest id or size: both must fit a u32. */
export const MAX_U32 = 0xffff_ffff;

/** The id a site field may not take: in a per-op sites array it means "no site". */
export const NO_SITE = 0;

/** Where an allocation was called from, as recorded: before symbolization (sites.ts). */
export interface CallSite {
  /** Its id, from 1, declared before the first op that uses it. */
  id: number;
  /** Hex ("0x1184"): relative to the module's load address, or absolute when module is ''. */
  address: string;
  /** The nearest dynamic symbol and offset the recorder saw ("__strdup+1a"), or ''. */
  symbol: string;
  /** The program or shared object the address is in, or '' when none is known. */
  module: string;
}

/** The comment a trace with sites carries before its first "# site" line. */
export const SITES_COMMENT =
  '# sites: "a" and "r" lines end in a call-site id declared by a "# site <id> <address> <symbol> <module>" line';

/** The text formats a trace file can be in; see detect.ts for how each is recognised. */
export type TraceFormat = 'pymalloc' | 'mtrace' | 'logalloc';

// ---- what readers hand out ----------------------------------------------------------------------

/** A batch of ops read from a trace. */
export interface TraceChunk {
  /** Triples [kind, id, size]; a fresh array the consumer may keep. */
  ops: Uint32Array;
  /** The call site of each op (NO_SITE for frees and for ops without one); absent when no op
   *  of the chunk has a site. */
  sites?: Uint32Array;
  /** The sites first used in this chunk (or earlier in it declared), before the ops use them. */
  declaredSites?: CallSite[];
  /** Set on the last chunk only (which may hold no ops); the stream ends after it. */
  summary?: TraceSummary;
}

/** What a whole trace contained, after import. */
export interface TraceSummary {
  /** The format the input was in. */
  format: TraceFormat;
  /** Ops produced: allocs + frees + reallocs. */
  ops: number;
  allocs: number;
  frees: number;
  reallocs: number;
  /** One more than the largest id used (0 for no ops): the size of a table indexed by id. */
  idLimit: number;
  /** Blocks still live at the end of the trace. */
  liveAtEnd: number;
  /** Frees and reallocs of addresses never allocated while tracing (allocated before it began);
   *  each is skipped, and a realloc's new block becomes a fresh allocation. Always 0 for pymalloc. */
  skippedFrees: number;
  /** Allocations returning an address that was still live: the free between them was not traced,
   *  so a free of the old block is inserted. Always 0 for pymalloc. */
  impliedFrees: number;
  /** logalloc lines of processes other than the first one, which are left out. */
  otherProcessEvents: number;
  /** mtrace lines cut short, and dropped: the last line when a stream ends without a newline
   *  (the program _exit()ed with its trace buffer unwritten), and a malformed line just before
   *  a "= Start" (an exec cut it off). Always 0 for the other formats. */
  truncatedLines: number;
  /** Call sites declared: 0 for a trace without call-site data. */
  sites: number;
}

// ---- writing the canonical format ---------------------------------------------------------------

const LETTER_OF_KIND = ['a', 'f', 'r'] as const;

/** The "# site" line declaring a site. */
export function formatSiteDeclaration(site: CallSite): string {
  return `# site ${site.id} ${site.address} ${site.symbol || '-'} ${site.module || '-'}\n`;
}

/** The canonical lines of ops (triples), each ending in a newline; `sites` (one per op) adds
 *  the site field to the allocs and reallocs that have one. */
export function formatOps(ops: Uint32Array, sites?: Uint32Array): string {
  if (ops.length % OP_FIELDS !== 0) {
    throw new RangeError(`ops.length must be a multiple of ${OP_FIELDS} (triples [kind, id, size]), got ${ops.length}`);
  }
  if (sites !== undefined && sites.length * OP_FIELDS !== ops.length) {
    throw new RangeError(`sites must hold one entry per op (${ops.length / OP_FIELDS}), got ${sites.length}`);
  }
  let text = '';
  for (let i = 0; i < ops.length; i += OP_FIELDS) {
    const kind = ops[i]!;
    const id = ops[i + 1]!;
    if (kind === OP_FREE) {
      text += `f ${id}\n`;
    } else if (kind === OP_ALLOC || kind === OP_REALLOC) {
      const site = sites === undefined ? NO_SITE : sites[i / OP_FIELDS]!;
      text += site === NO_SITE ? `${LETTER_OF_KIND[kind]} ${id} ${ops[i + 2]!}\n` : `${LETTER_OF_KIND[kind]} ${id} ${ops[i + 2]!} ${site}\n`;
    } else {
      throw new RangeError(`ops[${i}] is not an op kind (0 alloc, 1 free, 2 realloc): ${kind}`);
    }
  }
  return text;
}
