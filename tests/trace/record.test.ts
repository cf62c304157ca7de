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
  processTracePath,
  record,
  RecordError,
  TraceFileError,
  type RecordedTrace,
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

/**
 * The seven processes FORKING_SCRIPT starts, sorted: ls; the subshell, which execs its ls; the
 * command substitution's subshell (it stays a shell) and its pipeline's ls and wc; the last
 * pipeline's ls and wc.
 */
const FORKING_SCRIPT_CHILDREN = ['ls', 'ls', 'ls', 'ls', 'sh', 'wc', 'wc'];

/** The real interpreter, not a wrapper script such as pyenv's shim. */
const PYTHON = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();

const HAS_GCC = (() => {
  try {
    execFileSync('gcc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    console.warn('record.test.ts: gcc not found, so the test of cc1 under gcc is skipped');
    return false;
  }
})();

/**
 * Forks three children, which each malloc 200 strings of 600 bytes or more (pymalloc leaves
 * those to malloc) and exit flushing their stdio, then spawns true twice (posix_spawn or vfork).
 */
const FORKS_AND_SPAWNS = [
  'import os, subprocess, sys',
  'for _ in range(3):',
  '    pid = os.fork()',
  '    if pid == 0:',
  '        kept = ["%03d" % i * 200 for i in range(200)]',
  '        sys.exit(0)',
  '    os.waitpid(pid, 0)',
  'subprocess.run(["true"]); subprocess.run(["true"])',
].join('\n');

/** At least the 200 strings of each of FORKS_AND_SPAWNS's children. */
const FORK_CHILD_ALLOCS = 200;

const PYTHON_SCRIPT = 'import json; json.loads(json.dumps([{"k": [i, str(i)]} for i in range(2000)]))';

/** CPython through malloc, in the environment sh passes to its children (it adds PWD). */
let PYTHON_ENVIRONMENT: Record<string, string | undefined>;
let SORT_ALONE: { command: string; args: string[]; env: Record<string, string | undefined>; cwd: string; stdio: 'ignore' };
let PYTHON_ALONE: typeof SORT_ALONE;

/** A shell that starts two different children: sort, then python3 (the exit keeps sh from exec'ing it). */
async function sortThenPython(): Promise<string> {
  return `sort ${join(dir, 'words.txt')} >/dev/null; ${PYTHON} -S -c '${PYTHON_SCRIPT}'; exit 0`;
}

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src', 'tools', 'cli', 'index.ts'), ...args],
      { cwd: ROOT, env: { PATH: process.env.PATH } },
      (error, stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr }),
    );
  });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trace-record-test-'));
  const words = join(dir, 'words.txt');
  await writeFile(words, Array.from({ length: 5000 }, (_, i) => `word-${(i * 7919) % 5000}`).join('\n'));
  PYTHON_ENVIRONMENT = { ...BARE_ENVIRONMENT, PYTHONMALLOC: 'malloc' };
  SORT_ALONE = { command: 'sort', args: [words], env: { ...PYTHON_ENVIRONMENT, PWD: dir }, cwd: dir, stdio: 'ignore' };
  PYTHON_ALONE = { command: PYTHON, args: ['-S', '-c', PYTHON_SCRIPT], env: { ...PYTHON_ENVIRONMENT, PWD: dir }, cwd: dir, stdio: 'ignore' };
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function summaryOf(path: string): Promise<TraceSummary> {
  let summary: TraceSummary | undefined;
  for await (const chunk of openTrace(path)) summary = chunk.summary ?? summary;
  return summary!;
}

/** The one trace of a recording. */
function onlyTrace(summary: RecordSummary): RecordedTrace {
  expect(summary.traces).toHaveLength(1);
  return summary.traces[0]!;
}

