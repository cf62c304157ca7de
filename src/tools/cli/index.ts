#!/usr/bin/env node
// The `pymalloc` command.
//
//   pymalloc compare [--workload a,b,trace:PATH] [--allocators x,y] [--out report/] [--no-race] [--json]
//   pymalloc replay TRACE [--allocators x,y] [--out DIR] [--json]
//   pymalloc convert IN OUT                  any trace the reader takes -> canonical (OUT.gz: gzip)
//   pymalloc sites TRACE [--at peak|end]     allocation sites by live bytes (a trace with call sites)
//   pymalloc bench [--json] [--steps N] [--runs N]
//   pymalloc race [--workers N] [--ops N] [--runs N] [--seed N] [--no-price] [--json]
//   pymalloc threads [--workers N] [--iterations N] [--runs N] [--objects N] [--quick] [--json]
//   pymalloc sweep [--pool-size 4K,8K] [--arena-size 256K,1M] [--alignment 8] [--policy cpython,tuned] [--workload ...]
//   pymalloc record -o OUT.trace.gz [--process NAME... | --all-processes] [--cache-dir DIR] -- COMMAND [ARGS...]
//   pymalloc stats [--workload plateau] [--allocator pymalloc-3.12]
//   pymalloc peers [--build]                 which allocators are built; build the C ones
//   pymalloc --version
//
// Exit codes: 0 ok, 1 a runtime failure (a replay, a trace, a recording failed), 2 a usage
// error (an unknown command, option or name).

import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';

import {
  convertTrace,
  describePrograms,
  formatSiteLine,
  formatSize,
  record,
  siteStatistics,
  type SiteStatistic,
  type SitesMoment,
  type TraceSummary,
} from '../trace/index.js';
import { C_PEERS, C_TOOLCHAIN_PACKAGES, isPymalloc, PACKAGE_VERSION, PYMALLOC_PRESETS, userPeersDir } from '../compare/allocators.js';
import { runBench, formatBench, BATCH, MAX_STEPS, MAX_RUNS } from '../compare/bench.js';
import { compare, comparisonDocument, defaultWorkloads, failedResults, planComparison, type CompareOptions } from '../compare/compare.js';
import { ReplaysFailedError, UsageError } from '../compare/errors.js';
import { DEFAULT_REPEAT, MAX_REPEAT, replay } from '../compare/replay.js';
import { formatSummary, prepareReportDirectory, writeReport } from '../compare/report.js';
import { parseWorkloadList, resolveWorkload } from '../compare/workloads.js';
import { buildCPeers, cToolchainMissing, missingCPeers, peerStatus } from '../compare/peers.js';
import { formatRace, race, raceDocument, type RaceReport, RACE_DEFAULTS, MAX_OPS, MAX_RUNS as MAX_RACE_RUNS, MAX_WORKERS, MIN_OPS } from '../race/race.js';
import {
  defaultWorkers, formatThreads, threads, MAX_ITERATIONS, MAX_OBJECTS, MAX_RUNS as MAX_THREADS_RUNS, MAX_WORKERS as MAX_THREADS_WORKERS,
  MIN_ITERATIONS, QUICK_DEFAULTS, THREADS_DEFAULTS,
} from '../threads/threads.js';
import { formatSweep, sweep, SWEEP_POLICIES } from '../compare/sweep.js';
import { writeSweepReport } from '../compare/sweep-report.js';
import type { Policy } from '../../heap/config.js';
import { createProgress } from './progress.js';


const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

