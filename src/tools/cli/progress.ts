// A progress bar on stderr for long runs, shown only to a person watching: never with --json,
// under CI=true, or when stdout is not a terminal (the output is going to a file or a pipe).

import cliProgress from 'cli-progress';

export interface Progress {
  update(label: string, done: number, total: number): void;
  stop(): void;
}

const QUIET: Progress = { update() {}, stop() {} };

/** Redraws at most this often; a replay reports progress after every segment. */
const REDRAW_MS = 100;

/** `unit` names what the bar counts. */
export function createProgress(json: boolean, unit = 'ops'): Progress {
  if (json || process.env.CI === 'true' || !process.stdout.isTTY) return QUIET;
  const bar = new cliProgress.SingleBar(
    { format: `{label} [{bar}] {percentage}% {value}/{total} ${unit}`, stream: process.stderr, fps: 1000 / REDRAW_MS, clearOnComplete: true, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let current: string | undefined;
  return {
    update(label, done, total) {
      if (label !== current) {
        if (current !== undefined) bar.stop();
        bar.start(total, done, { label });
        current = label;
      } else {
        bar.update(done);
      }
    },
    stop() {
      if (current !== undefined) bar.stop();
      current = undefined;
    },
  };
}