/** The recorded trace read back agrees with what record() reported. */
async function expectConsistent(recorded: RecordedTrace): Promise<void> {
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
    const withMalloc = onlyTrace(
      await record({ output: join(dir, 'python.trace.gz'), command: PYTHON, args, env: { PYTHONMALLOC: 'malloc' }, stdio: 'ignore' }),
    );
    await expectConsistent(withMalloc);
    expect(withMalloc.ops).toBeGreaterThan(20_000);

    // pymalloc serves requests up to 512 bytes from its own arenas: mtrace sees only the rest.
    const withPymalloc = onlyTrace(
      await record({ output: join(dir, 'python-pymalloc.trace'), command: PYTHON, args, env: { PYTHONMALLOC: 'pymalloc' }, stdio: 'ignore' }),
    );
    await expectConsistent(withPymalloc);
    expect(withPymalloc.ops * 4).toBeLessThan(withMalloc.ops);

    const header = gunzipSync(await readFile(withMalloc.output)).toString().split('\n', 2);
    expect(header).toEqual(['# pymalloc-trace v1', `# recorded with glibc mtrace from: ${PYTHON} -S -c ${JSON.stringify(script)}`]);
  });

  it('records ls and sort', { timeout: RECORDING_TIMEOUT }, async () => {
    const ls = onlyTrace(await record({ output: join(dir, 'ls.trace'), command: 'ls', args: ['-l', '/usr/lib'], stdio: 'ignore' }));
    await expectConsistent(ls);
    expect(ls.allocs).toBeGreaterThan(100);

    const input = join(dir, 'words.txt');
    await writeFile(input, Array.from({ length: 5000 }, (_, i) => `word-${(i * 7919) % 5000}`).join('\n'));
    const sort = onlyTrace(await record({ output: join(dir, 'sort.trace.gz'), command: 'sort', args: [input], stdio: 'ignore' }));
    await expectConsistent(sort);
    expect(sort.allocs).toBeGreaterThan(10);
  });

  it('follows a wrapper that execs the program, and leaves its two children out', { timeout: RECORDING_TIMEOUT }, async () => {
    // sh starts two children running ls (not traced), then execs ls itself (traced, as a new heap).
    const wrapped = await record({
      output: join(dir, 'wrapped.trace'),
      command: 'sh',
      args: ['-c', 'ls / >/dev/null; ls / >/dev/null; exec ls -l /usr/lib'],
      stdio: 'ignore',
    });
    const trace = onlyTrace(wrapped);
    await expectConsistent(trace);
    expect(trace).toMatchObject({ output: join(dir, 'wrapped.trace'), program: 'ls' });
    expect(wrapped.untraced.map(({ program }) => program)).toEqual(['ls', 'ls']);
    expect(new Set([trace.pid, ...wrapped.untraced.map(({ pid }) => pid)]).size).toBe(3);
    const text = await readFile(trace.output, 'utf8');
    expect(text.split('\n').filter((line) => line.startsWith('a ')).length).toBe(trace.allocs);
  });

  it('records a shell that forks children, dropping the line its _exit() cut off', { timeout: RECORDING_TIMEOUT }, async () => {
    const recorded = await record({
      output: join(dir, 'forking.trace'),
      command: 'sh',
      args: ['-c', FORKING_SCRIPT],
      env: BARE_ENVIRONMENT,
      stdio: 'ignore',
    });
    const forking = onlyTrace(recorded);
    await expectConsistent(forking);
    expect(forking).toMatchObject({ truncatedLines: 1, skippedFrees: 0, impliedFrees: 0 });
    const lines = (await readFile(forking.output, 'utf8')).split('\n');
    expect(lines.slice(0, 2)).toEqual(['# pymalloc-trace v1', `# recorded with glibc mtrace from: sh -c ${JSON.stringify(FORKING_SCRIPT)}`]);
    expect(lines.filter((line) => line.startsWith('a ')).length).toBe(forking.allocs);
    expect(recorded.untraced.map(({ program }) => program).sort()).toEqual(FORKING_SCRIPT_CHILDREN);
    // The ls children are left out: one ls alone allocates more than the whole trace holds.
    const ls = onlyTrace(await record({ output: join(dir, 'ls-usr-lib.trace'), command: 'ls', args: ['/usr/lib'], stdio: 'ignore' }));
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

  it('says the trace cannot be written before running the command', { timeout: RECORDING_TIMEOUT }, async () => {
    const marker = join(dir, 'ran-unwritable');
    const output = join(dir, 'no-such-dir', 'x.trace');
    const recording = record({ output, command: 'sh', args: ['-c', `: > ${marker}`], stdio: 'ignore', processes: 'all' });
    await expect(recording).rejects.toThrow(TraceFileError);
    await expect(recording).rejects.toThrow(`cannot write trace file ${output}: ENOENT`);
    expect(existsSync(marker)).toBe(false);
  });

  it('validates its options', async () => {
    await expect(record({ output: '', command: 'ls' })).rejects.toThrow('options.output must be a non-empty string');
    await expect(record({ output: 'x', command: 'ls', cacheDir: '' })).rejects.toThrow('options.cacheDir must be a non-empty string');
    const processes = "options.processes must be 'all' or a non-empty array of program names (file names, without '/')";
    await expect(record({ output: 'x', command: 'ls', processes: [] })).rejects.toThrow(`${processes}, got []`);
    await expect(record({ output: 'x', command: 'ls', processes: ['bin/ls'] })).rejects.toThrow(`${processes}, got ["bin/ls"]`);
    await expect(record({ output: 'x', command: 'ls', processes: 'every' as 'all' })).rejects.toThrow(TypeError);
  });
});

