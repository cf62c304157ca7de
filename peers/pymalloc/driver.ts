// The pymalloc peers' module: the shared driver of every AssemblyScript peer, plus the core's
// statistics and introspection, so that a comparison can read pymalloc's arenas, pools and
// blocks from the very instance that replays a trace (src/tools/compare/).
//
//   stats()      fills the IO buffer with the statistics record (assembly/heap/stats.ts)
//   arenaMap()   fills it with the arena map record (assembly/heap/introspect.ts)
//   ioBuffer()   the IO buffer's address; ioWords() its length in u32 words
//
// Compiled with --runtime ./peers/pymalloc/runtime, which routes the driver's heap.alloc,
// heap.realloc and heap.free to pymalloc (scripts/build-peers.sh).

export * from "../assemblyscript/driver";
export { stats, arenaMap, ioBuffer, ioWords } from "../../assembly/abi/index";
