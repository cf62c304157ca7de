// Recording a program's heap operations with glibc's mtrace, converted to the canonical format
// while the program runs.
//
//     scripts/record/mtrace-shim.c ──gcc, once per source version──> <cacheDir>/mtrace-shim-<hash>.so
//
//     command   LD_PRELOAD=libc_malloc_debug.so.0:mtrace-shim.so   MALLOC_TRACE=<named pipe>
//        │  mtrace lines; the pipe holds 64 KiB, so the program waits whenever we fall behind
//        ▼
//     readTrace (MtraceImporter) ──> TraceWriter ──> <output>.<pid>-<random>.partial ──rename──> output
//
// Nothing accumulates: the importer keeps the addresses of live blocks only, and the writer
// streams (through gzip when the output ends in .gz).
//
// Tricky: the reader of a named pipe sees end-of-file whenever no writer has the pipe open,
// before the program opens it as well as after it closes it. So we open the read end without
// blocking, then hold a write end ourselves until the program has exited: end-of-file comes
// exactly once, after the program's last byte, even if the program never started.
//
// Tricky too: glibc flushes the trace in 512-byte writes, and a write into a pipe whose reader
// sleeps on it (in read(), or in epoll as a socket's would) wakes that reader: a context switch
// per 512 bytes, which slowed the traced program by more than the whole import costs. So nobody
// sleeps on the pipe: drainPipe() reads it without blocking, straight again after every piece,
// and only when it finds the pipe empty waits POLL_INTERVAL_MS on a timer, while the program
// fills the pipe undisturbed. No read blocks a thread of libuv's pool.
//
// CPython serves most requests from its own allocator (pymalloc), which mtrace never sees; set
// PYTHONMALLOC=malloc (in options.env or the environment) to record what CPython asks for.
//
// Recording writes nothing into the package (which may be installed read-only): the shim goes
// to a cache directory, the named pipe to a temporary one, the trace where it is asked to.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, read } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { userCacheDir } from './cache.js';
import { MissingCompilerError, RecordError } from './errors.js';
import type { TraceSummary } from './format.js';
import { readTrace } from './reader.js';
import { TraceWriter } from './writer.js';

const execFileAsync = promisify(execFile);
const readAsync = promisify(read);

export interface RecordOptions {
  /** The trace file to write; gzip-compressed when it ends in `.gz`. */
  output: string;
  /** The program to run, looked up in PATH. */
  command: string;
  /**
   * Its arguments.
   * @default []
   */
  args?: readonly string[];
  /**
   * Variables set for the program on top of process.env (undefined removes one),
   * e.g. `{ PYTHONMALLOC: 'malloc' }` for CPython.
   * @default {}
   */
  env?: Readonly<Record<string, string | undefined>>;
  /**
   * The program's working directory.
   * @default process.cwd()
   */
  cwd?: string;
  /**
   * What the program's stdin, stdout and stderr are connected to.
   * @default 'inherit'
   */
  stdio?: 'inherit' | 'ignore';
  /**
   * Comment lines for the trace header, after the one naming the command.
   * @default []
   */
  comments?: readonly string[];
  /**
   * glibc's libc_malloc_debug.so.0 (which holds mtrace since glibc 2.34).
   * @default found with `ldconfig -p`, then in the usual library directories
   */
  mallocDebugLibrary?: string;
  /**
   * Where the compiled mtrace shim is kept (built with gcc on first use).
   * @default $XDG_CACHE_HOME/pymalloc-wasm, or ~/.cache/pymalloc-wasm
   */
  cacheDir?: string;
}

/** The summary of the converted trace, and what was recorded. */
export interface RecordSummary extends TraceSummary {
  output: string;
  command: string;
  args: string[];
  /** Wall-clock time of the whole recording, compilation of the shim included. */
  seconds: number;
}

const MALLOC_DEBUG_LIBRARY = 'libc_malloc_debug.so.0';