describe('pymalloc record', () => {
  it('prints what was imported, what was skipped or implied, and a warning for the cut-off line', { timeout: RECORDING_TIMEOUT }, async () => {
    const output = join(dir, 'cli.trace');
    const run = await runCli(['record', '-o', output, '--cache-dir', join(dir, 'cli-cache'), '--', 'sh', '-c', FORKING_SCRIPT]);
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
      'pymalloc: warning: 7 child processes ran untraced (ls (4), wc (2), sh): record them with --process NAME (one trace per process running NAME) or --all-processes',
      '',
    ]);
  });

  it('warns of exactly the child processes left untraced, forked or spawned', { timeout: RECORDING_TIMEOUT }, async () => {
    const output = join(dir, 'cli-children.trace');
    const run = await runCli(['record', '-o', output, '--', PYTHON, '-S', '-c', FORKS_AND_SPAWNS]);
    expect(run.code).toBe(0);
    const lines = run.stderr.split('\n');
    expect(lines[0]).toMatch(new RegExp(`^${output}: imported \\d+ ops`));
    expect(lines.slice(1)).toEqual([
      'pymalloc: warning: 5 child processes ran untraced (python3 (3), true (2)): record them with --process NAME (one trace per process running NAME) or --all-processes',
      '',
    ]);
  });

  it('records the processes of --process NAME, and says which others ran', { timeout: RECORDING_TIMEOUT }, async () => {
    const output = join(dir, 'cli-sort.trace');
    const run = await runCli(['record', '-o', output, '--process', 'sort', '--', 'sh', '-c', await sortThenPython()]);
    expect(run.code).toBe(0);
    const sort = await summaryOf(output);
    const lines = run.stderr.split('\n');
    expect(lines[0]).toMatch(
      new RegExp(`^${output}: imported ${sort.ops} ops \\(${sort.allocs} allocs, ${sort.frees} frees, ${sort.reallocs} reallocs\\); skipped \\d+ frees`),
    );
    expect(lines.slice(1)).toEqual(['pymalloc: 2 other processes ran untraced (sh, python3)', '']);
  });

  it('refuses --process with --all-processes', async () => {
    const run = await runCli(['record', '-o', join(dir, 'both.trace'), '--process', 'ls', '--all-processes', '--', 'ls']);
    expect(run).toMatchObject({ code: 2, stderr: 'pymalloc: give --process NAME or --all-processes, not both\n' });
    expect(existsSync(join(dir, 'both.trace'))).toBe(false);
  });
});

