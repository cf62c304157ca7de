// Reading traces of any format as a stream of op chunks.
//
//     file ──> bytes ──> gunzip if the bytes start 1f 8b ──> text ──> lines
//          ──> TraceDecoder: first event line picks the importer ──> importer ──> ChunkBuilder
//          ──> chunks of `chunkOps` ops, then a last chunk carrying the summary
//
// Memory is bounded whatever the trace length: one piece of input (64 KiB) and its lines, the
// chunks it filled, and the importer's live state (live ids, or the addresses of live blocks).

import { createReadStream } from 'node:fs';
import { Readable, pipeline } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';

import { createImporter, formatOfLine, isBlankOrComment } from './detect.js';
import { TraceFileError, TraceFormatError } from './errors.js';
import { OP_FIELDS, type CallSite, type TraceChunk, type TraceFormat, type TraceSummary } from './format.js';
import { ChunkBuilder, type LineImporter } from './ops.js';

export interface ReadTraceOptions {
  /**
   * Ops per chunk; the last chunk may hold fewer.
   * @default 65536
   */
  chunkOps?: number;
  /**
   * The directory that relative module paths in mtrace callers ("./prog:[0x1184]") are resolved
   * against: the recorded program's working directory. Unset, they are kept as written.
   */
  moduleDir?: string;
}

const DEFAULT_READ_OPTIONS: Required<Omit<ReadTraceOptions, 'moduleDir'>> = { chunkOps: 65536 };

const MAX_CHUNK_OPS = 1 << 24;

/** A longer line means the input is not a text trace; refusing it keeps memory bounded. */
const MAX_LINE_LENGTH = 1 << 20;

const GZIP_MAGIC = [0x1f, 0x8b] as const;

// ---- line level ---------------------------------------------------------------------------------

/** Turns the lines of one trace into ops, choosing the importer at the first event line. */
class TraceDecoder {
  readonly chunks: ChunkBuilder;
  private format: TraceFormat | undefined;
  private importer: LineImporter | undefined;
  private lineNumber = 0;

  constructor(
    private readonly source: string,
    chunkOps: number,
    private readonly moduleDir?: string,
  ) {
    this.chunks = new ChunkBuilder(chunkOps);
  }

  /** Takes one line without its newline; `terminated` is false for a stream's last line when
   *  no newline followed it. */
  line(raw: string, terminated = true): void {
    const lineNumber = ++this.lineNumber;
    const text = raw.charCodeAt(raw.length - 1) === 0x0d /* \r */ ? raw.slice(0, -1) : raw;
    if (this.importer === undefined) {
      this.format = formatOfLine(text, this.source, lineNumber);
      if (this.format === undefined) return;
      this.importer = createImporter(this.format, this.chunks, this.source, this.moduleDir);
      if (this.format === 'pymalloc') return; // that line was the header
    } else if (isBlankOrComment(text)) {
      this.importer.comment?.(text, lineNumber);
      return;
    }
    if (terminated) this.importer.line(text, lineNumber);
    else this.importer.unterminatedLine(text, lineNumber);
  }

  end(): TraceSummary {
    if (this.importer === undefined || this.format === undefined) {
      throw new TraceFormatError(this.source, 0, '', 'empty trace: no header and no events');
    }
    const counts = this.importer.end(this.lineNumber);
    const { allocs, frees, reallocs } = this.chunks;
    const sites = this.chunks.siteCount;
    return { format: this.format, ops: allocs + frees + reallocs, allocs, frees, reallocs, ...counts, sites };
  }
}

// ---- byte level ---------------------------------------------------------------------------------

function fileError(path: string, error: unknown): TraceFileError {
  const code = (error as NodeJS.ErrnoException).code;
  const message =
    code === 'ENOENT'
      ? `trace file not found: ${path}`
      : code === 'EISDIR'
        ? `trace file is a directory: ${path}`
        : `cannot read trace file ${path}: ${(error as Error).message}`;
  return new TraceFileError(path, message, { cause: error });
}

async function* fileBytes(path: string): AsyncGenerator<Buffer> {
  try {
    for await (const piece of createReadStream(path)) yield piece as Buffer;
  } catch (error) {
    throw fileError(path, error);
  }
}