/** How `ldconfig -p` names the architecture of this process's libraries. */
const LDCONFIG_ARCH: Readonly<Partial<Record<NodeJS.Architecture, string>>> = {
  x64: 'x86-64',
  arm64: 'AArch64',
};

const MULTIARCH_TRIPLET: Readonly<Partial<Record<NodeJS.Architecture, string>>> = {
  x64: 'x86_64-linux-gnu',
  arm64: 'aarch64-linux-gnu',
};

const SHIM_SOURCE = fileURLToPath(new URL('../../../scripts/record/mtrace-shim.c', import.meta.url));
const COMPILER = 'gcc';

/** LD_PRELOAD separates entries with spaces and colons, so paths must not contain them. */
const PRELOAD_SEPARATOR = /[ :]/;

/** How long drainPipe() waits after finding the pipe empty. A pipe holds 64 KiB, which CPython
 *  under mtrace takes about 1.4 ms to fill; a faster program finds the pipe full and waits for
 *  the rest of the interval, after which the pipe is never found empty while it keeps writing. */
const POLL_INTERVAL_MS = 1;

/** The most read from the pipe at once: more than it holds. */
const PIPE_READ_BYTES = 256 * 1024;

// ---- what recording needs -----------------------------------------------------------------------

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** glibc's malloc debug library, or undefined (glibc before 2.34 keeps mtrace in libc itself). */
async function findMallocDebugLibrary(): Promise<string | undefined> {
  for (const ldconfig of ['ldconfig', '/sbin/ldconfig']) {
    const listing = await execFileAsync(ldconfig, ['-p']).then(
      (result) => result.stdout,
      () => '',
    );
    const entries = listing
      .split('\n')
      .filter((line) => line.trim().startsWith(`${MALLOC_DEBUG_LIBRARY} `))
      .map((line) => ({ line, path: line.slice(line.lastIndexOf('=> ') + 3).trim() }));
    const arch = LDCONFIG_ARCH[process.arch];
    const chosen = entries.find((entry) => arch !== undefined && entry.line.includes(arch)) ?? entries[0];
    if (chosen !== undefined && (await exists(chosen.path))) return chosen.path;
  }
  const triplet = MULTIARCH_TRIPLET[process.arch];
  const directories = [
    ...(triplet === undefined ? [] : [`/lib/${triplet}`, `/usr/lib/${triplet}`]),
    '/lib64',
    '/usr/lib64',
    '/lib',
    '/usr/lib',
  ];
  for (const directory of directories) {
    const candidate = join(directory, MALLOC_DEBUG_LIBRARY);
    if (await exists(candidate)) return candidate;
  }
  return undefined;
}