function list(value: string): string[] {
  const items = value.split(',').map((item) => item.trim()).filter((item) => item.length > 0);
  if (items.length === 0) throw new InvalidArgumentError('expected a comma-separated list');
  return items;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

/** --workload: trace paths may hold commas (parseWorkloadList). */
function workloadList(value: string): string[] {
  const items = parseWorkloadList(value);
  if (items.length === 0) throw new InvalidArgumentError('expected a comma-separated list');
  return items;
}

/** --pool-size, --arena-size: byte counts, each a number with an optional K or M (4K, 1M, 65536). */
function sizeList(value: string): number[] {
  return list(value).map((item) => {
    const match = /^(\d+)([KM]?)$/i.exec(item);
    if (!match) throw new InvalidArgumentError(`"${item}" is not a size (a number with an optional K or M: 4K, 1M)`);
    return Number(match[1]) * (match[2] === '' ? 1 : match[2].toUpperCase() === 'K' ? 1024 : 1048576);
  });
}

function policyList(value: string): Policy[] {
  const items = list(value);
  const unknown = items.filter((item) => !(SWEEP_POLICIES as readonly string[]).includes(item));
  if (unknown.length > 0) throw new InvalidArgumentError(`unknown policy ${unknown.join(', ')} (valid: ${SWEEP_POLICIES.join(', ')})`);
  return items as Policy[];
}

/** An integer in [min, max], the bounds named in the message. */
function integerIn(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

/** The seed, any integer in [0, 2^32): each gives its own workloads. */
const seed = integerIn(0, 0xffff_ffff);

interface ComparisonFlags {
  workload?: string[];
  allocators?: string[];
  out?: string;
  json?: boolean;
  scale?: number;
  seed?: number;
  repeat?: number;
  native: boolean;
  /** compare's --no-race: false; replay has no race. */
  race?: boolean;
}

/**
 * The race `pymalloc compare` runs for its report (unless --no-race): a few seconds on this
 * 2-core machine, small beside the replays.
 */
const REPORT_RACE = { workers: 2, ops: 200_000, runs: 3 } as const;

/** compare and replay: run, then print JSON, or the table and the report's path. */
async function runComparison(options: CompareOptions, flags: ComparisonFlags, defaultOut: string | undefined): Promise<void> {
  const json = flags.json === true;
  const out = flags.out ?? defaultOut;
  const writesReport = out !== undefined && (!json || flags.out !== undefined);
  // Bad names and a report directory that cannot be written fail now, not after the replays.
  planComparison(options);
  await buildCPeersOnFirstUse(options.allocators);
  if (writesReport) await prepareReportDirectory(out);
  const progress = createProgress(json);
  let comparison;
  try {
    comparison = await compare({ ...options, repeat: flags.repeat, native: flags.native, onProgress: progress.update });
  } finally {
    progress.stop();
  }
  for (const { allocator, reason } of comparison.skipped) console.error(`${allocator}: ${reason}`);
  if (comparison.results.length === 0) {
    throw new Error('no allocator could be run: `pymalloc peers` says which are built and how to build the others');
  }
  const raced = writesReport && flags.race === true ? await raceForReport(json) : undefined;
  if (json) {
    console.log(JSON.stringify(comparisonDocument(comparison), null, 2));
    if (writesReport) await writeReport(out, comparison, raced);
  } else {
    console.log(formatSummary(comparison));
    if (writesReport) console.log(`\nreport: ${await writeReport(out, comparison, raced)}`);
  }
  const failed = failedResults(comparison);
  if (failed.length > 0) throw new ReplaysFailedError(failed.map((r) => `${r.workload}: ${r.failure!.message}`));
}

async function raceForReport(json: boolean): Promise<RaceReport> {
  const progress = createProgress(json);
  try {
    return await race({ ...REPORT_RACE, onProgress: (label, done, total) => progress.update(label, done, total) });
  } finally {
    progress.stop();
  }
}

/** The C peers asked for (by name or by default) that are not built yet are built now, once. */
async function buildCPeersOnFirstUse(asked: readonly string[] | undefined): Promise<void> {
  const wanted = missingCPeers().filter((name) => asked === undefined || asked.includes(name));
  if (wanted.length === 0) return;
  console.error(`pymalloc: building the C peers (${C_PEERS.join(', ')}) on first use, into ${userPeersDir()}`);
  await buildCPeers((line) => console.error(line));
}

function comparisonOptions(command: Command): Command {
  return command
    .option('--allocators <names>', 'comma-separated allocators (default: every one built)', list)
    .option('--json', 'print the results as JSON only')
    .option('--repeat <n>', `timed runs per replay after one untimed warm-up; ns/op is their median (default ${DEFAULT_REPEAT})`, integerIn(1, MAX_REPEAT))
    .option('--no-native', 'skip the native glibc reference');
}

const DEFAULT_TOP_SITES = 10;

/** The orders of `sites --sort`; ties go to the report's order (live bytes, then allocated). */
const SITE_ORDERS: Readonly<Record<string, (a: SiteStatistic, b: SiteStatistic) => number>> = {
  size: (a, b) => b.liveBytes - a.liveBytes,
  count: (a, b) => b.liveBlocks - a.liveBlocks,
  allocated: (a, b) => b.allocatedBytes - a.allocatedBytes,
};
const SITE_ORDER_NAMES: Readonly<Record<string, string>> = { size: 'live bytes', count: 'live blocks', allocated: 'bytes allocated' };

/** The import summary of a trace, as convert prints it. */
function describeImport(path: string, summary: TraceSummary): string {
  const { skippedFrees, impliedFrees, otherProcessEvents } = summary;
  const mended = [
    ...(skippedFrees > 0 ? [`${skippedFrees} ${skippedFrees === 1 ? 'free of a block' : 'frees of blocks'} allocated before tracing began skipped`] : []),
    ...(impliedFrees > 0 ? [`${impliedFrees} untraced ${impliedFrees === 1 ? 'free' : 'frees'} implied`] : []),
    ...(otherProcessEvents > 0 ? [`${otherProcessEvents} events of other processes left out`] : []),
  ];
  return (
    `${path}: ${summary.ops} ops (${summary.allocs} allocs, ${summary.frees} frees, ${summary.reallocs} reallocs) ` +
    `imported from ${summary.format}, ${summary.liveAtEnd} live at the end, id limit ${summary.idLimit}` +
    (summary.sites > 0 ? `, ${summary.sites} call ${summary.sites === 1 ? 'site' : 'sites'}` : '') +
    (mended.length > 0 ? `; ${mended.join(', ')}` : '')
  );
}

function buildProgram(): Command {
  const program = new Command('pymalloc')
    .description('CPython\'s pymalloc in WebAssembly: compare allocators, replay and record traces')
    .version(PACKAGE_VERSION, '-V, --version', 'print the version of pymalloc-wasm')
    .exitOverride()
    .showHelpAfterError();

  comparisonOptions(
    program
      .command('compare')
      .description('replay workloads on allocators; a summary table and report/index.html')
      .option('--workload <names>', `comma-separated workloads, each once (default: ${defaultWorkloads().join(',')})`, workloadList)
      .option('--out <dir>', 'directory of the HTML report (default: report, or none with --json)')
      .option('--scale <factor>', 'scale of the synthetic workloads', positiveNumber)
      .option('--seed <n>', 'seed of the synthetic workloads, an integer in [0, 2^32)', seed)
      .option('--no-race', `leave the race the GIL prevents out of the report (a short \`pymalloc race\`: ${REPORT_RACE.workers} workers x ${REPORT_RACE.ops} ops, ${REPORT_RACE.runs} runs)`),
  ).action(async (flags: ComparisonFlags) => {
    await runComparison(
      { workloads: flags.workload, allocators: flags.allocators, scale: flags.scale, seed: flags.seed },
      flags,
      'report',
    );
  });

  comparisonOptions(
    program
      .command('replay')
      .description('replay one trace file (pymalloc, mtrace or logalloc; gzip or not) on allocators')
      .argument('<trace>', 'the trace file')
      .option('--out <dir>', 'also write an HTML report there')
      .addOption(new Option('--scale <factor>').hideHelp())
      .addOption(new Option('--seed <n>').hideHelp()),
  ).action(async (trace: string, flags: ComparisonFlags) => {
    for (const option of ['scale', 'seed'] as const) {
      if (flags[option] !== undefined) {
        throw new UsageError(`replay takes no --${option}: a trace is replayed as recorded (--scale and --seed shape the synthetic workloads of compare)`);
      }
    }
    await runComparison({ workloads: [`trace:${trace}`], allocators: flags.allocators }, flags, undefined);
  });

  program
    .command('convert')
    .description('convert a trace (pymalloc, mtrace or logalloc; gzip or not) to the canonical format, gzip-compressed if OUT ends in .gz')
    .argument('<in>', 'the trace to read')
    .argument('<out>', 'the canonical trace to write')
    .action(async (input: string, output: string) => {
      console.log(describeImport(output, await convertTrace(input, output)));
    });

  program
    .command('sites')
    .description("a trace's allocation sites by live bytes at the peak (or end), like tracemalloc's statistics('lineno'); needs a trace recorded with call sites")
    .argument('<trace>', 'a trace with call sites: from pymalloc record, or converted from an mtrace')
    .option('--at <moment>', 'peak (the first op at which live bytes are highest) or end', 'peak')
    .option('--top <n>', `the sites shown, most first (default ${DEFAULT_TOP_SITES})`, integerIn(1, 0xffff_ffff))
    .option('--sort <key>', 'size (live bytes), count (live blocks) or allocated (bytes allocated over the whole trace)', 'size')
    .option('--json', 'print the report as JSON only')
    .action(async (trace: string, flags: { at: string; top?: number; sort: string; json?: boolean }) => {
      if (flags.at !== 'peak' && flags.at !== 'end') throw new UsageError(`--at must be peak or end, got ${JSON.stringify(flags.at)}`);
      const order = SITE_ORDERS[flags.sort];
      if (order === undefined) throw new UsageError(`--sort must be size, count or allocated, got ${JSON.stringify(flags.sort)}`);
      const report = await siteStatistics(trace, { at: flags.at as SitesMoment });
      const shown = [...report.sites].sort(order).slice(0, flags.top ?? DEFAULT_TOP_SITES);
      if (flags.json === true) {
        console.log(JSON.stringify({ ...report, sites: shown }, null, 2));
        return;
      }
      const moment = report.at === 'peak' ? `at the peak (after op ${report.opsAtMoment})` : 'at the end';
      console.log(`${trace}: ${formatSize(report.liveBytes)} live in ${report.liveBlocks} blocks ${moment}; top ${shown.length} of ${report.sites.length} sites by ${SITE_ORDER_NAMES[flags.sort]}`);
      for (const [i, statistic] of shown.entries()) console.log(`#${i + 1}: ${formatSiteLine(statistic)}`);
    });

  program
    .command('bench')
    .description('the throughput suite: small-object churn in Wasm and through the host API')
    .option('--json', 'print the results as JSON only')
    .option('--steps <n>', `churn steps per measured call, from ${BATCH} to ${MAX_STEPS}`, integerIn(BATCH, MAX_STEPS))
    .option('--runs <n>', `timed calls per case, at most ${MAX_RUNS}`, integerIn(1, MAX_RUNS))
    .action(async (flags: { json?: boolean; steps?: number; runs?: number }) => {
      const json = flags.json === true;
      const progress = createProgress(json);
      let results;
      try {
        results = await runBench({ steps: flags.steps, runs: flags.runs, onCase: (name, allocator, i, n) => progress.update('bench', i, n) });
      } finally {
        progress.stop();
      }
      console.log(json ? JSON.stringify({ results }, null, 2) : formatBench(results));
    });

  program
    .command('race')
    .description("the race the GIL prevents: the same work in N workers on one shared heap, under concurrency 'gil', 'free-threaded' and 'none'")
    .option('--workers <n>', `workers running at once (default ${RACE_DEFAULTS.workers})`, integerIn(1, MAX_WORKERS))
    .option('--ops <n>', `ops per worker and run: increfs, or mallocs and frees (default ${RACE_DEFAULTS.ops})`, integerIn(MIN_OPS, MAX_OPS))
    .option('--runs <n>', `runs of each test under each mode, each in fresh workers (default ${RACE_DEFAULTS.runs})`, integerIn(1, MAX_RACE_RUNS))
    .option('--seed <n>', 'seed of the alloc loops\' sizes and slots, an integer in [0, 2^32)', seed)
    .option('--no-price', 'skip the price of the GIL (ns per op against an unshared heap)')
    .option('--json', 'print the results as JSON only')
    .action(async (flags: { workers?: number; ops?: number; runs?: number; seed?: number; price: boolean; json?: boolean }) => {
      const json = flags.json === true;
      const progress = createProgress(json);
      let report;
      try {
        report = await race({ ...flags, onProgress: (label, done, total) => progress.update(label, done, total) });
      } finally {
        progress.stop();
      }
      console.log(json ? JSON.stringify(raceDocument(report), null, 2) : formatRace(report));
    });

  program
    .command('threads')
    .description("concurrency 'gil' against 'free-threaded' on the same workloads: allocation throughput per worker count, refcount traffic, a collection's pause, memory footprint")
    .option('--workers <n>', `workers per mode (default: the cores, from 2 to 8: ${defaultWorkers()} here)`, integerIn(1, MAX_THREADS_WORKERS))
    .option('--iterations <n>', `pairs per worker and run of the alloc and refcount loops (default ${THREADS_DEFAULTS.iterations}, --quick ${QUICK_DEFAULTS.iterations})`, integerIn(MIN_ITERATIONS, MAX_ITERATIONS))
    .option('--runs <n>', `runs of each measurement, figures are their medians (default ${THREADS_DEFAULTS.runs}, --quick ${QUICK_DEFAULTS.runs})`, integerIn(1, MAX_THREADS_RUNS))
    .option('--objects <n>', `objects of cyclic garbage in the collected graph, beside as many live ones (default ${THREADS_DEFAULTS.objects}, --quick ${QUICK_DEFAULTS.objects})`, integerIn(1, MAX_OBJECTS))
    .option('--quick', 'smaller defaults: a look in a few seconds')
    .option('--json', 'print the results as JSON only')
    .action(async (flags: { workers?: number; iterations?: number; runs?: number; objects?: number; quick?: boolean; json?: boolean }) => {
      const { json, ...options } = flags;
      const progress = createProgress(json === true);
      let report;
      try {
        report = await threads({ ...options, onProgress: (label, done, total) => progress.update(label, done, total) });
      } finally {
        progress.stop();
      }
      console.log(json === true ? JSON.stringify(report, null, 2) : formatThreads(report));
    });

  program
    .command('sweep')
    .description("pymalloc's settings over workloads: ns/op, fragmentation and the Pareto front per geometry and policy")
    .option('--pool-size <sizes>', 'pool sizes (default 4K,8K,16K)', sizeList)
    .option('--arena-size <sizes>', 'arena sizes (default 256K,1M)', sizeList)
    .option('--alignment <values>', 'alignments, 8 or 16 (default 8)', (value: string) => list(value).map(Number))
    .option('--policy <names>', `policies (default ${SWEEP_POLICIES.join(',')})`, policyList)
    .option('--workload <names>', 'comma-separated workloads (default: every shipped trace)', workloadList)
    .option('--repeat <n>', 'timed runs per replay after one untimed warm-up (default 3)', integerIn(1, MAX_REPEAT))
    .option('--threads <n>', 'worker threads (default: the cores); replays running at once share the machine', integerIn(1, 256))
    .option('--out <dir>', 'directory of sweep.html and sweep.json (default: report, or none with --json)')
    .option('--json', 'print the results as JSON only')
    .action(async (flags: { poolSize?: number[]; arenaSize?: number[]; alignment?: number[]; policy?: Policy[]; workload?: string[]; repeat?: number; threads?: number; out?: string; json?: boolean }) => {
      const json = flags.json === true;
      const out = flags.out ?? (json ? undefined : 'report');
      if (out !== undefined) await prepareReportDirectory(out);
      const progress = createProgress(json, 'replays');
      let result;
      try {
        result = await sweep({
          poolSizes: flags.poolSize, arenaSizes: flags.arenaSize, alignments: flags.alignment, policies: flags.policy,
          workloads: flags.workload, repeat: flags.repeat, threads: flags.threads,
          onProgress: (done, total) => progress.update('sweep', done, total),
        });
      } catch (error) {
        if (error instanceof RangeError) throw new UsageError(error.message);
        throw error;
      } finally {
        progress.stop();
      }
      console.log(json ? JSON.stringify(result, null, 2) : formatSweep(result));
      if (out !== undefined) {
        const page = await writeSweepReport(out, result);
        if (!json) console.log(`\nreport: ${page}`);
      }
    });

  program
    .command('record')
    .description('record a command\'s heap operations with glibc mtrace into a trace file (set PYTHONMALLOC=malloc for CPython)')
    .requiredOption('-o, --output <file>', 'the trace to write (gzip-compressed if it ends in .gz)')
    .option(
      '--process <name>',
      'trace the processes running this program instead of the command\'s own (e.g. cc1 under gcc); repeat for several. ' +
        'One such process goes to OUT; several go to OUT with .NAME.PID inserted (out.cc1.12345.trace.gz)',
      (name: string, names: string[] = []) => [...names, name],
    )
    .option('--all-processes', 'trace every process the command runs, each to OUT with .NAME.PID inserted (out.cc1.12345.trace.gz)')
    .option('--cache-dir <dir>', 'where the mtrace shim, built with gcc on first use, is kept (default: $XDG_CACHE_HOME/pymalloc-wasm or ~/.cache/pymalloc-wasm)')
    .argument('<command...>', 'the command and its arguments, after --')
    .action(async (command: string[], flags: { output: string; process?: string[]; allProcesses?: boolean; cacheDir?: string }) => {
      if (flags.process !== undefined && flags.allProcesses === true) throw new UsageError('give --process NAME or --all-processes, not both');
      const [program, ...args] = command;
      const processes = flags.allProcesses === true ? 'all' : flags.process;
      const summary = await record({ output: flags.output, command: program, args, cacheDir: flags.cacheDir, processes });
      for (const trace of summary.traces) {
        console.error(
          `${trace.output}: imported ${trace.ops} ops (${trace.allocs} allocs, ${trace.frees} frees, ${trace.reallocs} reallocs); ` +
            `skipped ${trace.skippedFrees} frees of unknown addresses, ${trace.impliedFrees} implied frees; ` +
            `${trace.liveAtEnd} live at the end; ${summary.seconds.toFixed(1)} s`,
        );
      }
      const truncatedLines = summary.traces.reduce((sum, trace) => sum + trace.truncatedLines, 0);
      if (truncatedLines > 0) {
        console.error(
          `pymalloc: warning: dropped ${truncatedLines} cut-off mtrace line(s): the program exited without flushing its trace ` +
            '(as dash does), or exec discarded it',
        );
      }
      const untraced = summary.untraced.length;
      if (untraced > 0 && processes === undefined) {
        console.error(
          `pymalloc: warning: ${untraced} child ${untraced === 1 ? 'process' : 'processes'} ran untraced (${describePrograms(summary.untraced)}): ` +
            'record them with --process NAME (one trace per process running NAME) or --all-processes',
        );
      } else if (untraced > 0) {
        console.error(`pymalloc: ${untraced} other ${untraced === 1 ? 'process' : 'processes'} ran untraced (${describePrograms(summary.untraced)})`);
      }
    });

  program
    .command('peers')
    .description('the allocators a comparison can run: which are built, where, and from what')
    .option('--build', `build the C peers (dlmalloc, mimalloc) into the user's cache; needs ${C_TOOLCHAIN_PACKAGES.join(', ')}`)
    .action(async (flags: { build?: boolean }) => {
      if (flags.build === true) await buildCPeers((line) => console.error(line));
      const rows = peerStatus().map((p) => [p.name, p.built ? 'built' : 'missing', p.builtFrom, p.path]);
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
      for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
      const missing = rows.filter((row) => row[1] === 'missing').map((row) => row[0]);
      if (missing.length > 0) {
        console.error(`${missing.join(', ')}: ${(await cToolchainMissing()) ?? 'not built yet'}; then \`pymalloc peers --build\``);
      }
    });

  program
    .command('stats')
    .description('replay a workload on a pymalloc allocator and print sys._debugmallocstats() at its end')
    .option('--workload <name>', 'the workload', 'plateau')
    .addOption(new Option('--allocator <name>', 'the pymalloc allocator').choices(Object.keys(PYMALLOC_PRESETS)).default('pymalloc-3.12'))
    .option('--scale <factor>', 'scale of the synthetic workloads', positiveNumber)
    .action(async (flags: { workload: string; allocator: string; scale?: number }) => {
      if (!isPymalloc(flags.allocator)) throw new UsageError(`--allocator must be one of ${Object.keys(PYMALLOC_PRESETS).join(', ')}`);
      const workload = resolveWorkload(flags.workload, { scale: flags.scale });
      const result = await replay(flags.allocator, workload, { timing: false });
      console.log(`${flags.allocator} at the end of ${workload.name} (${result.workloadOps} ops), before the final frees:\n`);
      console.log(result.debugMallocStats);
    });

  return program;
}

function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError || error instanceof RangeError) return EXIT_USAGE;
  return EXIT_FAILURE;
}

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return EXIT_OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and the version are "errors" to exitOverride; everything else is a usage error.
      return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    const message = error instanceof Error ? error.message : String(error);
    console.error(`pymalloc: ${message}`);
    if (process.env.PYMALLOC_DEBUG && error instanceof Error) console.error(error.stack);
    return exitCodeOf(error);
  }
}

process.exitCode = await main(process.argv);
