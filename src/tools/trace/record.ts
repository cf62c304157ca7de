// Recording a program's heap operations with glibc's mtrace, converted to the canonical format
// while the program runs: one trace per traced process.
//
//     scripts/record/mtrace-shim.c ──gcc, once per source version──> <cacheDir>/mtrace-shim-<hash>.so
//
//     command, and every process under it   LD_PRELOAD=libc_malloc_debug.so.0:mtrace-shim.so
//        │ each image announces itself         │ a traced image's mtrace lines, through a named
//        │ on <work dir>/control               │ pipe of its own, created by the shim; the pipe
//        ▼                                     ▼ holds 64 KiB, so the image waits if we fall behind
//     readAnnouncements ──opens each stream──> the process's streams, one after the other
//        ──> readTrace (MtraceImporter) ──> TraceWriter ──> <output>.<pid>-<random>.partial
//        ──rename, once all are done──> output, or output.<program>.<pid> when several were traced
//
// scripts/record/mtrace-shim.c describes the announcements, which images are traced
// (options.processes) and the handshake that opens a stream. Nothing accumulates: the importer
// keeps the addresses of live blocks only, and the writer streams (through gzip when the output
// ends in .gz).
//
// Tricky: the reader of a named pipe sees end-of-file whenever no writer has it open. For the
// control pipe we hold a write end ourselves until the command has exited, so end-of-file comes
// exactly once, after the last announcement of the command's processes. A stream's end-of-file
// is final once a byte came (the shim writes one first), or once the announcements are over.
//
// Tricky too: glibc flushes the trace in 512-byte writes, and a write into a pipe whose reader
// sleeps on it (in read(), or in epoll as a socket's would) wakes that reader: a context switch
// per 512 bytes, which slowed the traced program by more than the whole import costs. So nobody
// sleeps on a pipe: drainPipe() reads it without blocking, straight again after every piece,
// and only when it finds the pipe empty waits POLL_INTERVAL_MS on a timer, while the program
// fills the pipe undisturbed. No read blocks a thread of libuv's pool.
//
// CPython serves most requests from its own allocator (pymalloc), which mtrace never sees; set
// PYTHONMALLOC=malloc (in options.env or the environment) to record what CPython asks for.
//
// Recording writes nothing into the package (which may be installed read-only): the shim goes
// to a cache directory, the named pipes to a temporary one, the traces where they are asked to.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter, on } from 'node:events';
import { closeSync, constants, openSync, read } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
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
  /**
   * Which processes to trace, each into a trace of its own: the command's own process (across
   * exec, so a wrapper script that execs the real program is followed), the processes running a
   * program of one of these names, or `'all'`. A program's name is the file name it was started
   * by, as `ps` shows it (a script's own name, not its interpreter's): `['cc1']` under `gcc`.
   * The command's own process goes to `output`, and so does the one process of the names when
   * only one ran them; otherwise each goes to `output` with `.<program>.<pid>` inserted before
   * the extension (processTracePath).
   * @default the command's own process
   */
  processes?: 'all' | readonly string[];
}

/** A traced process, and the summary of its trace. */
export interface RecordedTrace extends TraceSummary {
  /** The trace file it was written to. */
  output: string;
  pid: number;
  /** The name of the last program it was traced in (the file name it was started by). */
  program: string;
}

/** A process that ran untraced. */
export interface UntracedProcess {
  pid: number;
  /** The name of the last program it ran. */
  program: string;
}

/** What was recorded. */
export interface RecordSummary {
  command: string;
  args: string[];
  /** The command's process; undefined if it could not be started. */
  pid: number | undefined;
  /** One per traced process, in the order the processes were first seen. */
  traces: RecordedTrace[];
  /**
   * The processes that ran untraced, in the order they were first seen. Only processes that
   * loaded the shim are seen: those of dynamically linked programs that are not setuid, and
   * their forks.
   */
  untraced: UntracedProcess[];
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
 * write a raw mtrace file of the program's first image (not of its children, nor of a program
 * it execs), which record() would convert as the program runs instead.
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


// ---- which processes, and where their traces go -------------------------------------------------

/** The environment the shim reads; see scripts/record/mtrace-shim.c. */
const SHIM_VARIABLES = {
  dir: 'PYMALLOC_RECORD_DIR',
  processes: 'PYMALLOC_RECORD_PROCESSES',
  parent: 'PYMALLOC_RECORD_PARENT',
  /** Set by the first image when there is no recorder: cleared so that it sees none. */
  firstPid: 'PYMALLOC_RECORD_PID',
} as const;

const CONTROL_PIPE = 'control';

/** PYMALLOC_RECORD_PROCESSES for options.processes. */
function processesVariable(processes: 'command' | 'all' | readonly string[]): string {
  if (processes === 'command') return '';
  if (processes === 'all') return '*';
  return `/${processes.join('/')}/`;
}

