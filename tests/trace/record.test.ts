// Recording real programs under glibc's mtrace (needs gcc, glibc and python3, as on the dev
// machine). Each recording is read back through the canonical reader, which checks that every
// free and realloc names a live id: the mtrace importer's output must always pass.

import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openTrace, record, RecordError, type RecordSummary, type TraceSummary } from '../../src/tools/trace/index.js';

const RECORDING_TIMEOUT = 30_000;

/** The real interpreter, not a wrapper script such as pyenv's shim. */
const PYTHON = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trace-record-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function summaryOf(path: string): Promise<TraceSummary> {
  let summary: TraceSummary | undefined;
  for await (const chunk of openTrace(path)) summary = chunk.summary ?? summary;
  return summary!;
}

/** The recorded trace read back agrees with what record() reported. */
async function expectConsistent(recorded: RecordSummary): Promise<void> {
  expect(recorded.format).toBe('mtrace');
  expect(recorded.ops).toBe(recorded.allocs + recorded.frees + recorded.reallocs);
  const reread = await summaryOf(recorded.output);
  expect(reread).toMatchObject({
    format: 'pymalloc',
    ops: recorded.ops,
    allocs: recorded.allocs,
    frees: recorded.frees,
    reallocs: recorded.reallocs,
    liveAtEnd: recorded.liveAtEnd,
  });
  expect(reread.idLimit).toBeLessThanOrEqual(recorded.idLimit);
}

describe('record', () => {
  it('records CPython with PYTHONMALLOC=malloc, and sees far less without it', { timeout: RECORDING_TIMEOUT }, async () => {
    const script = 'import json; json.loads(json.dumps([{"k": [i, str(i)]} for i in range(2000)]))';
    const args = ['-S', '-c', script];
    const withMalloc = await record({
      output: join(dir, 'python.trace.gz'),
      command: PYTHON,
      args,
      env: { PYTHONMALLOC: 'malloc' },
      stdio: 'ignore',
    });
    await expectConsistent(withMalloc);
    expect(withMalloc.ops).toBeGreaterThan(20_000);

    // pymalloc serves requests up to 512 bytes from its own arenas: mtrace sees only the rest.
    const withPymalloc = await record({
      output: join(dir, 'python-pymalloc.trace'),
      command: PYTHON,
      args,
      env: { PYTHONMALLOC: 'pymalloc' },
      stdio: 'ignore',
    });
    await expectConsistent(withPymalloc);
    expect(withPymalloc.ops * 4).toBeLessThan(withMalloc.ops);

    const header = gunzipSync(await readFile(withMalloc.output)).toString().split('\n', 2);
    expect(header).toEqual(['# pymalloc-trace v1', `# recorded with glibc mtrace from: ${PYTHON} -S -c ${JSON.stringify(script)}`]);
  });

  it('records ls and sort', { timeout: RECORDING_TIMEOUT }, async () => {
    const ls = await record({ output: join(dir, 'ls.trace'), command: 'ls', args: ['-l', '/usr/lib'], stdio: 'ignore' });
    await expectConsistent(ls);
    expect(ls.allocs).toBeGreaterThan(100);

    const input = join(dir, 'words.txt');
    await writeFile(input, Array.from({ length: 5000 }, (_, i) => `word-${(i * 7919) % 5000}`).join('\n'));
    const sort = await record({ output: join(dir, 'sort.trace.gz'), command: 'sort', args: [input], stdio: 'ignore' });
    await expectConsistent(sort);
    expect(sort.allocs).toBeGreaterThan(10);
  });

  it('follows a wrapper that execs the program, and leaves forked children out', { timeout: RECORDING_TIMEOUT }, async () => {
    // sh forks two children running ls (not traced), then execs ls itself (traced, as a new heap).
    const wrapped = await record({
      output: join(dir, 'wrapped.trace'),
      command: 'sh',
      args: ['-c', 'ls / >/dev/null; ls / >/dev/null; exec ls -l /usr/lib'],
      stdio: 'ignore',
    });
    await expectConsistent(wrapped);
    const text = await readFile(wrapped.output, 'utf8');
    expect(text.split('\n').filter((line) => line.startsWith('a ')).length).toBe(wrapped.allocs);
  });

  it('fails with the exit code of a failing command, leaving no output', { timeout: RECORDING_TIMEOUT }, async () => {
    const output = join(dir, 'failed.trace.gz');
    const recording = record({ output, command: PYTHON, args: ['-c', 'import sys; sys.exit(3)'], stdio: 'ignore' });
    await expect(recording).rejects.toThrow(RecordError);
    await expect(recording).rejects.toMatchObject({ exitCode: 3, message: `${PYTHON} -c "import sys; sys.exit(3)" exited with code 3` });
    expect((await readdir(dir)).filter((name) => name.startsWith('failed'))).toEqual([]);
  });

  it('fails clearly when the command does not exist, leaving no output', { timeout: RECORDING_TIMEOUT }, async () => {
    const output = join(dir, 'missing.trace');
    await expect(record({ output, command: 'no-such-command-pymalloc', stdio: 'ignore' })).rejects.toThrow(
      'command not found: no-such-command-pymalloc',
    );
    expect((await readdir(dir)).filter((name) => name.startsWith('missing'))).toEqual([]);
  });

  it('validates its options', async () => {
    await expect(record({ output: '', command: 'ls' })).rejects.toThrow('options.output must be a non-empty string');
  });
});
