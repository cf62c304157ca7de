/* Driver for the C peers: the benchmark loops of the peer ABI (peers/README.md), linked against
 * one malloc chosen at compile time. peers/assemblyscript/driver.ts is the same driver for the
 * AssemblyScript peers; the two must run the same operations in the same order.
 *
 *   -DPEER_DLMALLOC   wasi-libc's malloc (dlmalloc)
 *   -DPEER_MIMALLOC   mimalloc, built as one translation unit from its src/static.c
 *
 * Scratch space (the churn slots, the replay id table and op buffer) must not come from the
 * allocator under test, so it is taken with memory.grow:
 *
 *   0       __heap_base                 end of memory at the first reservation
 *   │       │                           │
 *   ├static─┼─ allocator's at start-up ─┼─ id table ─┼─ op buffer ─┼─ heap growth ─┼─ slots ─┤
 *
 * Tricky: wasi-libc's dlmalloc, on its first call, takes everything between __heap_base and
 * sbrk(0) as its initial heap. Reserving scratch space before that call would hand the scratch
 * space to dlmalloc as well, so for dlmalloc the driver starts the allocator (one malloc and free,
 * inside memory the module already has) before the first reservation. mimalloc only ever grows
 * memory; starting it early would put its first segment into the replay baseline, so it is not.
 *
 * Tricky: there is no _start or _initialize, so wasm-ld would wrap every export in calls to the
 * constructors before and the destructors after (the "command" model); mimalloc's constructor
 * and its atexit handler would then start and shut down the process around every call. wasm-ld
 * leaves the exports alone when the program calls __wasm_call_ctors itself, which start() does,
 * once, from each export that reaches the allocator.
 *
 * Replay op (3 x u32): +0 kind (0 alloc, 1 free, 2 realloc), +4 id (index into the id table),
 * +8 size in bytes (ignored by free).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(PEER_MIMALLOC)
#include <mimalloc.h>
#define peer_malloc mi_malloc
#define peer_realloc mi_realloc
#define peer_free mi_free
#define PEER_CLAIMS_MEMORY_AT_START false
#elif defined(PEER_DLMALLOC)
#include <stdlib.h>
#define peer_malloc malloc
#define peer_realloc realloc
#define peer_free free
#define PEER_CLAIMS_MEMORY_AT_START true
#else
#error "define PEER_DLMALLOC or PEER_MIMALLOC"
#endif

#define EXPORT(name) __attribute__((export_name(#name)))

enum { REPLAY_CAPACITY = 65536 };
enum { OP_ALLOC = 0, OP_FREE = 1, OP_REALLOC = 2 };
enum { WASM_PAGE_BITS = 16, WASM_PAGE_SIZE = 1 << WASM_PAGE_BITS, WASM_MAX_PAGES = 65536 };

/* replay_init's results; the loader in peers/index.ts knows them. */
enum { INIT_OK = 0, INIT_OUT_OF_MEMORY = 1, INIT_ALREADY_DONE = 2 };
enum { REPLAY_DONE = -1 };

typedef struct {
    uint32_t kind;
    uint32_t id;
    uint32_t size;
} replay_op;

_Static_assert(sizeof(replay_op) == 3 * sizeof(uint32_t), "ops are packed u32 triples");
_Static_assert(sizeof(void *) == sizeof(uint32_t), "the ABI stores addresses as u32");

void __wasm_call_ctors(void);

static bool constructors_ran;
static bool allocator_started;
static uint32_t *slots;
static uint32_t slot_capacity;
static uint32_t *id_table;
static uint32_t id_capacity;
static replay_op *op_buffer;

static inline uint32_t xorshift32(uint32_t x) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
}

static void start(void) {
    if (constructors_ran) return;
    constructors_ran = true;
    __wasm_call_ctors();
}

/* Allocates and writes the first byte, so the block is really touched. */
static inline void *alloc_touched(size_t size) {
    unsigned char *ptr = peer_malloc(size);
    if (ptr != NULL && size != 0) *ptr = 1;
    return ptr;
}

static inline void *realloc_touched(void *ptr, size_t size) {
    unsigned char *moved = peer_realloc(ptr, size);
    if (moved != NULL && size != 0) *moved = 1;
    return moved;
}

/* Grows memory by whole wasm pages for `bytes` of scratch space; NULL iff memory cannot grow. */
static void *reserve_scratch(uint64_t bytes) {
    if (PEER_CLAIMS_MEMORY_AT_START && !allocator_started) {
        /* Through a volatile: clang removes a malloc/free pair it can see through. */
        void *volatile first = peer_malloc(1);
        peer_free(first);
        allocator_started = true;
    }
    uint64_t pages = (bytes + WASM_PAGE_SIZE - 1) >> WASM_PAGE_BITS;
    if (pages > WASM_MAX_PAGES) return NULL;
    size_t first_page = __builtin_wasm_memory_grow(0, (size_t)pages);
    if (first_page == SIZE_MAX) return NULL;
    return (void *)(first_page << WASM_PAGE_BITS);
}