/** The endings kept last when a process's program and pid go into a trace's file name. */
const TRACE_EXTENSIONS = ['.trace.gz', '.trace', '.gz'] as const;

/**
 * Where the trace of one of several recorded processes goes: `output` with `.<program>.<pid>`
 * inserted before `.trace.gz`, `.trace` or `.gz` (else appended): out.trace.gz ->
 * out.cc1.12345.trace.gz. Characters other than letters, digits and `._+-` in the program's
 * name become `_`.
 */
export function processTracePath(output: string, program: string, pid: number | string): string {
  const name = basename(output);
  const extension = TRACE_EXTENSIONS.find((ending) => name.endsWith(ending) && name.length > ending.length) ?? '';
  const stem = output.slice(0, output.length - extension.length);
  return `${stem}.${program.replace(/[^\w.+-]/g, '_')}.${pid}${extension}`;
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

interface DrainOptions {
  /** Stops the draining at its next read. */
  signal: AbortSignal;
  /** For a stream, while nothing came: whether its writer may still come (the shim's handshake). */
  writerMayCome?: () => boolean;
}

/** The bytes of a named pipe opened without blocking, until no writer has it open (see the
 *  comment at the top for when that is final, and why it never waits on the pipe itself).
 *  Closes the pipe at the end. */
async function* drainPipe(fd: number, options: DrainOptions): AsyncGenerator<Buffer> {
  const buffer = Buffer.allocUnsafe(PIPE_READ_BYTES);
  let started = false;
  try {
    while (!options.signal.aborted) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await readAsync(fd, buffer, 0, PIPE_READ_BYTES, null));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
        await sleep(POLL_INTERVAL_MS);
        continue;
      }
      if (bytesRead === 0) {
        if (started || options.writerMayCome?.() !== true) return;
        await sleep(POLL_INTERVAL_MS);
        continue;
      }
      started = true;
      yield Buffer.from(buffer.subarray(0, bytesRead));
    }
  } finally {
    closeSync(fd);
  }
}

/** Streams mtrace output into the writer; resolves with the summary of the converted trace. */
async function convert(input: AsyncIterable<Buffer>, writer: TraceWriter, source: string, moduleDir: string): Promise<TraceSummary> {
  let summary: TraceSummary | undefined;
  for await (const chunk of readTrace(input, source, { moduleDir })) {
    await writer.writeChunk(chunk);
    summary = chunk.summary ?? summary;
  }
  return summary!;
}

/** One line of the shim on the control pipe: `<event> <pid>.<start> <stream file or -> <program>`. */
const ANNOUNCEMENT = /^(fork|exec) ((\d+)\.-?\d+) ([\w.-]+\.pipe|-) (.*)$/;

/** Every process's bytes begin so: a valid, empty mtrace trace even if nothing else comes (a
 *  process that _exit()s before glibc's first flush leaves nothing else). */
const FIRST_LINE = Buffer.from('= Start\n');

/** A process the shim announced. */
interface SeenProcess {
  readonly pid: number;
  /** The name of its latest program. */
  program: string;
  /** The name of its latest traced program; undefined while none was traced. */
  tracedProgram: string | undefined;
  /** Emits 'stream' with the read end of each traced image's pipe, in order, then 'over'. */
  readonly streams: EventEmitter;
  /** Its conversion, once it has a trace; the writer is closed or aborted at the end. */
  trace: Promise<{ writer: TraceWriter; summary: TraceSummary }> | undefined;
}

/** The state of one recording between the command's start and the last trace's end. */
class Recording {
  readonly processes = new Map<string, SeenProcess>();
  /** The first thing that went wrong on our side (a trace that did not convert, a bad line). */
  failure: { error: unknown } | undefined;
  private readonly stop = new AbortController();
  private announcementsOver = false;
  private readonly openStreams = new Set<number>();

  constructor(
    private readonly workDir: string,
    private readonly output: string,
    private readonly display: string,
    /** The trace header's comments after the one naming the command (and its process). */
    private readonly comments: readonly string[],
    /** Whether the traces name their process: in every mode but the command's own process. */
    private readonly nameEachProcess: boolean,
    /** The command's working directory, which relative module paths in callers are taken from. */
    private readonly cwd: string,
    private readonly onFailure: () => void,
  ) {}

  /** Reads the control pipe to its end, opening each announced stream. */
  async readAnnouncements(controlFd: number): Promise<void> {
    const text = new StringDecoder('utf8');
    let carry = '';
    try {
      for await (const piece of drainPipe(controlFd, { signal: this.stop.signal })) {
        const lines = (carry + text.write(piece)).split('\n');
        carry = lines.pop()!;
        for (const line of lines) this.announced(line);
      }
      if (carry + text.end() !== '' && !this.stop.signal.aborted) this.announced(carry);
    } catch (error) {
      this.fail(error);
    } finally {
      this.announcementsOver = true;
      for (const process of this.processes.values()) process.streams.emit('over');
    }
  }

