import type { HeapConfig } from './config.js';

/** One size class, as a row of sys._debugmallocstats(). */
export interface SizeClassStats {
  index: number;
  size: number;
  pools: number;
  blocksInUse: number;
  blocksAvailable: number;
}

export interface HeapStats {
  config: HeapConfig;
  /** Every size class, including those with no pools. */
  sizeClasses: SizeClassStats[];
  arenas: {
    /** Arenas ever allocated. */
    allocatedTotal: number;
    /** Arenas released back to the raw allocator. */
    reclaimed: number;
    /** The most arenas attached at once. */
    highwater: number;
    /** Arenas attached now. */
    current: number;
  };
  /** Where the bytes of the attached arenas go; the parts add up to total. */
  bytes: {
    inAllocatedBlocks: number;
    inAvailableBlocks: number;
    /** Pools that are empty or were never used. */
    unusedPools: number;
    freePools: number;
    poolHeaders: number;
    /** Pool bytes too few for one more block. */
    quantization: number;
    /** Always 0 here: arenas are placed pool-aligned. */
    arenaAlignment: number;
    /** current arenas * arenaSize. */
    total: number;
  };
  /** Blocks served by the raw allocator (requests of 0 or > smallRequestThreshold bytes). */
  raw: {
    blocks: number;
    /** Bytes those blocks can hold. */
    bytes: number;
  };
  /** Linear memory: what is committed, and where it went. */
  memory: {
    wasmPages: number;
    committedBytes: number;
    peakCommittedBytes: number;
    maxMemory: number;
    /** Header, arena map and statics: what the heap costs before the first request. */
    baseBytes: number;
    /** Committed memory in free raw-allocator blocks: released, and reusable by any request. */
    releasedBytes: number;
    /** Committed memory in arenas and raw blocks (with their headers). */
    inUseBytes: number;
    /**
     * Part of inUseBytes: the block state bits after each arena (2 bits per alignment granule,
     * what makes free() exact).
     */
    blockBitsBytes: number;
  };
  /**
   * Freed objects the debug build keeps in quarantine (their blocks still count as in use),
   * so that stale handles are refused; always 0 in the release build.
   */
  quarantine: {
    objects: number;
    bytes: number;
  };
  /**
   * A free-threaded heap's per-thread pools (docs/free-threaded.md, part 4); undefined on every
   * other heap. Blocks freed by a thread that does not own their pool and not yet drained by the
   * owner count as available above.
   */
  threads?: {
    /** Used or full pools that no thread owns: made before the first attachment, or left by threads that detached. */
    sharedPools: number;
    /** Every attachment slot that has held a thread, by id. */
    slots: ThreadPoolStats[];
  };
}

/** One attachment slot of a free-threaded heap: its thread now, and what its threads did. */
export interface ThreadPoolStats {
  /** The attachment id (1..256). */
  id: number;
  /** The tid of the thread attached now; 0 when none is. */
  tid: number;
  /** Used or full pools the thread owns: only it allocates from them. */
  pools: number;
  /** Blocks other threads freed into its pools, waiting on its remote list for its next drain. */
  remotePending: number;
  /** Counters over the slot's life: frees this slot's threads made into other threads' pools... */
  remoteFrees: number;
  /** ...of which took the locked path (the pool was no thread's, or its owner had left)... */
  lockedFrees: number;
  /** ...drains of the remote list, the blocks they took, and shared pools adopted. */
  drains: number;
  drained: number;
  adopted: number;
}

/** Word offsets of the statistics record (assembly/heap/stats.ts). */
const SUMMARY = 1 + 3 * 64;
const SHARED_POOL_COUNT = SUMMARY + 16;
const THREAD_ROWS = SHARED_POOL_COUNT + 1;
const THREAD_ROW_WORDS = 8;
const MAX_THREADS = 256;

function decodeThreads(words: Uint32Array): HeapStats['threads'] {
  const slots: ThreadPoolStats[] = [];
  for (let id = 1; id <= MAX_THREADS; id++) {
    const row = words.subarray(THREAD_ROWS + (id - 1) * THREAD_ROW_WORDS, THREAD_ROWS + id * THREAD_ROW_WORDS);
    if (row.every((word) => word === 0)) continue;
    const [tid, pools, remotePending, remoteFrees, lockedFrees, drains, drained, adopted] = row;
    slots.push({ id, tid, pools, remotePending, remoteFrees, lockedFrees, drains, drained, adopted });
  }
  return { sharedPools: words[SHARED_POOL_COUNT], slots };
}

