#!/usr/bin/env node
// The `pymalloc` command.
//
//   pymalloc compare [--workload a,b,trace:PATH] [--allocators x,y] [--out report/] [--json]
//   pymalloc replay TRACE [--allocators x,y] [--out DIR] [--json]
//   pymalloc bench [--json]
//   pymalloc record -o OUT.trace.gz [--cache-dir DIR] -- COMMAND [ARGS...]
//   pymalloc stats [--workload plateau] [--allocator pymalloc-3.12]
//
// Exit codes: 0 ok, 1 a runtime failure (a replay, a trace, a recording failed), 2 a usage
// error (an unknown command, option or name).

import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';

import { record } from '../trace/index.js';
import { isPymalloc, PYMALLOC_PRESETS } from '../compare/allocators.js';
import { runBench, formatBench } from '../compare/bench.js';
import { compare, defaultWorkloads, jsonResults, type CompareOptions } from '../compare/compare.js';
import { UsageError } from '../compare/errors.js';
import { replay } from '../compare/replay.js';
import { formatSummary, writeReport } from '../compare/report.js';
import { resolveWorkload } from '../compare/workloads.js';
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

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

interface ComparisonFlags {
  workload?: string[];
  allocators?: string[];
  out?: string;
  json?: boolean;
  scale?: number;
  seed?: number;
  native: boolean;
}

/** compare and replay: run, then print JSON, or the table and the report's path. */
async function runComparison(options: CompareOptions, flags: ComparisonFlags, defaultOut: string | undefined): Promise<void> {
  const json = flags.json === true;
  const progress = createProgress(json);
  let comparison;
  try {
    comparison = await compare({ ...options, native: flags.native && !json, onProgress: progress.update });
  } finally {
    progress.stop();
  }
  for (const { allocator, reason } of comparison.skipped) console.error(`${allocator}: ${reason}`);
  if (comparison.results.length === 0) {
    throw new Error('no allocator could be run: build them with scripts/build-peers.sh');
  }
  const out = flags.out ?? defaultOut;
  if (json) {
    console.log(JSON.stringify(jsonResults(comparison.results), null, 2));
    if (out !== undefined && flags.out !== undefined) await writeReport(out, comparison);
    return;
  }
  console.log(formatSummary(comparison));
  if (out !== undefined) console.log(`\nreport: ${await writeReport(out, comparison)}`);
}

function comparisonOptions(command: Command): Command {
  return command
    .option('--allocators <names>', 'comma-separated allocators (default: every one built)', list)
    .option('--json', 'print the results as JSON only')
    .option('--scale <factor>', 'scale of the synthetic workloads', positiveNumber)
    .option('--seed <n>', 'seed of the synthetic workloads', integer)
    .option('--no-native', 'skip the native glibc reference');
}

function buildProgram(): Command {
  const program = new Command('pymalloc')
    .description('CPython\'s pymalloc in WebAssembly: compare allocators, replay and record traces')
    .exitOverride()
    .showHelpAfterError();

  comparisonOptions(
    program
      .command('compare')
      .description('replay workloads on allocators; a summary table and report/index.html')
      .option('--workload <names>', `comma-separated workloads (default: ${defaultWorkloads().join(',')})`, list)
      .option('--out <dir>', 'directory of the HTML report', 'report'),
  ).action(async (flags: ComparisonFlags) => {
    await runComparison(
      { workloads: flags.workload, allocators: flags.allocators, scale: flags.scale, seed: flags.seed },
      flags,
      flags.out,
    );
  });

  comparisonOptions(
    program
      .command('replay')
      .description('replay one trace file (pymalloc, mtrace or logalloc; gzip or not) on allocators')
      .argument('<trace>', 'the trace file')
      .option('--out <dir>', 'also write an HTML report there'),
  ).action(async (trace: string, flags: ComparisonFlags) => {
    await runComparison({ workloads: [`trace:${trace}`], allocators: flags.allocators }, flags, undefined);
  });

  program
    .command('bench')
    .description('the throughput suite: small-object churn in Wasm and through the host API')
    .option('--json', 'print the results as JSON only')
    .option('--steps <n>', 'churn steps per measured call', integer)
    .option('--runs <n>', 'timed calls per case', integer)
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
    .command('record')
    .description('record a command\'s heap operations with glibc mtrace into a trace file (set PYTHONMALLOC=malloc for CPython)')
    .requiredOption('-o, --output <file>', 'the trace to write (gzip-compressed if it ends in .gz)')
    .option('--cache-dir <dir>', 'where the mtrace shim, built with gcc on first use, is kept (default: $XDG_CACHE_HOME/pymalloc-wasm or ~/.cache/pymalloc-wasm)')
    .argument('<command...>', 'the command and its arguments, after --')
    .action(async (command: string[], flags: { output: string; cacheDir?: string }) => {
      const [program, ...args] = command;
      const summary = await record({ output: flags.output, command: program, args, cacheDir: flags.cacheDir });
      console.error(
        `${summary.output}: imported ${summary.ops} ops (${summary.allocs} allocs, ${summary.frees} frees, ${summary.reallocs} reallocs); ` +
          `skipped ${summary.skippedFrees} frees of unknown addresses, ${summary.impliedFrees} implied frees; ` +
          `${summary.liveAtEnd} live at the end; ${summary.seconds.toFixed(1)} s`,
      );
      if (summary.truncatedLines > 0) {
        console.error(
          `pymalloc: warning: dropped ${summary.truncatedLines} cut-off mtrace line(s): the program exited without flushing its trace ` +
            '(as dash does), or exec discarded it',
        );
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
      const result = await replay(flags.allocator, workload, { warmUp: false });
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
