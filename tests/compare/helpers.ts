// What several comparison tests build their inputs from.
import { parseTraceText } from '../../src/tools/trace/index.js';
import type { Workload } from '../../src/tools/compare/workloads.js';

/** A workload made of a canonical trace held in a string (the header is added when missing). */
export function textWorkload(name: string, text: string): Workload {
  const trace = text.startsWith('# pymalloc-trace v1') ? text : `# pymalloc-trace v1\n${text}`;
  const { ops, summary } = parseTraceText(trace, { source: name });
  return {
    name,
    description: name,
    async *chunks() {
      yield ops;
    },
    shape: async () => ({ ops: summary.ops, idLimit: summary.idLimit, liveAtEnd: summary.liveAtEnd }),
  };
}
