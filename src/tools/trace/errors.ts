// Errors of the trace layer. Each names where it happened: a trace line, a file, or a command.

/** The longest excerpt of an offending line quoted in a message, escapes included. */
const QUOTED_LINE_LIMIT = 80;

/** A character as it shows in a quoted line: printable ASCII as itself, anything else escaped. */
function printable(char: string): string {
  const code = char.codePointAt(0)!;
  if (char === '"' || char === '\\') return `\\${char}`;
  if (code >= 0x20 && code < 0x7f) return char;
  if (code < 0x100) return `\\x${code.toString(16).padStart(2, '0')}`;
  return code < 0x10000 ? `\\u${code.toString(16).padStart(4, '0')}` : `\\u{${code.toString(16)}}`;
}

/**
 * The line in double quotes, at most QUOTED_LINE_LIMIT characters of printable ASCII: control
 * characters, the U+FFFD that undecodable bytes become and any other non-ASCII are escaped
 * (\xNN, \uNNNN), so the first "line" of a binary file quotes as a short excerpt, not mojibake.
 */
function quote(line: string): string {
  let shown = '';
  for (const char of line) {
    const escaped = printable(char);
    if (shown.length + escaped.length > QUOTED_LINE_LIMIT) return `"${shown}..."`;
    shown += escaped;
  }
  return `"${shown}"`;
}

/**
 * A trace that cannot be read: a malformed line, an op on an id that is not live, an unknown
 * format. The message reads `source:line: problem`, e.g.
 * `traces/x.trace:17: malformed line "a 12": expected "a <id> <size>"`.
 */
export class TraceFormatError extends Error {
  override readonly name = 'TraceFormatError';

  /**
   * @param source     the file name (or `<text>`) used in the message
   * @param lineNumber 1-based number of the offending line; 0 when the problem is the whole input
   * @param line       the offending line, without its newline ('' when lineNumber is 0)
   * @param problem    what is wrong; `{line}` is replaced by the quoted line
   */
  constructor(
    readonly source: string,
    readonly lineNumber: number,
    readonly line: string,
    problem: string,
  ) {
    const where = lineNumber > 0 ? `${source}:${lineNumber}` : source;
    super(`${where}: ${problem.replace('{line}', quote(line))}`);
  }
}

/** A trace file that cannot be opened, read or written. */
export class TraceFileError extends Error {
  override readonly name = 'TraceFileError';

  constructor(
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A recording that failed: the command was not found, failed, or produced no mtrace output;
 *  or what recording needs is missing (MissingCompilerError). */
export class RecordError extends Error {
  override readonly name: string = 'RecordError';

  /**
   * @param exitCode the command's exit code; null when it was not started or died of a signal
   * @param signal   the signal that ended it, if any
   */
  constructor(
    message: string,
    readonly exitCode: number | null = null,
    readonly signal: NodeJS.Signals | null = null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Recording needs a C compiler, once per version of its mtrace shim, and there is none. Thrown
 * before the command is run.
 */
export class MissingCompilerError extends RecordError {
  override readonly name = 'MissingCompilerError';

  /**
   * @param compiler the compiler looked for in PATH
   * @param cacheDir where the compiled shim would have been kept
   */
  constructor(
    readonly compiler: string,
    readonly cacheDir: string,
    options?: { cause?: unknown },
  ) {
    super(
      `${compiler} not found in PATH: recording compiles its mtrace shim with ${compiler} once, into ${cacheDir}; ` +
        `install it (Debian, Ubuntu: apt-get install ${compiler}) and run again`,
      null,
      null,
      options,
    );
  }
}

/** `sites` on a trace that carries no call sites: it was recorded or converted without them. */
export class SitesMissingError extends Error {
  override readonly name = 'SitesMissingError';

  constructor(readonly path: string) {
    super(
      `${path} has no call-site data: its alloc lines carry no site (a trace recorded before sites were kept, ` +
        `or made by a tool that drops them). Record one with: npx pymalloc record -o OUT.trace.gz -- COMMAND ` +
        `(glibc mtrace keeps each allocation's caller), or convert an mtrace file with: npx pymalloc convert IN.mtrace OUT.trace.gz`,
    );
  }
}
