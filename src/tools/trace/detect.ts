// Format detection: the first line that is neither blank nor a comment decides.
//
//     "# pymalloc-trace v1"                 pymalloc (the header is the one comment that counts)
//     "= Start", "@ ... + 0x... 0x..."      mtrace
//     "18545 18545 malloc(32)=0x..."        logalloc
//
// An id-based op line before any header is an error rather than a guess: the header carries
// the version, and a file without it may be of another id-based dialect.

import { TraceFormatError } from './errors.js';
import { CanonicalImporter } from './canonical.js';
import { TRACE_HEADER, type TraceFormat } from './format.js';
import { isLogallocLine, LogallocImporter } from './logalloc.js';
import { isMtraceLine, MtraceImporter } from './mtrace.js';
import type { LineImporter, OpSink } from './ops.js';

const HEADER = /^#[ \t]*pymalloc-trace[ \t]+v(\d+)[ \t]*$/;
const HEADERLESS_OP = /^[afr][ \t]+\d+([ \t]+\d+)?$/;

/** Whether a line carries no event: blank, or a comment. */
export function isBlankOrComment(text: string): boolean {
  const trimmed = text.trim();
  return trimmed.length === 0 || trimmed.charCodeAt(0) === 0x23 /* # */;
}

/**
 * The format a line reveals; undefined for a blank line or a comment other than the header.
 * Throws TraceFormatError for a line of no known format, or a header of another version.
 */
export function formatOfLine(text: string, source: string, lineNumber: number): TraceFormat | undefined {
  const trimmed = text.trim();
  const header = HEADER.exec(trimmed);
  if (header !== null) {
    if (header[1] !== '1') {
      throw new TraceFormatError(source, lineNumber, text, `unsupported trace version {line}: this reader knows "${TRACE_HEADER}"`);
    }
    return 'pymalloc';
  }
  if (isBlankOrComment(trimmed)) return undefined;
  if (isMtraceLine(trimmed)) return 'mtrace';
  if (isLogallocLine(trimmed)) return 'logalloc';
  if (HEADERLESS_OP.test(trimmed)) {
    throw new TraceFormatError(source, lineNumber, text, `line {line} is an op, but the header "${TRACE_HEADER}" must come first`);
  }
  throw new TraceFormatError(
    source,
    lineNumber,
    text,
    `unrecognised trace format at {line}: expected "${TRACE_HEADER}", glibc mtrace or Mozilla logalloc lines`,
  );
}

/**
 * The format of a trace, from its first lines (enough to include one that is neither blank nor
 * a comment). Throws TraceFormatError when the lines are of no known format or hold no event.
 */
export function detectFormat(firstLines: readonly string[], source = '<text>'): TraceFormat {
  for (let i = 0; i < firstLines.length; i++) {
    const format = formatOfLine(firstLines[i]!, source, i + 1);
    if (format !== undefined) return format;
  }
  throw new TraceFormatError(source, 0, '', `no trace header and no events in the first ${firstLines.length} lines`);
}

/** The importer of a format. A pymalloc trace's header has been consumed by detection.
 *  `moduleDir` resolves mtrace's relative module paths (ReadTraceOptions). */
export function createImporter(format: TraceFormat, sink: OpSink, source: string, moduleDir?: string): LineImporter {
  switch (format) {
    case 'pymalloc':
      return new CanonicalImporter(sink, source);
    case 'mtrace':
      return new MtraceImporter(sink, source, moduleDir);
    case 'logalloc':
      return new LogallocImporter(sink, source);
  }
}