describe('record: child processes', () => {
  const SOURCE = join(ROOT, 'peers', 'native', 'replay.c');

  it.skipIf(!HAS_GCC)('records cc1 under the gcc driver with processes: ["cc1"], the driver alone by default', { timeout: RECORDING_TIMEOUT }, async () => {
    const args = ['-O2', '-c', SOURCE, '-o', join(dir, 'replay.o')];
    const driverOnly = await record({ output: join(dir, 'gcc.trace'), command: 'gcc', args, stdio: 'ignore' });
    const driver = onlyTrace(driverOnly);
    expect(driver).toMatchObject({ output: join(dir, 'gcc.trace'), program: 'gcc' });
    expect(driverOnly.untraced.map(({ program }) => program)).toEqual(['cc1', 'as']);

    const output = join(dir, 'cc1.trace.gz');
    const compiler = await record({ output, command: 'gcc', args, stdio: 'ignore', processes: ['cc1'] });
    const cc1 = onlyTrace(compiler);
    await expectConsistent(cc1);
    expect(cc1).toMatchObject({ output, program: 'cc1' });
    expect(cc1.ops).toBeGreaterThan(10_000);
    expect(cc1.ops).toBeGreaterThan(10 * driver.ops);
    expect(compiler.untraced.map(({ program }) => program)).toEqual(['gcc', 'as']);
    expect(compiler.untraced.map(({ pid }) => pid)).not.toContain(cc1.pid);
    const header = gunzipSync(await readFile(output)).toString().split('\n', 3);
    expect(header).toEqual([
      '# pymalloc-trace v1',
      `# recorded with glibc mtrace from: gcc ${args.join(' ')}`,
      `# process ${cc1.pid}, traced from when it ran cc1`,
    ]);
  });

  it('picks each child of a forking shell with processes, one trace per process', { timeout: 2 * RECORDING_TIMEOUT }, async () => {
    const script = await sortThenPython();
    const shell = { command: 'sh', args: ['-c', script], env: PYTHON_ENVIRONMENT, cwd: dir, stdio: 'ignore' as const };

    const sortOnly = await record({ ...shell, output: join(dir, 'only-sort.trace'), processes: ['sort'] });
    const sort = onlyTrace(sortOnly);
    await expectConsistent(sort);
    expect(sort).toMatchObject({ output: join(dir, 'only-sort.trace'), program: 'sort' });
    expect(sortOnly.untraced.map(({ program }) => program)).toEqual(['sh', 'python3']);
    // The same ops as sort recorded alone: nothing of the shell or of python3 came in.
    const sortAlone = onlyTrace(await record({ ...SORT_ALONE, output: join(dir, 'sort-alone.trace') }));
    expect(sort).toMatchObject({ ops: sortAlone.ops, allocs: sortAlone.allocs, frees: sortAlone.frees, reallocs: sortAlone.reallocs });

    const pythonOnly = await record({ ...shell, output: join(dir, 'only-python.trace'), processes: ['python3'] });
    const python = onlyTrace(pythonOnly);
    await expectConsistent(python);
    expect(python).toMatchObject({ output: join(dir, 'only-python.trace'), program: 'python3' });
    expect(pythonOnly.untraced.map(({ program }) => program)).toEqual(['sh', 'sort']);
    const pythonAlone = onlyTrace(
      await record({ ...PYTHON_ALONE, output: join(dir, 'python-alone.trace'), processes: ['python3'] }),
    );
    // CPython's op count moves by a few with the length of its environment; sort's whole
    // trace, or the shell's, would move it by more.
    expect(Math.abs(python.ops - pythonAlone.ops)).toBeLessThan(sort.ops);
    expect(python.ops).toBeGreaterThan(100 * sort.ops);

    // Two names: a trace each, named after the process; nothing at the output path itself.
    const output = join(dir, 'both.trace.gz');
    const both = await record({ ...shell, output, processes: ['sort', 'python3'] });
    expect(both.traces.map(({ program }) => program)).toEqual(['sort', 'python3']);
    expect(both.traces.map(({ output: path }) => path)).toEqual(both.traces.map(({ program, pid }) => processTracePath(output, program, pid)));
    expect(both.traces[0]!.ops).toBe(sort.ops);
    expect(Math.abs(both.traces[1]!.ops - python.ops)).toBeLessThan(sort.ops);
    for (const trace of both.traces) await expectConsistent(trace);
    expect(both.untraced.map(({ program }) => program)).toEqual(['sh']);
    expect(existsSync(output)).toBe(false);

    const all = await record({ ...shell, output: join(dir, 'all.trace'), processes: 'all' });
    expect(all.traces.map(({ program }) => program)).toEqual(['sh', 'sort', 'python3']);
    expect(all.untraced).toEqual([]);
    expect(all.traces[1]!.ops).toBe(sort.ops);
    expect(Math.abs(all.traces[2]!.ops - python.ops)).toBeLessThan(sort.ops);
    for (const trace of all.traces) await expectConsistent(trace);
  });

  it('traces the images of the chosen name in a process that execs, and its forks', { timeout: RECORDING_TIMEOUT }, async () => {
    // The root process runs sh, then execs ls: only its ls image is traced. Its child runs ls.
    const script = 'ls / >/dev/null; exec ls -l /usr/lib';
    const whole = onlyTrace(await record({ output: join(dir, 'exec-whole.trace'), command: 'sh', args: ['-c', script], stdio: 'ignore' }));
    const named = await record({ output: join(dir, 'exec.trace'), command: 'sh', args: ['-c', script], stdio: 'ignore', processes: ['ls'] });
    expect(named.traces.map(({ program }) => program)).toEqual(['ls', 'ls']);
    expect(named.untraced).toEqual([]);
    const [root, child] = named.traces as [RecordedTrace, RecordedTrace];
    expect(root.pid).toBe(named.pid);
    expect(root.ops).toBeLessThan(whole.ops); // without the shell's image
    for (const trace of named.traces) await expectConsistent(trace);

    expect(child.pid).not.toBe(root.pid);
  });

  it('keeps a forked child\'s heap out of its parent\'s trace, and traces it alone when asked', { timeout: RECORDING_TIMEOUT }, async () => {
    const forking = { command: PYTHON, args: ['-S', '-c', FORKS_AND_SPAWNS], stdio: 'ignore' as const };
    // A child's lines (or its copy of the parent's unwritten ones) in the parent's stream would
    // allocate addresses that are live there: implied frees.
    const parentOnly = await record({ ...forking, output: join(dir, 'fork-parent.trace') });
    const parent = onlyTrace(parentOnly);
    expect(parent).toMatchObject({ program: 'python3', impliedFrees: 0, truncatedLines: 0 });
    expect(parentOnly.untraced.map(({ program }) => program)).toEqual(['python3', 'python3', 'python3', 'true', 'true']);

    // Forked children run the program of their parent, so they are traced too, each alone.
    const forks = await record({ ...forking, output: join(dir, 'forks.trace'), processes: ['python3'] });
    expect(forks.traces.map(({ program }) => program)).toEqual(['python3', 'python3', 'python3', 'python3']);
    expect(forks.untraced.map(({ program }) => program)).toEqual(['true', 'true']);
    const [root, ...children] = forks.traces as [RecordedTrace, ...RecordedTrace[]];
    expect(root).toMatchObject({ pid: forks.pid, impliedFrees: 0 });
    expect(Math.abs(root.ops - parent.ops)).toBeLessThan(FORK_CHILD_ALLOCS);
    for (const child of children) {
      expect(child).toMatchObject({ impliedFrees: 0, truncatedLines: 0 });
      expect(child.allocs).toBeGreaterThanOrEqual(FORK_CHILD_ALLOCS);
      expect(child.allocs).toBeLessThan(root.allocs);
    }
    for (const trace of forks.traces) await expectConsistent(trace);
  });

  it('names the programs that ran when none has the name asked for, leaving no output', { timeout: RECORDING_TIMEOUT }, async () => {
    const output = join(dir, 'nosuch.trace');
    const recording = record({ output, command: 'sh', args: ['-c', 'ls / >/dev/null; exit 0'], stdio: 'ignore', processes: ['no-such-program'] });
    await expect(recording).rejects.toThrow(RecordError);
    await expect(recording).rejects.toThrow(`no process of no-such-program ran under sh -c "ls / >/dev/null; exit 0"; the programs that ran: sh, ls`);
    expect((await readdir(dir)).filter((name) => name.startsWith('nosuch'))).toEqual([]);
  });

  it('names one process\'s trace after its program and pid', () => {
    expect(processTracePath('out.trace.gz', 'cc1', 12345)).toBe('out.cc1.12345.trace.gz');
    expect(processTracePath('/d/x.trace', 'cc1', 7)).toBe('/d/x.cc1.7.trace');
    expect(processTracePath('x.gz', 'as', 7)).toBe('x.as.7.gz');
    expect(processTracePath('traces.d/out', 'my prog', 7)).toBe('traces.d/out.my_prog.7');
    expect(processTracePath('/d/.trace', 'sh', 7)).toBe('/d/.trace.sh.7');
  });
});
