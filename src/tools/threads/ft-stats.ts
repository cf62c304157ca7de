// What `pymalloc threads` reads of the statistics only a free-threaded heap keeps: the pauses of
// its stop-the-world collections in gc.getStats() (pauseSeconds) and the pools each thread owns in
// stats() (threads.slots[].pools, threads.sharedPools). On a GIL heap they are absent and read as
// null: the tool then shows the collect call's wall time as the pause, and n/a for the pools.

import type { GcGenerationStats, HeapStats } from '../../index.js';

/** The total pause time of every generation in one getStats() result, in ms; null when it counts none. */
function totalPauseMs(stats: readonly GcGenerationStats[]): number | null {
  let ms = 0;
  for (const { pauseSeconds } of stats) {
    if (pauseSeconds === undefined) return null;
    ms += pauseSeconds * 1000;
  }
  return ms;
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
  if (stats.threads === undefined) return null;
  const { sharedPools, slots } = stats.threads;
  return { threadPools: slots.reduce((sum, slot) => sum + slot.pools, 0), sharedPools };
}