/* The small-object churn loop; returns the xor of every address allocated, 0 iff one failed. */
EXPORT(churn)
uint32_t churn(uint32_t live, uint32_t steps, uint32_t seed, uint32_t max_size) {
    start();
    if (live == 0 || max_size == 0) return 0;
    if (live > slot_capacity) {
        slots = reserve_scratch((uint64_t)live * sizeof *slots);
        if (slots == NULL) return 0;
        slot_capacity = live;
    }
    uint32_t x = seed != 0 ? seed : 1; /* xorshift32 stays at 0 forever */
    uint32_t checksum = 0;
    bool failed = false;
    for (uint32_t i = 0; i < live; i++) {
        x = xorshift32(x);
        uint32_t ptr = (uint32_t)alloc_touched(1 + x % max_size);
        failed |= ptr == 0;
        checksum ^= ptr;
        slots[i] = ptr;
    }
    for (uint32_t step = 0; step < steps; step++) {
        x = xorshift32(x);
        uint32_t *slot = &slots[x % live];
        peer_free((void *)*slot);
        x = xorshift32(x);
        uint32_t ptr = (uint32_t)alloc_touched(1 + x % max_size);
        failed |= ptr == 0;
        checksum ^= ptr;
        *slot = ptr;
    }
    for (uint32_t i = 0; i < live; i++) {
        peer_free((void *)slots[i]);
    }
    return failed ? 0 : checksum;
}

/* ---- one op per call: the footprint pass ---------------------------------------------------
 * The host keeps the id table and calls these once per op, so that nothing but the allocator (and
 * this module's static data and stack) is ever in memory: no scratch, no memory.grow but the
 * allocator's. */

/* malloc, the block's first byte written as in the loops above; 0 iff it failed. */
EXPORT(peer_malloc)
uint32_t peer_malloc_export(uint32_t size) {
    start();
    return (uint32_t)alloc_touched(size);
}

EXPORT(peer_realloc)
uint32_t peer_realloc_export(uint32_t ptr, uint32_t size) {
    start();
    return (uint32_t)realloc_touched((void *)ptr, size);
}

EXPORT(peer_free)
void peer_free_export(uint32_t ptr) {
    start();
    peer_free((void *)ptr);
}

/* Reserves the id table (zeroed) and the op buffer; callable once per instance. */
EXPORT(replay_init)
uint32_t replay_init(uint32_t max_ids) {
    start();
    if (op_buffer != NULL) return max_ids <= id_capacity ? INIT_OK : INIT_ALREADY_DONE;
    uint64_t table_bytes = (uint64_t)max_ids * sizeof *id_table;
    uint64_t buffer_bytes = (uint64_t)REPLAY_CAPACITY * sizeof *op_buffer;
    unsigned char *scratch = reserve_scratch(table_bytes + buffer_bytes);
    if (scratch == NULL) return INIT_OUT_OF_MEMORY;
    id_table = (uint32_t *)scratch;
    id_capacity = max_ids;
    op_buffer = (replay_op *)(scratch + table_bytes);
    return INIT_OK;
}

EXPORT(replay_ops)
uint32_t replay_ops(void) {
    return (uint32_t)op_buffer;
}

EXPORT(replay_capacity)
uint32_t replay_capacity(void) {
    return REPLAY_CAPACITY;
}

EXPORT(replay_table)
uint32_t replay_table(void) {
    return (uint32_t)id_table;
}

/* Runs the first `count` ops of the op buffer. Returns -1 when all ran, otherwise the index of the
 * first op that could not: an allocation of a nonzero size returned 0, the id is outside the
 * table, the kind is unknown, or the op lies beyond the buffer's capacity. */
EXPORT(replay_run)
int32_t replay_run(uint32_t count) {
    start();
    if (op_buffer == NULL) return 0;
    uint32_t runnable = count < REPLAY_CAPACITY ? count : REPLAY_CAPACITY;
    for (uint32_t i = 0; i < runnable; i++) {
        replay_op op = op_buffer[i];
        if (op.id >= id_capacity) return (int32_t)i;
        uint32_t *entry = &id_table[op.id];
        void *ptr;
        switch (op.kind) {
        case OP_ALLOC:
            ptr = alloc_touched(op.size);
            break;
        case OP_FREE:
            peer_free((void *)*entry);
            ptr = NULL;
            break;
        case OP_REALLOC:
            ptr = realloc_touched((void *)*entry, op.size);
            break;
        default:
            return (int32_t)i;
        }
        if (ptr == NULL && op.size != 0 && op.kind != OP_FREE) return (int32_t)i;
        *entry = (uint32_t)ptr;
    }
    return runnable < count ? (int32_t)runnable : REPLAY_DONE;
}
