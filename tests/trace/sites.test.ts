// Call sites: a C program with known allocation sites, compiled here with gcc -g -O0, recorded
// under mtrace, and its sites named by function and line with exact byte counts; the same
// program stripped, or gone, shows raw addresses and says why; a trace without sites is refused.

import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  formatSize,
  parseTraceText,
  record,
  siteStatistics,
  SitesMissingError,
  TraceFormatError,
  type SiteStatistic,
  type SitesReport,
} from '../../src/tools/trace/index.js';

const RECORDING_TIMEOUT = 30_000;
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'src', 'tools', 'cli', 'index.ts');

/** The program, one source line per entry: line numbers below are indexes + 1. */
const SOURCE = [
  '#include <stdlib.h>', //                                  1
  '', //                                                     2
  'static void *kept[100];', //                              3
  '', //                                                     4
  'void keep_blocks(void)', //                               5
  '{', //                                                    6
  '    for (int i = 0; i < 100; i++)', //                    7
  '        kept[i] = malloc(1000);', //                      8: 100 blocks kept to the end
  '}', //                                                    9
  '', //                                                     10
  'void churn(void)', //                                     11
  '{', //                                                    12
  '    for (int i = 0; i < 1000; i++) {', //                 13
  '        void *p = malloc(24);', //                        14: 1000 small blocks, freed at once
  '        free(p);', //                                     15
  '    }', //                                                16
  '}', //                                                    17
  '', //                                                     18
  'void grow(void)', //                                      19
  '{', //                                                    20
  '    char *p = malloc(10);', //                            21
  '    p = realloc(p, 5000);', //                            22: the peak: 100,000 + 5,000 bytes
  '    free(p);', //                                         23
  '}', //                                                    24
  '', //                                                     25
  'int main(void)', //                                       26
  '{', //                                                    27
  '    keep_blocks();', //                                   28
  '    churn();', //                                         29
  '    grow();', //                                          30
  '    for (int i = 0; i < 100; i++)', //                    31
  '        free(kept[i]);', //                               32
  '    return 0;', //                                        33
  '}', //                                                    34
].join('\n');

let dir: string;
let debugTrace: string;
let strippedTrace: string;

function compile(output: string, flags: string[]): void {
  execFileSync('gcc', [...flags, '-o', output, join(dir, 'prog.c')]);
}

async function recordProgram(program: string, output: string): Promise<void> {
  await record({ output, command: `./${program}`, cwd: dir, stdio: 'ignore', env: { LD_PRELOAD: undefined } });
}

/** The sites in the program itself (libc start-up allocates from libc's own sites). */
function programSites(report: SitesReport, program: string): SiteStatistic[] {
  return report.sites.filter((statistic) => statistic.site?.module === join(dir, program));
}