  /** Every trace's conversion, settled. */
  async traces(): Promise<void> {
    await Promise.allSettled([...this.processes.values()].map((process) => process.trace));
  }

  fail(error: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = { error };
    this.stop.abort();
    this.onFailure();
  }

  /** Removes every temporary trace and closes the pipes still open. */
  async abort(): Promise<void> {
    this.stop.abort();
    for (const fd of this.openStreams) closeSync(fd);
    this.openStreams.clear();
    await Promise.all(
      [...this.processes.values()].map((process) => process.trace?.then(({ writer }) => writer.abort(), () => {})),
    );
  }

  private announced(line: string): void {
    const match = ANNOUNCEMENT.exec(line);
    if (match === null) {
      throw new RecordError(`the mtrace shim announced ${JSON.stringify(line)}, not "<event> <pid>.<start> <stream> <program>"`);
    }
    const [, , id, pid, stream, program] = match as unknown as [string, string, string, string, string, string];
    let process = this.processes.get(id);
    if (process === undefined) {
      process = { pid: Number(pid), program, tracedProgram: undefined, streams: new EventEmitter(), trace: undefined };
      this.processes.set(id, process);
    }
    process.program = program;
    if (stream === '-') return;
    process.tracedProgram = program;
    // Opened at once: the image waits for it (the handshake), and its pipe must have a reader
    // before it exits, or its bytes go with it.
    const fd = openSync(join(this.workDir, stream), constants.O_RDONLY | constants.O_NONBLOCK);
    this.openStreams.add(fd);
    if (process.trace === undefined) this.startTrace(process, program);
    process.streams.emit('stream', fd);
  }

  private startTrace(process: SeenProcess, program: string): void {
    // Listening before the first 'stream' is emitted, which on() then holds until it is read.
    const streams = on(process.streams, 'stream', { close: ['over'] }) as AsyncIterableIterator<[number]>;
    const source = this.nameEachProcess
      ? `mtrace output of ${program} (pid ${process.pid}) under ${this.display}`
      : `mtrace output of ${this.display}`;
    const comments = [
      `recorded with glibc mtrace from: ${this.display}`,
      ...(this.nameEachProcess ? [`process ${process.pid}, traced from when it ran ${program}`] : []),
      ...this.comments,
    ];
    const recording = this;
    async function* bytes(): AsyncGenerator<Buffer> {
      yield FIRST_LINE;
      for await (const [fd] of streams) {
        recording.openStreams.delete(fd);
        yield* drainPipe(fd, { signal: recording.stop.signal, writerMayCome: () => !recording.announcementsOver });
      }
    }
    process.trace = (async () => {
      const writer = await TraceWriter.create(this.output, { comments });
      try {
        return { writer, summary: await convert(bytes(), writer, source, this.cwd) };
      } catch (error) {
        await writer.abort();
        throw error;
      }
    })();
    process.trace.catch((error: unknown) => this.fail(error));
  }
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
  const processes = options.processes ?? 'command';
  if (
    processes !== 'command' &&
    processes !== 'all' &&
    (!Array.isArray(processes) ||
      processes.length === 0 ||
      !processes.every((name) => typeof name === 'string' && /^[^/\n\0]{1,255}$/.test(name)))
  ) {
    throw new TypeError(`options.processes must be 'all' or a non-empty array of program names (file names, without '/'), got ${JSON.stringify(processes)}`);
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
    processes: processes as 'command' | 'all' | readonly string[],
  };
}

/** Programs with how many processes ran each, most first: "cc1, as" or "bash (12), sed (3)". */
export function describePrograms(processes: readonly { program: string }[], limit = 8): string {
  const counts = new Map<string, number>();
  for (const { program } of processes) counts.set(program, (counts.get(program) ?? 0) + 1);
  const sorted = [...counts].sort((a, b) => b[1] - a[1]);
  const shown = sorted.slice(0, limit).map(([program, count]) => (count === 1 ? program : `${program} (${count})`));
  return sorted.length > limit ? `${shown.join(', ')}, ...` : shown.join(', ');
}

/** Final paths for the traces, in order: see RecordOptions.processes. */
function tracePaths(output: string, traced: readonly SeenProcess[], processes: 'command' | 'all' | readonly string[]): string[] {
  if (processes !== 'all' && traced.length === 1) return [output];
  const taken = new Set<string>();
  return traced.map((process) => {
    // A pid the system handed out again during the recording gets a second name.
    let path = processTracePath(output, process.tracedProgram!, process.pid);
    for (let n = 2; taken.has(path); n++) path = processTracePath(output, process.tracedProgram!, `${process.pid}-${n}`);
    taken.add(path);
    return path;
  });
}

