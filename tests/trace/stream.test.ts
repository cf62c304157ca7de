// Streaming: files in and out, gzip both ways, bounded memory, and the shipped trace.

import { execFileSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile, readdir } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  OP_ALLOC,
  OP_FREE,
  parseTraceText,
  SITES_COMMENT,
  OP_REALLOC,
  openTrace,
  readTrace,
  TraceFileError,
  TraceFormatError,
  writeTrace,
  type TraceChunk,
  type TraceSummary,
} from '../../src/tools/trace/index.js';

const SHIPPED_TRACE = fileURLToPath(new URL('../../traces/python-json.trace.gz', import.meta.url));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trace-stream-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** All ops of a trace in one array, and its summary. */
async function readAll(path: string): Promise<{ ops: Uint32Array; summary: TraceSummary; chunks: number }> {
  const parts: Uint32Array[] = [];
  let summary: TraceSummary | undefined;
  for await (const chunk of openTrace(path)) {
    parts.push(chunk.ops);
    summary = chunk.summary;
  }
  const ops = new Uint32Array(parts.reduce((n, part) => n + part.length, 0));
  parts.reduce((at, part) => (ops.set(part, at), at + part.length), 0);
  return { ops, summary: summary!, chunks: parts.length };
}

const SAMPLE = Uint32Array.from([OP_ALLOC, 0, 32, OP_ALLOC, 1, 7, OP_REALLOC, 0, 4096, OP_FREE, 1, 0, OP_FREE, 0, 0]);

describe('writeTrace and openTrace', () => {
  it('round-trips through a .gz file, which is really gzip-compressed', async () => {
    const path = join(dir, 'sample.trace.gz');
    await writeTrace(path, SAMPLE, { comments: ['made by a test'] });
    const bytes = await readFile(path);
    expect([bytes[0], bytes[1]]).toEqual([0x1f, 0x8b]);
    expect(gunzipSync(bytes).toString()).toBe('# pymalloc-trace v1\n# made by a test\na 0 32\na 1 7\nr 0 4096\nf 1\nf 0\n');
    const { ops, summary } = await readAll(path);
    expect(ops).toEqual(SAMPLE);
    expect(summary).toMatchObject({ format: 'pymalloc', ops: 5, allocs: 2, frees: 2, reallocs: 1, idLimit: 2 });
  });

  it('writes plain text unless the name ends in .gz, and recognises gzip by content whatever the name', async () => {
    const plain = join(dir, 'sample.trace');
    await writeTrace(plain, SAMPLE);
    expect((await readFile(plain, 'utf8')).startsWith('# pymalloc-trace v1\n')).toBe(true);

    const misnamed = join(dir, 'compressed-but-named.txt');
    await writeFile(misnamed, gzipSync(await readFile(plain)));
    expect((await readAll(misnamed)).ops).toEqual(SAMPLE);
  });

  it('converts other formats: writeTrace(out, openTrace(mtrace file))', async () => {
    const mtrace = join(dir, 'prog.mtrace');
    await writeFile(mtrace, '= Start\n@ ./p:[0x1] + 0x10 0x8\n@ ./p:[0x1] - 0x20\n@ ./p:[0x1] - 0x10\n= End\n');
    const converted = join(dir, 'prog.trace');
    await writeTrace(converted, openTrace(mtrace));
    expect(await readFile(converted, 'utf8')).toBe(
      ['# pymalloc-trace v1', SITES_COMMENT, '# site 1 0x1 - ./p', 'a 0 8 1', 'f 0', ''].join('\n'),
    );
  });

  it('keeps the call sites of an mtrace through writing and reading again', async () => {
    const mtrace = join(dir, 'sites.mtrace');
    const lines = [
      '= Start',
      '@ ./prog:(main+0x1c)[0x11c9] + 0x10 0x8',
      '@ /lib/x86_64-linux-gnu/libc.so.6:(__strdup+1a)[0x9e9aa] + 0x20 0x6',
      '@ [0x7f3a4c0a] < 0x20',
      '@ [0x7f3a4c0a] > 0x30 0x40',
      '- 0x10',
      '+ 0x40 0x5',
      '@ ./prog:(main+0x1c)[0x11c9] + 0x50 0x9',
    ];
    await writeFile(mtrace, `${lines.join('\n')}\n`);
    const converted = join(dir, 'sites.trace');
    await writeTrace(converted, openTrace(mtrace, { moduleDir: '/work/bin' }));
    const text = await readFile(converted, 'utf8');
    expect(text).toBe(
      [
        '# pymalloc-trace v1',
        SITES_COMMENT,
        '# site 1 0x11c9 main+0x1c /work/bin/prog',
        '# site 2 0x9e9aa __strdup+1a /lib/x86_64-linux-gnu/libc.so.6',
        '# site 3 0x7f3a4c0a - -',
        'a 0 8 1',
        'a 1 6 2',
        'r 1 64 3',
        'f 0',
        'a 0 5',
        'a 2 9 1',
        '',
      ].join('\n'),
    );
    const again = parseTraceText(text);
    expect(again.summary.sites).toBe(3);
    expect([...again.sites!]).toEqual([1, 2, 3, 0, 0, 1]);
    expect(again.declaredSites).toEqual([
      { id: 1, address: '0x11c9', symbol: 'main+0x1c', module: '/work/bin/prog' },
      { id: 2, address: '0x9e9aa', symbol: '__strdup+1a', module: '/lib/x86_64-linux-gnu/libc.so.6' },
      { id: 3, address: '0x7f3a4c0a', symbol: '', module: '' },
    ]);
  });

  it('leaves no file behind when the ops are invalid', async () => {
    const path = join(dir, 'invalid.trace.gz');
    await expect(writeTrace(path, Uint32Array.from([7, 0, 0]))).rejects.toThrow(RangeError);
    expect((await readdir(dir)).filter((name) => name.startsWith('invalid'))).toEqual([]);
  });

  it('names the missing file', async () => {
    const path = join(dir, 'no-such.trace.gz');
    const reading = readAll(path);
    await expect(reading).rejects.toThrow(TraceFileError);
    await expect(reading).rejects.toThrow(`trace file not found: ${path}`);
  });

  it('names the file and line of a malformed line in a compressed trace', async () => {
    const path = join(dir, 'x.trace.gz');
    await writeFile(path, gzipSync('# pymalloc-trace v1\na 0 1\na 12\n'));
    await expect(readAll(path)).rejects.toThrow(new TraceFormatError(path, 3, 'a 12', 'malformed line {line}: expected "a <id> <size>"'));
    await expect(readAll(path)).rejects.toThrow(`${path}:3: malformed line "a 12": expected "a <id> <size>"`);
  });

  it('validates chunkOps', () => {
    expect(() => openTrace('x', { chunkOps: 0 })).toThrow('options.chunkOps must be an integer from 1 to 16777216, got 0');
  });
});

