// What `pymalloc threads` reads of the heap's statistics beyond the fields every heap has: the
// pauses of the stop-the-world collection in gc.getStats() (pauseSeconds) and the pools each
// thread owns in stats() (threads.slots[].pools, threads.sharedPools), both counted only by
// free-threaded heaps that have them. Absent fields read as null, and the tool then falls back
// on what it measures itself (the collect call's wall time) or says n/a.

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
 * The pools the heap's threads own, summed over stats().threads.slots, and the used pools no
 * thread owns (stats().threads.sharedPools); null when stats() counts no pools per thread.
 */
export function threadPoolsOf(stats: HeapStats): { threadPools: number; sharedPools: number } | null {
  const threads = (stats as unknown as { threads?: unknown }).threads;
  const sharedPools = numberField(threads, 'sharedPools');
  const slots = typeof threads === 'object' && threads !== null ? (threads as { slots?: unknown }).slots : undefined;
  if (sharedPools === undefined || !Array.isArray(slots)) return null;
  const pools = slots.map((slot) => numberField(slot, 'pools'));
  if (pools.some((n) => n === undefined)) return null;
  return { threadPools: pools.reduce((sum: number, n) => sum + n!, 0), sharedPools };
}