function noTraceError(display: string, processes: 'command' | 'all' | readonly string[], seen: readonly SeenProcess[]): RecordError {
  if (Array.isArray(processes) && seen.length > 0) {
    const names = (processes as readonly string[]).join(', ');
    return new RecordError(`no process of ${names} ran under ${display}; the programs that ran: ${describePrograms(seen)}`);
  }
  const noOutput = `${display} produced no mtrace output: is it statically linked or setuid, or is ${MALLOC_DEBUG_LIBRARY} missing?`;
  if (processes === 'command' && seen.length > 0) {
    return new RecordError(`${noOutput} ${seen.length} of the processes it started could be traced (${describePrograms(seen)}): choose them with --process NAME, or --all-processes`);
  }
  return new RecordError(noOutput);
}

/**
 * Runs a command under glibc's mtrace and writes the heap operations of its process, or of the
 * processes chosen with `options.processes`, each to a canonical trace, converting while the
 * command runs. Throws RecordError if the command is not found, fails, or yields no trace; no
 * output file then exists (each is written under a temporary name and renamed at the end).
 *
 * Needs glibc's libc_malloc_debug.so.0, and gcc the first time (per shim version and cache
 * directory): without it, MissingCompilerError before the command runs. mtrace costs about 2 µs
 * per event, so a program that allocates a lot runs tens of times slower. A last line the
 * program left cut off is dropped and counted in `truncatedLines`. The processes left untraced
 * are listed in `untraced`.
 */
export async function record(options: RecordOptions): Promise<RecordSummary> {
  const settings = resolveRecordOptions(options);
  const { output, command, args } = settings;
  const display = describeCommand(command, args);
  const started = performance.now();

  const preload = await mtracePreload(settings);
  const inheritedPreload = settings.env.LD_PRELOAD ?? process.env.LD_PRELOAD;
  if (inheritedPreload) preload.push(inheritedPreload);

  // The traces are created as their processes start; whether they can be is known before.
  await (await TraceWriter.create(output)).abort();

  const workDir = await mkdtemp(join(tmpdir(), 'pymalloc-record-'));
  try {
    const controlPath = join(workDir, CONTROL_PIPE);
    await execFileAsync('mkfifo', ['-m', '600', controlPath]);
    const controlRead = openSync(controlPath, constants.O_RDONLY | constants.O_NONBLOCK);
    const controlHold = openSync(controlPath, constants.O_WRONLY | constants.O_NONBLOCK);

    let child: ChildProcess | undefined;
    let killedByUs = false;
    const recording = new Recording(
      workDir,
      output,
      display,
      settings.comments,
      settings.processes !== 'command',
      settings.cwd,
      () => {
        if (child !== undefined && child.exitCode === null && child.signalCode === null) killedByUs = child.kill('SIGKILL');
      },
    );
    child = spawn(command, args, {
      cwd: settings.cwd,
      stdio: settings.stdio,
      env: {
        ...process.env,
        ...settings.env,
        LD_PRELOAD: preload.join(':'),
        MALLOC_TRACE: undefined,
        [SHIM_VARIABLES.dir]: workDir,
        [SHIM_VARIABLES.processes]: processesVariable(settings.processes),
        [SHIM_VARIABLES.parent]: String(process.pid),
        [SHIM_VARIABLES.firstPid]: undefined,
      },
    });
    const exited = waitForExit(child).finally(() => closeSync(controlHold));
    const [status] = await Promise.all([exited, recording.readAnnouncements(controlRead)]);
    await recording.traces();

    const commandFailure = killedByUs ? undefined : failure(status, command, display);
    const seen = [...recording.processes.values()];
    const traced = seen.filter((process) => process.trace !== undefined);
    const problem = commandFailure ?? recording.failure?.error ?? (traced.length === 0 ? noTraceError(display, settings.processes, seen) : undefined);
    if (problem !== undefined) {
      await recording.abort();
      throw problem;
    }

    const paths = tracePaths(output, traced, settings.processes);
    const traces: RecordedTrace[] = [];
    try {
      for (const [i, process] of traced.entries()) {
        const { writer, summary } = await process.trace!;
        await writer.close(paths[i]);
        traces.push({ ...summary, output: paths[i]!, pid: process.pid, program: process.tracedProgram! });
      }
    } catch (error) {
      await recording.abort();
      throw error;
    }
    return {
      command,
      args,
      pid: child.pid,
      traces,
      untraced: seen.filter((process) => process.trace === undefined).map(({ pid, program }) => ({ pid, program })),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}
