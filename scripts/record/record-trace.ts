// Records a program's heap operations into a canonical trace (see src/tools/trace/record.ts).
//
//     npx tsx scripts/record/record-trace.ts <output[.gz]> -- <command> [args...]
//
// The environment passes through: set PYTHONMALLOC=malloc to record what CPython asks for
// rather than what its own allocator leaves to malloc. It is noted in the trace header.

import { record } from '../../src/tools/trace/index.js';

/** Variables that change which allocations a program makes, noted in the trace header. */
const NOTED_VARIABLES = ['PYTHONMALLOC', 'PYTHONHASHSEED', 'MALLOC_ARENA_MAX'] as const;

const separator = process.argv.indexOf('--');
const output = process.argv[2];
const [command, ...args] = separator === -1 ? [] : process.argv.slice(separator + 1);
if (separator !== 3 || output === undefined || command === undefined) {
  console.error('usage: record-trace.ts <output[.gz]> -- <command> [args...]');
  process.exit(2);
}

const noted = NOTED_VARIABLES.filter((name) => process.env[name] !== undefined).map((name) => `${name}=${process.env[name]}`);
const summary = await record({
  output,
  command,
  args,
  comments: noted.length > 0 ? [`environment: ${noted.join(' ')}`] : [],
});
for (const { output: path, ops, allocs, frees, reallocs, idLimit, liveAtEnd, skippedFrees, impliedFrees } of summary.traces) {
  console.error(
    `${path}: ${ops} ops (${allocs} allocs, ${frees} frees, ${reallocs} reallocs), ids < ${idLimit}, ` +
      `${liveAtEnd} live at end, ${skippedFrees} skipped frees, ${impliedFrees} implied frees, ${summary.seconds.toFixed(1)} s`,
  );
}