/** The bytes, decompressed iff they start with the gzip magic number. */
async function* gunzipIfCompressed(bytes: AsyncIterable<Buffer>, source: string): AsyncGenerator<Buffer> {
  const input = bytes[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  while (head.length < GZIP_MAGIC.length) {
    const next = await input.next();
    if (next.done === true) break;
    head = Buffer.concat([head, next.value]);
  }
  async function* all(): AsyncGenerator<Buffer> {
    try {
      if (head.length > 0) yield head;
      for (let next = await input.next(); next.done !== true; next = await input.next()) yield next.value;
    } finally {
      await input.return?.();
    }
  }
  if (head[0] !== GZIP_MAGIC[0] || head[1] !== GZIP_MAGIC[1]) {
    yield* all();
    return;
  }
  const gunzip = createGunzip();
  // pipeline destroys gunzip with any error of the source or of decompression; iterating rethrows it.
  pipeline(Readable.from(all()), gunzip, () => {});
  try {
    for await (const piece of gunzip) yield piece as Buffer;
  } catch (error) {
    if (error instanceof TraceFileError) throw error;
    throw new TraceFileError(source, `cannot decompress ${source}: ${(error as Error).message}`, { cause: error });
  }
}

// ---- entry points -------------------------------------------------------------------------------

function resolveReadOptions(options: ReadTraceOptions): ReadTraceOptions & { chunkOps: number } {
  const settings = { ...DEFAULT_READ_OPTIONS, ...options };
  const { chunkOps } = settings;
  if (!Number.isInteger(chunkOps) || chunkOps < 1 || chunkOps > MAX_CHUNK_OPS) {
    throw new RangeError(`options.chunkOps must be an integer from 1 to ${MAX_CHUNK_OPS}, got ${chunkOps}`);
  }
  return settings;
}

/**
 * Reads a trace of any format from a byte stream (gzip-compressed or not). `source` names the
 * input in error messages. Yields full chunks as soon as they fill, then a last chunk with the
 * summary.
 */
export async function* readTrace(
  bytes: AsyncIterable<Buffer>,
  source: string,
  options: ReadTraceOptions = {},
): AsyncGenerator<TraceChunk> {
  const { chunkOps, moduleDir } = resolveReadOptions(options);
  const decoder = new TraceDecoder(source, chunkOps, moduleDir);
  const ready = decoder.chunks.ready;
  const text = new StringDecoder('utf8');
  let carry = '';
  let lineCount = 0;
  for await (const piece of gunzipIfCompressed(bytes, source)) {
    const lines = (carry + text.write(piece)).split('\n');
    carry = lines.pop()!;
    for (const line of lines) decoder.line(line);
    lineCount += lines.length;
    if (carry.length > MAX_LINE_LENGTH) {
      throw new TraceFormatError(source, lineCount + 1, carry, `line {line} is longer than ${MAX_LINE_LENGTH} characters: not a text trace`);
    }
    while (ready.length > 0) yield ready.shift()!;
  }
  const tail = carry + text.end();
  if (tail.length > 0) decoder.line(tail, false);
  const summary = decoder.end();
  while (ready.length > 0) yield ready.shift()!;
  yield { ...decoder.chunks.takePartial(), summary };
}

/**
 * Streams the trace file at `path`: pymalloc, mtrace or logalloc, gzip-compressed or not, all
 * recognised from the content. Each chunk holds `chunkOps` op triples [kind, id, size]; the last
 * chunk (possibly empty) carries the summary. Errors: TraceFileError when the file cannot be
 * read, TraceFormatError naming the line when the content is wrong.
 */
export function openTrace(path: string, options: ReadTraceOptions = {}): AsyncIterable<TraceChunk> {
  const settings = resolveReadOptions(options);
  return readTrace(fileBytes(path), path, settings);
}

/** A whole trace in memory: its ops and, when it has call sites, each op's site and the sites. */
export interface ParsedTrace {
  ops: Uint32Array;
  summary: TraceSummary;
  /** One per op (NO_SITE where it has none); absent when no op has a site. */
  sites?: Uint32Array;
  /** The sites declared, in order of declaration. */
  declaredSites: CallSite[];
}

/**
 * Parses a whole trace held in memory (any format, not compressed): for small traces and tests.
 * The text is taken as whole, so its last line is read even without a newline.
 */
export function parseTraceText(text: string, options: { source?: string; moduleDir?: string } = {}): ParsedTrace {
  const decoder = new TraceDecoder(options.source ?? '<text>', DEFAULT_READ_OPTIONS.chunkOps, options.moduleDir);
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (const line of lines) decoder.line(line);
  const summary = decoder.end();
  const chunks = [...decoder.chunks.ready, decoder.chunks.takePartial()];
  const ops = new Uint32Array(chunks.reduce((length, chunk) => length + chunk.ops.length, 0));
  const anySites = chunks.some((chunk) => chunk.sites !== undefined);
  const sites = anySites ? new Uint32Array(ops.length / OP_FIELDS) : undefined;
  let at = 0;
  for (const chunk of chunks) {
    ops.set(chunk.ops, at);
    if (chunk.sites !== undefined) sites!.set(chunk.sites, at / OP_FIELDS);
    at += chunk.ops.length;
  }
  const declaredSites = chunks.flatMap((chunk) => chunk.declaredSites ?? []);
  return sites === undefined ? { ops, summary, declaredSites } : { ops, summary, sites, declaredSites };
}
