// Errors of the comparison layer. The CLI maps UsageError to exit code 2 and every other error
// to exit code 1.

/** A name the caller gave is not one of the valid ones; the message lists them. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The allocator's .wasm has not been built. */
export class AllocatorUnavailableError extends Error {
  override readonly name = 'AllocatorUnavailableError';

  constructor(
    readonly allocator: string,
    readonly path: string,
    readonly hint: string,
    options?: { cause?: unknown },
  ) {
    super(`${allocator}: not built: ${hint}`, options);
  }
}

/** An allocator module misbehaved outside a replay: memory would not grow, a WASI exit. */
export class AllocatorError extends Error {
  override readonly name = 'AllocatorError';

  constructor(
    readonly allocator: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${allocator}: ${message}`, options);
  }
}

/** Replays of a comparison could not finish; their rows (with `failure`) were printed first. */
export class ReplaysFailedError extends Error {
  override readonly name = 'ReplaysFailedError';

  constructor(readonly messages: readonly string[]) {
    super(`${messages.length} replay${messages.length === 1 ? '' : 's'} could not finish:\n  ${messages.join('\n  ')}`);
  }
}

/** The native reference (peers/native/replay.c) could not be built or failed. */
export class NativeReplayError extends Error {
  override readonly name = 'NativeReplayError';
}

/** The report's directory cannot be made or written to; found before any replay runs. */
export class ReportDirectoryError extends Error {
  override readonly name = 'ReportDirectoryError';

  constructor(
    readonly directory: string,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot write the report in ${directory}: ${problem}`, options);
  }
}