describe('streaming', () => {
  it('yields chunks before the input is complete', async () => {
    // The trace comes through a named pipe whose writer waits for the first chunk before
    // finishing: a reader that read the whole input first would never yield it.
    const pipe = join(dir, 'live.pipe');
    execFileSync('mkfifo', [pipe]);
    const iterator = openTrace(pipe, { chunkOps: 1000 })[Symbol.asyncIterator]();
    const firstChunk = iterator.next();
    const writer = createWriteStream(pipe);
    await once(writer, 'open');
    let text = '# pymalloc-trace v1\n';
    for (let id = 0; id < 1500; id++) text += `a ${id} ${id}\n`;
    writer.write(text);

    const first = await firstChunk;
    expect(first.done).toBe(false);
    expect((first.value as TraceChunk).ops.length).toBe(3 * 1000);

    writer.end('f 0\n');
    await once(writer, 'close');
    let rest = 0;
    let summary: TraceSummary | undefined;
    for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) {
      rest += next.value.ops.length / 3;
      summary = next.value.summary ?? summary;
    }
    expect(rest).toBe(501);
    expect(summary?.ops).toBe(1501);
  });

  it('reads 2 million ops from a .gz file in bounded memory', { timeout: 60_000 }, async () => {
    // A heap of at most WINDOW live blocks, cycled: free the oldest, allocate, sometimes realloc.
    const TOTAL = 2_000_000;
    const WINDOW = 1000;
    const expected = { allocs: 0, frees: 0, reallocs: 0 };
    function* generate(): Generator<TraceChunk> {
      const chunk = new Uint32Array(3 * 60_000);
      let filled = 0;
      let emitted = 0;
      const push = (kind: number, id: number, size: number) => {
        chunk.set([kind, id, size], filled);
        filled += 3;
        emitted++;
      };
      for (let step = 0; emitted < TOTAL; step++) {
        const id = step % WINDOW;
        if (step >= WINDOW) (push(OP_FREE, id, 0), expected.frees++);
        if (emitted < TOTAL) (push(OP_ALLOC, id, (step * 37) % 4000), expected.allocs++);
        if (emitted < TOTAL && step % 5 === 0) (push(OP_REALLOC, id, (step * 13) % 8000), expected.reallocs++);
        if (filled > chunk.length - 9 || emitted === TOTAL) {
          yield { ops: chunk.slice(0, filled) };
          filled = 0;
        }
      }
    }
    const path = join(dir, 'two-million.trace.gz');
    await writeTrace(path, generate());
    expect((await stat(path)).size).toBeGreaterThan(0);

    const baseline = process.memoryUsage().heapUsed;
    let peakGrowth = 0;
    let ops = 0;
    let chunks = 0;
    let summary: TraceSummary | undefined;
    for await (const chunk of openTrace(path)) {
      ops += chunk.ops.length / 3;
      chunks++;
      summary = chunk.summary ?? summary;
      peakGrowth = Math.max(peakGrowth, process.memoryUsage().heapUsed - baseline);
    }
    expect(ops).toBe(TOTAL);
    expect(chunks).toBe(Math.ceil(TOTAL / 65536) + (TOTAL % 65536 === 0 ? 1 : 0));
    expect(summary).toMatchObject({ ...expected, ops: TOTAL, idLimit: WINDOW, liveAtEnd: expected.allocs - expected.frees });
    // The whole trace as text would be ~25 MB and as JS strings far more; the heap must not follow it.
    expect(peakGrowth).toBeLessThan(50 * 1024 * 1024);
  });
});

