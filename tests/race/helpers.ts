// The pymalloc command as the race tests run it: src/tools/cli/index.ts through tsx, with a
// timeout, so that a regression to hanging fails a test instead of stalling the suite.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'src', 'tools', 'cli', 'index.ts');
const RUN_TIMEOUT_MS = 120_000;

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function pymalloc(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, env: { ...process.env, CI: 'true' }, timeout: RUN_TIMEOUT_MS }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr });
    });
  });
}