function pymalloc(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr });
    });
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pymalloc-sites-'));
  await writeFile(join(dir, 'prog.c'), `${SOURCE}\n`);
  compile(join(dir, 'prog'), ['-g', '-O0']);
  compile(join(dir, 'stripped'), ['-O0', '-s']);
  debugTrace = join(dir, 'prog.trace.gz');
  strippedTrace = join(dir, 'stripped.trace');
  await recordProgram('prog', debugTrace);
  await recordProgram('stripped', strippedTrace);
}, 2 * RECORDING_TIMEOUT);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('sites of a recorded C program', () => {
  it('names the sites live at the peak by function and line, with exact bytes and counts', async () => {
    const report = await siteStatistics(debugTrace);
    expect(report.at).toBe('peak');
    const file = join(dir, 'prog.c');
    expect(programSites(report, 'prog').map(({ function: fn, file: f, line, liveBytes, liveBlocks, allocations, allocatedBytes }) => ({
      fn,
      f,
      line,
      liveBytes,
      liveBlocks,
      allocations,
      allocatedBytes,
    }))).toEqual([
      { fn: 'keep_blocks', f: file, line: 8, liveBytes: 100_000, liveBlocks: 100, allocations: 100, allocatedBytes: 100_000 },
      { fn: 'grow', f: file, line: 22, liveBytes: 5000, liveBlocks: 1, allocations: 1, allocatedBytes: 5000 },
      { fn: 'churn', f: file, line: 14, liveBytes: 0, liveBlocks: 0, allocations: 1000, allocatedBytes: 24_000 },
      { fn: 'grow', f: file, line: 21, liveBytes: 0, liveBlocks: 0, allocations: 1, allocatedBytes: 10 },
    ]);
    // The two top sites are the top of the whole report: libc start-up keeps less.
    expect(report.sites.slice(0, 2).map((s) => s.line)).toEqual([8, 22]);
    expect(report.sites.every((s) => s.liveBytes >= 0 && s.liveBlocks >= 0)).toBe(true);
  });

  it('at the end, the kept blocks are gone too', async () => {
    const report = await siteStatistics(debugTrace, { at: 'end' });
    const sites = programSites(report, 'prog');
    expect(sites.map((s) => [s.line, s.liveBytes, s.allocatedBytes])).toEqual([
      [8, 0, 100_000],
      [14, 0, 24_000],
      [22, 0, 5000],
      [21, 0, 10],
    ]);
  });

  it('pymalloc sites prints them as tracemalloc does, and --json the same numbers', async () => {
    const run = await pymalloc('sites', debugTrace, '--top', '2');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^${debugTrace.replace(/[.]/g, '\\.')}: \\d+ KiB live in \\d+ blocks at the peak \\(after op \\d+\\); top 2 of \\d+ sites by live bytes$`));
    expect(lines.slice(1)).toEqual([
      `#1: ${join(dir, 'prog.c')}:8 (keep_blocks): size=97.7 KiB, count=100, average=1000 B; allocated 97.7 KiB in 100 calls`,
      `#2: ${join(dir, 'prog.c')}:22 (grow): size=5000 B, count=1, average=5000 B; allocated 5000 B in 1 call`,
    ]);
    const json = await pymalloc('sites', debugTrace, '--sort', 'allocated', '--top', '1', '--json');
    expect(json.code).toBe(0);
    const [top] = (JSON.parse(json.stdout) as SitesReport).sites;
    expect(top).toMatchObject({ function: 'keep_blocks', line: 8, allocatedBytes: 100_000, liveBytes: 100_000 });
  });

  it('shows raw module+address for a binary without debug info, and says why', async () => {
    const report = await siteStatistics(strippedTrace);
    const sites = programSites(report, 'stripped');
    expect(sites.map((s) => [s.liveBytes, s.liveBlocks, s.allocations])).toEqual([
      [100_000, 100, 100],
      [5000, 1, 1],
      [0, 0, 1000],
      [0, 0, 1],
    ]);
    for (const statistic of sites) {
      expect(statistic.file).toBeUndefined();
      expect(statistic.problem).toBe(`no debug info for this address in ${join(dir, 'stripped')}`);
    }
    const run = await pymalloc('sites', strippedTrace, '--top', '1');
    expect(run.stdout.split('\n')[1]).toMatch(
      new RegExp(`^#1: ${join(dir, 'stripped').replace(/[.]/g, '\\.')}\\+0x[0-9a-f]+ \\[no debug info for this address in .*\\]: size=97\\.7 KiB, count=100, average=1000 B`),
    );
  });

  it('says so when the binary is gone', async () => {
    const moved = join(dir, 'moved.trace');
    const text = `# pymalloc-trace v1\n# site 1 0x1184 - ${join(dir, 'gone')}\na 0 1000 1\n`;
    await writeFile(moved, text);
    const report = await siteStatistics(moved);
    expect(report.sites).toEqual([
      {
        site: { id: 1, address: '0x1184', symbol: '', module: join(dir, 'gone') },
        problem: `binary not found: ${join(dir, 'gone')}`,
        liveBytes: 1000,
        liveBlocks: 1,
        allocations: 1,
        allocatedBytes: 1000,
      },
    ]);
  });
});

describe('sites: bad input', () => {
  it('refuses a trace without call sites, saying how to record one (exit 1)', async () => {
    const plain = join(dir, 'plain.trace');
    await writeFile(plain, '# pymalloc-trace v1\na 0 32\n');
    await expect(siteStatistics(plain)).rejects.toThrow(SitesMissingError);
    const run = await pymalloc('sites', plain);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`pymalloc: ${plain} has no call-site data`);
    expect(run.stderr).toContain('npx pymalloc record -o OUT.trace.gz -- COMMAND');
  });

  it('refuses --at and --sort values it does not know (exit 2)', async () => {
    expect((await pymalloc('sites', debugTrace, '--at', 'middle')).code).toBe(2);
    expect((await pymalloc('sites', debugTrace, '--sort', 'name')).code).toBe(2);
  });

  it.each([
    ['# pymalloc-trace v1\na 0 32 1\n', 'x:2: line "a 0 32 1" names site 1, which no earlier "# site 1 ..." line declared'],
    ['# pymalloc-trace v1\n# site 2 0x10 - /p\n', 'x:2: line "# site 2 0x10 - /p" declares site 2; the next site must be 1 (sites are declared in order from 1)'],
    ['# pymalloc-trace v1\n# site 1 10 - /p\n', 'x:2: malformed site declaration "# site 1 10 - /p": expected "# site <id> <address> <symbol or -> <module or ->"'],
    ['# pymalloc-trace v1\n# site 1 0x10 - /p\na 0 32 1 5\n', 'x:3: malformed line "a 0 32 1 5": expected "a <id> <size> <site>"'],
    ['# pymalloc-trace v1\n# site 1 0x10 - /p\nr 0 32 1\n', 'x:3: line "r 0 32 1" reallocates id 0, which is not live'],
  ])('refuses %j', (text, message) => {
    expect(() => parseTraceText(text, { source: 'x' })).toThrow(TraceFormatError);
    expect(() => parseTraceText(text, { source: 'x' })).toThrow(message);
  });

  it('formats sizes as tracemalloc does', () => {
    expect([0, 1000, 10_239, 10_240, 100_000, 104_000, 5 * 1024 ** 3].map((n) => formatSize(n))).toEqual([
      '0 B',
      '1000 B',
      '10239 B',
      '10.0 KiB',
      '97.7 KiB',
      '102 KiB',
      '5120 MiB',
    ]);
  });
});