describe('a stream that stops mid-line', () => {
  /** The ops and summary of a stream of these pieces, as a pipe would deliver them. */
  async function readPieces(pieces: string[]): Promise<{ ops: number[]; summary: TraceSummary }> {
    async function* bytes(): AsyncGenerator<Buffer> {
      for (const piece of pieces) yield Buffer.from(piece);
    }
    const ops: number[] = [];
    let summary: TraceSummary | undefined;
    for await (const chunk of readTrace(bytes(), 'pipe')) {
      ops.push(...chunk.ops);
      summary = chunk.summary ?? summary;
    }
    return { ops, summary: summary! };
  }

  it('drops and counts the cut-off last mtrace line, even one that parses', async () => {
    // dash _exit()s without flushing: the trace stopped inside "- 0x55d8ef1a2b30", and what is
    // left would read as a free of an unknown address.
    const path = join(dir, 'dash.mtrace');
    await writeFile(path, '= Start\n@ sh:[0x161c3] + 0x55d8ef1a2b30 0x20\n@ sh:[0x161c3] - 0x55d8ef');
    const { ops, summary } = await readAll(path);
    expect([...ops]).toEqual([OP_ALLOC, 0, 0x20]);
    expect(summary).toMatchObject({ format: 'mtrace', ops: 1, liveAtEnd: 1, skippedFrees: 0, truncatedLines: 1 });
  });

  it("keeps the block of a realloc whose '>' line was cut off, as it was", async () => {
    const { ops, summary } = await readPieces(['= Start\n+ 0x1000 0x10\n< 0x1000\n> 0x2', '000 0x40']);
    expect(ops).toEqual([OP_ALLOC, 0, 0x10]);
    expect(summary).toMatchObject({ ops: 1, liveAtEnd: 1, truncatedLines: 1 });
  });

  it('counts nothing when the last line has its newline', async () => {
    const { ops, summary } = await readPieces(['= Start\n+ 0x1000 0x10\n- 0x1', '000\n']);
    expect(ops).toEqual([OP_ALLOC, 0, 0x10, OP_FREE, 0, 0]);
    expect(summary).toMatchObject({ ops: 2, liveAtEnd: 0, truncatedLines: 0 });
  });

  it('reads the last line of a canonical or logalloc stream without a newline as a line', async () => {
    // Their writers may leave the final newline out (a hand-edited file); mtrace never does.
    expect((await readPieces(['# pymalloc-trace v1\na 0 32\nf', ' 0'])).summary).toMatchObject({ ops: 2, truncatedLines: 0 });
    expect((await readPieces(['1 1 malloc(8)=0x10\n1 1 free(0x10)'])).summary).toMatchObject({ ops: 2, truncatedLines: 0 });
  });
});

describe('the shipped trace', () => {
  it('parses with exactly the ops its lines hold', { timeout: 30_000 }, async () => {
    // Counted independently of the reader: decompress and count lines by their first letter.
    const text = gunzipSync(await readFile(SHIPPED_TRACE)).toString('latin1');
    const lines = text.split('\n');
    const count = (letter: string) => lines.filter((line) => line.startsWith(`${letter} `)).length;
    const expected = { allocs: count('a'), frees: count('f'), reallocs: count('r') };
    expect(lines[0]).toBe('# pymalloc-trace v1');
    expect(lines.filter((line) => line !== '' && !line.startsWith('#')).length).toBe(
      expected.allocs + expected.frees + expected.reallocs,
    );

    const { ops, summary } = await readAll(SHIPPED_TRACE);
    expect(summary).toMatchObject({ format: 'pymalloc', ...expected, ops: expected.allocs + expected.frees + expected.reallocs });
    expect(ops.length / 3).toBe(summary.ops);
    expect(summary.ops).toBeGreaterThan(100_000);
    expect(summary.ops).toBeLessThan(500_000);
    expect((await stat(SHIPPED_TRACE)).size).toBeLessThan(2 * 1024 * 1024);
  });
});
