// Recording real programs under glibc's mtrace (needs gcc, glibc and python3, as on the dev
// machine). Each recording is read back through the canonical reader, which checks that every
// free and realloc names a live id: the mtrace importer's output must always pass.

import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  MissingCompilerError,
  openTrace,
  record,
  RecordError,
  type RecordSummary,
  type TraceSummary,
} from '../../src/tools/trace/index.js';

const RECORDING_TIMEOUT = 30_000;

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Only PATH: what a shell allocates depends on its environment, so the tests fix it. */
const BARE_ENVIRONMENT = { ...Object.fromEntries(Object.keys(process.env).map((name) => [name, undefined])), PATH: process.env.PATH };

/**
 * dash forks children that allocate: a subshell, a command substitution, a pipeline. None is
 * traced. dash then ends with _exit(), so glibc never flushes the last of its 512-byte trace
 * buffer, and the trace stops mid-line (unless the flush before fell on a line end: not so for
 * this script, in BARE_ENVIRONMENT, with Debian 12's dash 0.5.12).
 */
const FORKING_SCRIPT = 'ls / >/dev/null; (ls /usr >/dev/null); n=$(ls /usr/lib | wc -l); ls / | wc -l >/dev/null';

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

  it('records a shell that forks children, dropping the line its _exit() cut off', { timeout: RECORDING_TIMEOUT }, async () => {
    const forking = await record({
      output: join(dir, 'forking.trace'),
      command: 'sh',
      args: ['-c', FORKING_SCRIPT],
      env: BARE_ENVIRONMENT,
      stdio: 'ignore',
    });
    await expectConsistent(forking);
    expect(forking).toMatchObject({ truncatedLines: 1, skippedFrees: 0, impliedFrees: 0 });
    const lines = (await readFile(forking.output, 'utf8')).split('\n');
    expect(lines.slice(0, 2)).toEqual(['# pymalloc-trace v1', `# recorded with glibc mtrace from: sh -c ${JSON.stringify(FORKING_SCRIPT)}`]);
    expect(lines.filter((line) => line.startsWith('a ')).length).toBe(forking.allocs);
    // The four ls children are left out: one ls alone allocates more than the whole trace holds.
    const ls = await record({ output: join(dir, 'ls-usr-lib.trace'), command: 'ls', args: ['/usr/lib'], stdio: 'ignore' });
    expect(forking.allocs).toBeGreaterThan(10);
    expect(forking.allocs).toBeLessThan(ls.allocs);
  });

  it('keeps the compiled shim in the cache directory, by default under $XDG_CACHE_HOME, never in the package', { timeout: RECORDING_TIMEOUT }, async () => {
    const packageBuild = join(ROOT, 'build');
    const packageFilesBefore = await readdir(packageBuild, { recursive: true });
    const cacheDir = join(dir, 'given-cache');
    await record({ output: join(dir, 'cached.trace'), command: 'true', cacheDir });
    expect((await readdir(cacheDir)).filter((name) => /^mtrace-shim-[0-9a-f]{16}\.so$/.test(name))).toHaveLength(1);

    const xdgCache = join(dir, 'xdg-cache');
    const previous = process.env.XDG_CACHE_HOME;
    process.env.XDG_CACHE_HOME = xdgCache;
    try {
      await record({ output: join(dir, 'xdg.trace'), command: 'true' });
    } finally {
      if (previous === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = previous;
    }
    expect((await readdir(join(xdgCache, 'pymalloc-wasm'))).filter((name) => name.endsWith('.so'))).toHaveLength(1);
    expect(await readdir(packageBuild, { recursive: true })).toEqual(packageFilesBefore);
  });

  it('says gcc is missing, and how to install it, before running the command', { timeout: RECORDING_TIMEOUT }, async () => {
    const cacheDir = join(dir, 'empty-cache');
    const marker = join(dir, 'ran');
    const previousPath = process.env.PATH;
    process.env.PATH = join(dir, 'no-such-bin');
    let recording: Promise<RecordSummary>;
    try {
      recording = record({ output: join(dir, 'nogcc.trace'), command: '/bin/sh', args: ['-c', `: > ${marker}`], cacheDir, stdio: 'ignore' });
      await recording.catch(() => {});
    } finally {
      process.env.PATH = previousPath;
    }
    await expect(recording).rejects.toThrow(MissingCompilerError);
    await expect(recording).rejects.toBeInstanceOf(RecordError);
    await expect(recording).rejects.toMatchObject({
      compiler: 'gcc',
      message: `gcc not found in PATH: recording compiles its mtrace shim with gcc once, into ${cacheDir}; install it (Debian, Ubuntu: apt-get install gcc) and run again`,
    });
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(join(dir, 'nogcc.trace'))).toBe(false);
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
    await expect(record({ output: 'x', command: 'ls', cacheDir: '' })).rejects.toThrow('options.cacheDir must be a non-empty string');
  });
});

describe('pymalloc record', () => {
  it('prints what was imported, what was skipped or implied, and a warning for the cut-off line', { timeout: RECORDING_TIMEOUT }, async () => {
    const output = join(dir, 'cli.trace');
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'src', 'tools', 'cli', 'index.ts'), 'record', '-o', output, '--cache-dir', join(dir, 'cli-cache'), '--', 'sh', '-c', FORKING_SCRIPT],
        { cwd: ROOT, env: { PATH: process.env.PATH } },
        (error, stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr }),
      );
    });
    expect(run.code).toBe(0);
    const summary = await summaryOf(output);
    const lines = run.stderr.split('\n');
    expect(lines[0]).toMatch(
      new RegExp(
        `^${output}: imported ${summary.ops} ops \\(${summary.allocs} allocs, ${summary.frees} frees, ${summary.reallocs} reallocs\\); ` +
          `skipped 0 frees of unknown addresses, 0 implied frees; ${summary.liveAtEnd} live at the end; \\d+\\.\\d s$`,
      ),
    );
    expect(lines.slice(1)).toEqual([
      'pymalloc: warning: dropped 1 cut-off mtrace line(s): the program exited without flushing its trace (as dash does), or exec discarded it',
      '',
    ]);
  });
});
