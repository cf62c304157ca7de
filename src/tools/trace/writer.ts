// Writing canonical traces, streaming. A trace is written under a temporary name beside its
// final path and renamed when closed, so a file at the final path is always complete; a
// writer that is aborted (or whose producer fails) removes the temporary file.

import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { finished, pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { createGzip } from 'node:zlib';

import { TraceFileError } from './errors.js';
import { formatOps, formatSiteDeclaration, OP_FIELDS, SITES_COMMENT, TRACE_HEADER, type TraceChunk } from './format.js';

export interface TraceWriterOptions {
  /**
   * Comment lines written after the header (without the leading "# "), e.g. how the trace was made.
   * @default []
   */
  comments?: readonly string[];
}

/** Ops per formatted batch: large enough to amortise stream writes, small enough to stay cheap. */
const BATCH_OPS = 16384;

/** Whether a trace written to this path is gzip-compressed. */
export function isGzipPath(path: string): boolean {
  return path.endsWith('.gz');
}

export class TraceWriter {
  private closed = false;
  private sitesAnnounced = false;

  private constructor(
    readonly path: string,
    private readonly temporaryPath: string,
    private readonly head: Writable,
    private readonly done: Promise<void>,
  ) {}

  /** Creates the temporary file and writes the header; gzip-compressed iff path ends in `.gz`. */
  static async create(path: string, options: TraceWriterOptions = {}): Promise<TraceWriter> {
    const comments = options.comments ?? [];
    for (const comment of comments) {
      if (/[\r\n]/.test(comment)) throw new TypeError(`options.comments must be single lines, got ${JSON.stringify(comment)}`);
    }
    const temporaryPath = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.partial`;
    const file = createWriteStream(temporaryPath, { flags: 'wx' });
    const gzip = isGzipPath(path) ? createGzip() : undefined;
    const head: Writable = gzip ?? file;
    const done = gzip === undefined ? finished(file) : pipeline(gzip, file);
    done.catch(() => {}); // observed by close() or abort(); this keeps an early failure from going unhandled
    try {
      await once(file, 'open');
    } catch (error) {
      throw new TraceFileError(path, `cannot write trace file ${path}: ${(error as Error).message}`, { cause: error });
    }
    const writer = new TraceWriter(path, temporaryPath, head, done);
    await writer.writeText([TRACE_HEADER, ...comments.map((comment) => `# ${comment}`), ''].join('\n'));
    return writer;
  }

  /** Appends ops (triples [kind, id, size]); resolves when the stream can take more. */
  async write(ops: Uint32Array): Promise<void> {
    await this.writeChunk({ ops });
  }

  /** Appends a chunk from a reader: its site declarations, then its ops with their sites. */
  async writeChunk(chunk: TraceChunk): Promise<void> {
    const declared = chunk.declaredSites ?? [];
    if (declared.length > 0) {
      const announcement = this.sitesAnnounced ? '' : `${SITES_COMMENT}\n`;
      this.sitesAnnounced = true;
      await this.writeText(announcement + declared.map(formatSiteDeclaration).join(''));
    }
    const { ops, sites } = chunk;
    const step = BATCH_OPS * OP_FIELDS;
    for (let at = 0; at < ops.length; at += step) {
      const batchSites = sites?.subarray(at / OP_FIELDS, (at + step) / OP_FIELDS);
      await this.writeText(formatOps(ops.subarray(at, at + step), batchSites));
    }
  }

  /**
   * Flushes the trace and moves it to its final path: `path`, or one chosen only now (record
   * names a process's trace once it knows how many were traced). The temporary file is beside
   * `path`, so `finalPath` should be in the same directory for the move to be a rename.
   */
  async close(finalPath: string = this.path): Promise<void> {
    this.expectOpen();
    this.closed = true;
    this.head.end();
    try {
      await this.done;
      await rename(this.temporaryPath, finalPath);
    } catch (error) {
      await rm(this.temporaryPath, { force: true });
      throw new TraceFileError(finalPath, `cannot write trace file ${finalPath}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Stops writing and removes the temporary file; the final path is left untouched. */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.head.destroy();
    await this.done.catch(() => {});
    await rm(this.temporaryPath, { force: true });
  }

  private async writeText(text: string): Promise<void> {
    this.expectOpen();
    if (!this.head.write(text)) await once(this.head, 'drain');
  }

  private expectOpen(): void {
    if (this.closed) throw new Error(`trace writer for ${this.path} is already closed`);
  }
}

/**
 * Writes a canonical trace: from an array of op triples, or from chunks (so that
 * `writeTrace(out, openTrace(input))` converts any readable trace). Gzip-compressed iff the
 * path ends in `.gz`. Nothing appears at `path` unless the whole trace was written.
 */
export async function writeTrace(
  path: string,
  ops: Uint32Array | Iterable<TraceChunk> | AsyncIterable<TraceChunk>,
  options: TraceWriterOptions = {},
): Promise<void> {
  const writer = await TraceWriter.create(path, options);
  try {
    if (ops instanceof Uint32Array) {
      await writer.write(ops);
    } else {
      for await (const chunk of ops) await writer.writeChunk(chunk);
    }
  } catch (error) {
    await writer.abort();
    throw error;
  }
  await writer.close();
}
