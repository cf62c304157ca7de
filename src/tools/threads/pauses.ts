// What `pymalloc threads` reads of the heap's statistics beyond their typed fields: the pauses of
// the stop-the-world collection in gc.getStats() and the pools each thread holds in stats(), both
// counted only by free-threaded heaps that have them. Absent fields read as null, and the tool
// then falls back on what it measures itself (the collect call's wall time) or says n/a.

import type { GcGenerationStats, HeapStats } from '../../index.js';

/** The field of a free-threaded heap's gc.getStats() lines that totals their pauses (the world stopped), in seconds. */
const PAUSE_SECONDS = 'pauseSeconds';

function numberField(record: unknown, name: string): number | undefined {
  if (typeof record !== 'object' || record === null) return undefined;
  const value = (record as Record<string, unknown>)[name];
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** The total pause time of every generation in one getStats() result, in ms; null when it counts none. */
function totalPauseMs(stats: readonly GcGenerationStats[]): number | null {
  const seconds = stats.map((generation) => numberField(generation, PAUSE_SECONDS));
  return seconds.every((value) => value !== undefined) ? seconds.reduce((sum: number, value) => sum + value! * 1000, 0) : null;
}

/** The pause time gc.getStats() counted between `before` and `after`, in ms; null when it counts none. */
export function pauseMsOf(before: readonly GcGenerationStats[], after: readonly GcGenerationStats[]): number | null {
  const from = totalPauseMs(before);
  const to = totalPauseMs(after);
  return from === null || to === null ? null : to - from;
}

/**
 * The pools the heap's threads hold, summed over threads: stats().threadPools, or the pools of
 * each of stats().threads; null when stats() does not count them.
 */
export function threadPoolsOf(stats: HeapStats): number | null {
  const total = numberField(stats, 'threadPools');
  if (total !== undefined) return total;
  const threads = (stats as unknown as Record<string, unknown>).threads;
  if (!Array.isArray(threads)) return null;
  const pools = threads.map((thread) => numberField(thread, 'pools'));
  return pools.every((value) => value !== undefined) ? pools.reduce((sum: number, value) => sum + value!, 0) : null;
}
