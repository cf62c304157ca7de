// What a new user typed at the pymalloc command (issue 8): each test is named after what went
// wrong, and checks the exit code (1 runtime failure, 2 usage error) and the message. Every run
// has a timeout, so a regression to hanging fails the test instead of stalling the suite.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';

import { runBench } from '../../src/tools/compare/bench.js';
import { SITES_COMMENT } from '../../src/tools/trace/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'src', 'tools', 'cli', 'index.ts');
const RUN_TIMEOUT_MS = 60_000;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  killed: boolean;
}

function pymalloc(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', CLI, ...args],
      { cwd: ROOT, env: { ...process.env, CI: 'true' }, timeout: RUN_TIMEOUT_MS },
      (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr, killed: error?.killed === true });
      },
    );
  });
}

const CALLER = '@ ./prog:(main+0x1c)[0x4005d3]';
/** An mtrace the importer has to mend: one free of a block from before tracing, one untraced free. */
const MENDED_MTRACE = [
  '= Start',
  `${CALLER} + 0x1000 0x20`,
  `${CALLER} - 0xdead0`, // allocated before tracing began: skipped
  `${CALLER} + 0x2000 0x40`,
  `${CALLER} + 0x1000 0x30`, // 0x1000 again while live: its free was not traced
  `${CALLER} - 0x2000`,
  '= End',
].join('\n') + '\n';
/** MENDED_MTRACE in the canonical format, as convert writes it: the caller kept as site 1. */
const MENDED_CANONICAL = ['a 0 32 1', 'a 1 64 1', 'f 0', 'a 0 48 1', 'f 1'];
const MENDED_SITES = [SITES_COMMENT, '# site 1 0x4005d3 main+0x1c ./prog'];

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pymalloc-cli-input-'));
});

describe('pymalloc --version', () => {
  it("prints the package.json's version and exits 0", async () => {
    const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const run = await pymalloc(flag);
      expect(run.code).toBe(0);
      expect(run.stdout).toBe(`${version}\n`);
    }
  });
});