/** Compiles the shim unless this version of its source is already in the cache. */
async function buildShim(cacheDir: string): Promise<string> {
  const source = await readFile(SHIM_SOURCE).catch((error: unknown) => {
    throw new RecordError(`the mtrace shim source is missing: ${SHIM_SOURCE}`, null, null, { cause: error });
  });
  const version = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const library = join(cacheDir, `mtrace-shim-${version}.so`);
  if (await exists(library)) return library;

  await mkdir(cacheDir, { recursive: true }).catch((error: unknown) => {
    const message = `cannot create the cache directory ${cacheDir} (choose another with cacheDir, --cache-dir): ${(error as Error).message}`;
    throw new RecordError(message, null, null, { cause: error });
  });
  // Concurrent recordings may build at once: each compiles to its own name, the renames agree.
  const temporary = `${library}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  try {
    await execFileAsync(COMPILER, ['-shared', '-fPIC', '-O2', '-Wall', '-o', temporary, SHIM_SOURCE]);
  } catch (error) {
    await rm(temporary, { force: true });
    const failure = error as NodeJS.ErrnoException & { stderr?: string };
    if (failure.code === 'ENOENT') throw new MissingCompilerError(COMPILER, cacheDir, { cause: error });
    const message = `${COMPILER} failed to build the mtrace shim ${SHIM_SOURCE} into ${cacheDir}:\n${failure.stderr ?? failure.message}`;
    throw new RecordError(message, null, null, { cause: error });
  }
  await rename(temporary, library);
  return library;
}

/**
 * The libraries to put in LD_PRELOAD for glibc's mtrace to trace a program from its start:
 * glibc's malloc debug library (unless glibc is older than 2.34 and keeps mtrace in libc) and
 * the shim, compiled into `cacheDir` on first use. With MALLOC_TRACE=<file> they make glibc
 * write a raw mtrace file, which record() converts as the program runs instead.
 */
export async function mtracePreload(options: Pick<RecordOptions, 'cacheDir' | 'mallocDebugLibrary'> = {}): Promise<string[]> {
  const [mallocDebug, shim] = await Promise.all([
    options.mallocDebugLibrary ?? findMallocDebugLibrary(),
    buildShim(options.cacheDir ?? userCacheDir()),
  ]);
  const preload = [mallocDebug, shim].filter((path): path is string => path !== undefined);
  const unusable = preload.find((path) => PRELOAD_SEPARATOR.test(path));
  if (unusable !== undefined) throw new RecordError(`cannot preload ${unusable}: LD_PRELOAD paths must not contain spaces or colons`);
  return preload;
}

// ---- running the program ------------------------------------------------------------------------

interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the program could not be started. */
  error?: NodeJS.ErrnoException;
}

function waitForExit(child: ChildProcess): Promise<ExitStatus> {
  return new Promise((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

function describeCommand(command: string, args: readonly string[]): string {
  return [command, ...args].map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : JSON.stringify(word))).join(' ');
}

function failure(status: ExitStatus, command: string, display: string): RecordError | undefined {
  if (status.error !== undefined) {
    const message =
      status.error.code === 'ENOENT' ? `command not found: ${command}` : `cannot run ${display}: ${status.error.message}`;
    return new RecordError(message, null, null, { cause: status.error });
  }
  if (status.signal !== null) return new RecordError(`${display} was killed by ${status.signal}`, null, status.signal);
  if (status.code !== 0) return new RecordError(`${display} exited with code ${status.code}`, status.code);
  return undefined;
}

/** The bytes of a named pipe opened without blocking, until no writer has it open; see the
 *  comment at the top for why it never waits on the pipe itself. Closes the pipe at the end. */
async function* drainPipe(fd: number): AsyncGenerator<Buffer> {
  const buffer = Buffer.allocUnsafe(PIPE_READ_BYTES);
  try {
    for (;;) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await readAsync(fd, buffer, 0, PIPE_READ_BYTES, null));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
        await sleep(POLL_INTERVAL_MS);
        continue;
      }
      if (bytesRead === 0) return;
      yield Buffer.from(buffer.subarray(0, bytesRead));
    }
  } finally {
    closeSync(fd);
  }
}

/** Streams mtrace output into the writer; resolves with the summary of the converted trace. */
async function convert(
  input: AsyncIterable<Buffer>,
  writer: TraceWriter,
  source: string,
  received: { bytes: number },
): Promise<TraceSummary> {
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const piece of input) {
      received.bytes += piece.length;
      yield piece;
    }
  }
  let summary: TraceSummary | undefined;
  for await (const chunk of readTrace(counted(), source)) {
    await writer.write(chunk.ops);
    summary = chunk.summary ?? summary;
  }
  return summary!;
}

function resolveRecordOptions(options: RecordOptions) {
  if (typeof options.output !== 'string' || options.output === '') {
    throw new TypeError('options.output must be a non-empty string (the trace file to write)');
  }
  if (typeof options.command !== 'string' || options.command === '') {
    throw new TypeError('options.command must be a non-empty string (the program to run)');
  }
  const args = options.args ?? [];
  if (!Array.isArray(args) || !args.every((arg) => typeof arg === 'string')) {
    throw new TypeError('options.args must be an array of strings');
  }
  if (options.cacheDir !== undefined && (typeof options.cacheDir !== 'string' || options.cacheDir === '')) {
    throw new TypeError('options.cacheDir must be a non-empty string (the directory of the compiled shim)');
  }
  return {
    output: options.output,
    command: options.command,
    args: [...args] as string[],
    env: options.env ?? {},
    cwd: options.cwd ?? process.cwd(),
    stdio: options.stdio ?? 'inherit',
    comments: options.comments ?? [],
    mallocDebugLibrary: options.mallocDebugLibrary,
    cacheDir: options.cacheDir ?? userCacheDir(),
  };
}

/**
 * Runs a command under glibc's mtrace and writes its heap operations to `options.output` as a
 * canonical trace, converting while the command runs. Only the process started is traced, not
 * its children. Throws RecordError if the command is not found, fails, or yields no trace;
 * the output file then does not exist (it is written under a temporary name and renamed at the end).
 *
 * Needs glibc's libc_malloc_debug.so.0, and gcc the first time (per shim version and cache
 * directory): without it, MissingCompilerError before the command runs. mtrace costs about 2 µs
 * per event, so a program that allocates a lot runs tens of times slower. A last line the
 * program left cut off is dropped and counted in `truncatedLines`.
 */
export async function record(options: RecordOptions): Promise<RecordSummary> {
  const settings = resolveRecordOptions(options);
  const { output, command, args } = settings;
  const display = describeCommand(command, args);
  const started = performance.now();

  const preload = await mtracePreload(settings);
  const inheritedPreload = settings.env.LD_PRELOAD ?? process.env.LD_PRELOAD;
  if (inheritedPreload) preload.push(inheritedPreload);

  const workDir = await mkdtemp(join(tmpdir(), 'pymalloc-record-'));
  try {
    const pipePath = join(workDir, 'mtrace.pipe');
    await execFileAsync('mkfifo', ['-m', '600', pipePath]);
    const readEnd = openSync(pipePath, constants.O_RDONLY | constants.O_NONBLOCK);
    const writerHold = openSync(pipePath, constants.O_WRONLY | constants.O_NONBLOCK);

    let writer: TraceWriter;
    try {
      writer = await TraceWriter.create(output, {
        comments: [`recorded with glibc mtrace from: ${display}`, ...settings.comments],
      });
    } catch (error) {
      closeSync(writerHold);
      closeSync(readEnd);
      throw error;
    }

    const child = spawn(command, args, {
      cwd: settings.cwd,
      stdio: settings.stdio,
      env: { ...process.env, ...settings.env, LD_PRELOAD: preload.join(':'), MALLOC_TRACE: pipePath },
    });
    const exited = waitForExit(child).finally(() => closeSync(writerHold));
    const received = { bytes: 0 };
    let killedByUs = false;
    const conversion = convert(drainPipe(readEnd), writer, `mtrace output of ${display}`, received).then(
      (summary) => ({ summary }),
      (error: unknown) => {
        if (child.exitCode === null && child.signalCode === null) killedByUs = child.kill('SIGKILL');
        return { error };
      },
    );
    const [status, converted] = await Promise.all([exited, conversion]);

    const commandFailure = killedByUs ? undefined : failure(status, command, display);
    if (commandFailure !== undefined || 'error' in converted) {
      await writer.abort();
      if (commandFailure !== undefined) throw commandFailure;
      if (received.bytes === 0) {
        throw new RecordError(
          `${display} produced no mtrace output: is it statically linked or setuid, or is ${MALLOC_DEBUG_LIBRARY} missing?`,
        );
      }
      throw (converted as { error: unknown }).error;
    }
    await writer.close();
    return {
      ...converted.summary,
      output,
      command,
      args,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}
