// The trace layer: read, convert, write and record allocation traces. See format.ts for the
// canonical format and traces/README.md for how to use it.

export { TraceFileError, TraceFormatError, RecordError, MissingCompilerError, SitesMissingError } from './errors.js';
export {
  MAX_U32,
  NO_SITE,
  OP_ALLOC,
  OP_FIELDS,
  OP_FREE,
  OP_REALLOC,
  SITES_COMMENT,
  TRACE_HEADER,
  type CallSite,
  type OpKind,
  type TraceChunk,
  type TraceFormat,
  type TraceSummary,
} from './format.js';
export { detectFormat } from './detect.js';
export { openTrace, parseTraceText, readTrace, type ParsedTrace, type ReadTraceOptions } from './reader.js';
export { TraceWriter, writeTrace, isGzipPath, type TraceWriterOptions } from './writer.js';
export { convertTrace } from './convert.js';
export {
  describePrograms,
  processTracePath,
  record,
  type RecordedTrace,
  type RecordOptions,
  type RecordSummary,
  type UntracedProcess,
} from './record.js';
export {
  describeSite,
  formatSiteLine,
  formatSize,
  siteStatistics,
  type SiteStatistic,
  type SitesMoment,
  type SitesReport,
} from './sites.js';
export { symbolizeSites, type SymbolizedSite } from './symbolize.js';