export function decodeStats(words: Uint32Array, config: HeapConfig): HeapStats {
  const { poolSize, arenaSize, poolOverhead } = config;
  const sizeClasses: SizeClassStats[] = [];
  let inAllocatedBlocks = 0;
  let inAvailableBlocks = 0;
  let usedPools = 0;
  let quantization = 0;
  for (let index = 0; index < words[0]; index++) {
    const size = (index + 1) * config.alignment;
    const pools = words[1 + 3 * index];
    const blocksInUse = words[2 + 3 * index];
    const blocksAvailable = words[3 + 3 * index];
    sizeClasses.push({ index, size, pools, blocksInUse, blocksAvailable });
    inAllocatedBlocks += blocksInUse * size;
    inAvailableBlocks += blocksAvailable * size;
    usedPools += pools;
    quantization += pools * ((poolSize - poolOverhead) % size);
  }
  const s = (i: number) => words[SUMMARY + i];
  const current = s(0);
  const freePools = s(1);
  const committedBytes = s(9) * 65536;
  const baseBytes = s(12);
  const releasedBytes = s(8);
  return {
    config,
    sizeClasses,
    arenas: { allocatedTotal: s(3), reclaimed: s(3) - s(4), highwater: s(5), current },
    bytes: {
      inAllocatedBlocks,
      inAvailableBlocks,
      unusedPools: freePools * poolSize,
      freePools,
      poolHeaders: usedPools * poolOverhead,
      quantization,
      arenaAlignment: s(2),
      total: current * arenaSize,
    },
    raw: { blocks: s(6), bytes: s(7) },
    memory: {
      wasmPages: s(9),
      committedBytes,
      peakCommittedBytes: s(10) * 65536,
      maxMemory: s(11) * 65536,
      baseBytes,
      releasedBytes,
      inUseBytes: committedBytes - baseBytes - releasedBytes,
      blockBitsBytes: s(13),
    },
    quarantine: { objects: s(14), bytes: s(15) },
    ...(config.concurrency === 'free-threaded' && { threads: decodeThreads(words) }),
  };
}

const LABEL_WIDTH = 35;
const VALUE_WIDTH = 21;

function line(label: string, value: number): string {
  return `${label.padEnd(LABEL_WIDTH)}=${value.toLocaleString('en-US').padStart(VALUE_WIDTH)}\n`;
}

/** The pymalloc part of CPython's sys._debugmallocstats(), in its exact format. */
export function formatDebugMallocStats(stats: HeapStats): string {
  const { config, arenas, bytes } = stats;
  let out = `Small block threshold = ${config.smallRequestThreshold}, in ${config.numClasses} size classes.\n\n`;
  out += 'class   size   num pools   blocks in use  avail blocks\n';
  out += '-----   ----   ---------   -------------  ------------\n';
  for (const c of stats.sizeClasses) {
    if (c.pools === 0) continue;
    out +=
      String(c.index).padStart(5) + ' ' + String(c.size).padStart(6) + ' ' +
      String(c.pools).padStart(11) + ' ' + String(c.blocksInUse).padStart(15) + ' ' +
      String(c.blocksAvailable).padStart(13) + '\n';
  }
  out += '\n';
  out += line('# arenas allocated total', arenas.allocatedTotal);
  out += line('# arenas reclaimed', arenas.reclaimed);
  out += line('# arenas highwater mark', arenas.highwater);
  out += line('# arenas allocated current', arenas.current);
  out += line(`${arenas.current} arenas * ${config.arenaSize} bytes/arena`, bytes.total);
  out += '\n';
  out += line('# bytes in allocated blocks', bytes.inAllocatedBlocks);
  out += line('# bytes in available blocks', bytes.inAvailableBlocks);
  out += line(`${bytes.freePools} unused pools * ${config.poolSize} bytes`, bytes.unusedPools);
  out += line('# bytes lost to pool headers', bytes.poolHeaders);
  out += line('# bytes lost to quantization', bytes.quantization);
  out += line('# bytes lost to arena alignment', bytes.arenaAlignment);
  out += line('Total', bytes.total);
  return out;
}