describe('pymalloc convert', () => {
  it('converts an mtrace to a gzip-compressed canonical trace and prints what the import found', async () => {
    const input = join(dir, 'prog.mtrace');
    const output = join(dir, 'prog.trace.gz');
    await writeFile(input, MENDED_MTRACE);
    const run = await pymalloc('convert', input, output);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(
      `${output}: 5 ops (3 allocs, 2 frees, 0 reallocs) imported from mtrace, 1 live at the end, id limit 2, 1 call site; ` +
        '1 free of a block allocated before tracing began skipped, 1 untraced free implied\n',
    );
    const compressed = await readFile(output);
    expect([compressed[0], compressed[1]]).toEqual([0x1f, 0x8b]);
    expect(gunzipSync(compressed).toString('utf8')).toBe(
      ['# pymalloc-trace v1', `# converted from ${JSON.stringify(input)}`, ...MENDED_SITES, ...MENDED_CANONICAL, ''].join('\n'),
    );
  });

  it('reads a gzip-compressed input and writes plain text when OUT does not end in .gz', async () => {
    const input = join(dir, 'again.trace.gz');
    const mtrace = join(dir, 'again.mtrace');
    await writeFile(mtrace, MENDED_MTRACE);
    expect((await pymalloc('convert', mtrace, input)).code).toBe(0);
    const output = join(dir, 'again.trace');
    const run = await pymalloc('convert', input, output);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`${output}: 5 ops (3 allocs, 2 frees, 0 reallocs) imported from pymalloc, 1 live at the end, id limit 2, 1 call site\n`);
    const text = await readFile(output, 'utf8');
    expect(text.split('\n').filter((line) => !line.startsWith('#'))).toEqual([...MENDED_CANONICAL, '']);
  });

  it('exits 1 naming the line of a malformed input, and writes nothing', async () => {
    const input = join(dir, 'bad.trace');
    const output = join(dir, 'bad-out.trace');
    await writeFile(input, '# pymalloc-trace v1\na 0 32\nf 5\n');
    const run = await pymalloc('convert', input, output);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${input}:3: line "f 5" frees id 5, which is not live`);
    await expect(readFile(output)).rejects.toThrow(/ENOENT/);
    expect((await pymalloc('convert', input)).code).toBe(2);
  });
});

describe('pymalloc compare and replay: options that were ignored or misread', () => {
  it('--seed 0 and --seed 1 give different workloads', async () => {
    const peak = async (seed: string) => {
      const run = await pymalloc('compare', '--workload', 'uniform', '--allocators', 'bump', '--scale', '0.01', '--seed', seed, '--json');
      expect(run.code).toBe(0);
      return (JSON.parse(run.stdout) as { results: { peakLiveBytes: number }[] }).results[0]!.peakLiveBytes;
    };
    const [zero, one, again] = [await peak('0'), await peak('1'), await peak('0')];
    expect(zero).not.toBe(one);
    expect(again).toBe(zero);
    const bad = await pymalloc('compare', '--seed', '4294967296');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('expected an integer from 0 to 4294967295');
  });

  it('replay refuses --scale and --seed with exit 2 instead of ignoring them', async () => {
    const path = join(dir, 'small.trace');
    await writeFile(path, '# pymalloc-trace v1\na 0 32\nf 0\n');
    for (const option of ['--scale', '--seed']) {
      const run = await pymalloc('replay', path, option, '2', '--allocators', 'bump', '--json');
      expect(run.code).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr).toContain(`pymalloc: replay takes no ${option}: a trace is replayed as recorded`);
    }
  });

  it('--workload ramp,ramp exits 2 instead of drawing two charts with one id', async () => {
    const run = await pymalloc('compare', '--workload', 'ramp,ramp', '--allocators', 'bump', '--json');
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe('pymalloc: workload "ramp" is given twice: name each workload once\n');
  });

  it("--workload 'trace:a,b.trace' keeps the comma in the path", async () => {
    const path = join(dir, 'a,b.trace');
    await writeFile(path, '# pymalloc-trace v1\na 0 100\na 1 28\nf 0\n');
    const run = await pymalloc('compare', '--workload', `trace:${path},plateau`, '--allocators', 'bump', '--scale', '0.01', '--json', '--no-native');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const { results } = JSON.parse(run.stdout) as { results: { workload: string; ops: number; peakLiveBytes: number }[] };
    expect(results.map((r) => r.workload)).toEqual([`trace:${path}`, 'plateau']);
    expect([results[0]!.ops, results[0]!.peakLiveBytes]).toEqual([4, 128]);
  });

  it('--out /proc/x fails at once with exit 1 instead of hanging in mkdir', async () => {
    const run = await pymalloc('compare', '--workload', 'plateau', '--allocators', 'bump', '--scale', '0.01', '--out', '/proc/x/report');
    expect(run.killed).toBe(false);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe("pymalloc: cannot write the report in /proc/x/report: ENOENT: no such file or directory, mkdir '/proc/x'\n");
  });

  it('--out under a file fails at once with exit 1, naming the file', async () => {
    const file = join(dir, 'plain-file');
    await writeFile(file, 'not a directory');
    const run = await pymalloc('replay', file, '--out', join(file, 'report'));
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`pymalloc: cannot write the report in ${join(file, 'report')}: ${file} is not a directory\n`);
  });

  it('a garbage trace is quoted as at most 80 escaped characters, not 400 of mojibake', async () => {
    const path = join(dir, 'garbage.bin');
    await writeFile(path, randomBytes(4096));
    const run = await pymalloc('replay', path, '--allocators', 'bump', '--json');
    expect(run.code).toBe(1);
    const message = run.stderr.trimEnd();
    expect(message.split('\n')).toHaveLength(1);
    expect(message).toMatch(/^[\x20-\x7e]+$/);
    const quoted = /^pymalloc: .*?:\d+: [^"]*"((?:[^"\\]|\\.)*)"/.exec(message);
    expect(quoted, message).not.toBeNull();
    expect(quoted![1]!.length).toBeLessThanOrEqual(80 + '...'.length);
    expect(message.length).toBeLessThan(path.length + 220);
  });

  it('shows the frees the importer skipped and implied under the table of replay and compare', async () => {
    const path = join(dir, 'mended.mtrace');
    await writeFile(path, MENDED_MTRACE);
    const note = `trace:${path}: 1 free of a block allocated before tracing began skipped, 1 untraced free implied (an address allocated again while live)`;
    const replayed = await pymalloc('replay', path, '--allocators', 'bump');
    expect(replayed.code).toBe(0);
    expect(replayed.stdout.split('\n')).toContain(note);
    const compared = await pymalloc('compare', '--workload', `trace:${path},lifo`, '--allocators', 'bump', '--scale', '0.01', '--no-native', '--no-race', '--out', join(dir, 'mended-report'));
    expect(compared.code).toBe(0);
    expect(compared.stdout.split('\n').filter((line) => line.includes('tracing began'))).toEqual([note]); // none for lifo
    const saved = JSON.parse(await readFile(join(dir, 'mended-report', 'results.json'), 'utf8')) as { workloads: object[] };
    expect(saved.workloads[0]).toMatchObject({ name: `trace:${path}`, ops: 5, skippedFrees: 1, impliedFrees: 1 });
  });
});

describe('pymalloc bench --steps', () => {
  it('refuses 1e12 steps with exit 2 instead of running for ever', async () => {
    const run = await pymalloc('bench', '--steps', '1e12');
    expect(run.killed).toBe(false);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("option '--steps <n>' argument '1e12' is invalid. expected an integer from 1000 to 10000000");
    await expect(runBench({ steps: 1e12 })).rejects.toThrow('options.steps must be an integer from 1000 to 10000000, got 1000000000000');
    await expect(runBench({ runs: 1e6 })).rejects.toThrow('options.runs must be an integer from 1 to 1000, got 1000000');
  });
});
