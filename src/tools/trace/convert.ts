// Converting a trace of any format the reader takes (pymalloc, mtrace, logalloc; gzip or not)
// to the canonical format, streaming, in bounded memory: `pymalloc convert IN OUT`.

import type { TraceSummary } from './format.js';
import { openTrace } from './reader.js';
import { writeTrace } from './writer.js';

/**
 * Converts the trace at `input` into a canonical trace at `output` (gzip-compressed iff its
 * name ends in `.gz`) and returns what the import found. Nothing appears at `output` unless
 * the whole input was read and written; `output` may be `input` itself.
 * @throws TraceFileError when a file cannot be read or written; TraceFormatError naming the bad line
 */
export async function convertTrace(input: string, output: string): Promise<TraceSummary> {
  let summary: TraceSummary | undefined;
  async function* chunks() {
    for await (const chunk of openTrace(input)) {
      if (chunk.summary !== undefined) summary = chunk.summary;
      yield chunk;
    }
  }
  await writeTrace(output, chunks(), { comments: [`converted from ${JSON.stringify(input)}`] });
  return summary!; // the reader ends every stream with a chunk carrying it
}
