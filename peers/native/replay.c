/*
 * The native reference: replays a canonical trace (src/tools/trace/format.ts, "pymalloc-trace v1")
 * with the C library's malloc, realloc and free, as the Wasm driver does, and prints one JSON
 * line. Built on demand by src/tools/compare/native.ts with the host's gcc; glibc only.
 *
 *     replay footprint < trace.txt
 *     {"ops":N,"peakLiveBytes":L,"peakFootprintBytes":F,"finalFootprintBytes":G,"peakRssBytes":R}
 *     replay time < trace.txt
 *     {"ops":N,"ns":T}
 *
 * Two modes, one process each, so that measuring memory never slows the timed loop and each run
 * starts from a fresh heap.
 *
 * footprint: what malloc took from the kernel, mallinfo2's arena (bytes taken with brk) plus
 * hblkhd (bytes in mmapped chunks), at its exact peak. mallinfo2 walks every free list, too slow
 * to call after every op, so it is called after exactly the ops that can raise it: those after
 * which the program break moved (sbrk(0), a read of one variable) and those that returned an
 * mmapped chunk (glibc marks one with IS_MMAPPED, bit 1 of the size word before the block: a
 * new mmapped block, or one grown by mremap). A single-threaded program has only the main arena,
 * which grows with brk alone (the mmap fallback when brk fails is not caught: then the footprint
 * is low, not wrong in the other direction). peakRssBytes is the process's maximum resident set
 * (getrusage), trace included: a coarser second opinion.
 *
 * time: the op loop alone, timed once, nothing measured inside it.
 *
 * The trace and the id table live in memory taken with mmap, never from malloc, so that the
 * footprint is the replay's alone. Every block allocated has its first byte written, as in the
 * Wasm drivers. An allocation that returns NULL ends the replay with "failure" in the JSON (exit 0);
 * bad input exits 1 with the line on stderr.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

enum { OP_ALLOC = 0, OP_FREE = 1, OP_REALLOC = 2 };

typedef struct {
    uint32_t kind, id, size;
} op_t;

static void die(const char *message, unsigned long line) {
    fprintf(stderr, "replay: %s (line %lu)\n", message, line);
    exit(1);
}

static void *map(size_t bytes) {
    void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap failed", 0);
    return p;
}

/* All of stdin, in mmapped memory grown with mremap. */
static char *read_all(size_t *length) {
    size_t capacity = 1 << 20, used = 0;
    char *text = map(capacity);
    for (;;) {
        if (used == capacity) {
            text = mremap(text, capacity, capacity * 2, MREMAP_MAYMOVE);
            if (text == MAP_FAILED) die("mremap failed", 0);
            capacity *= 2;
        }
        ssize_t got = read(0, text + used, capacity - used);
        if (got < 0) die("cannot read stdin", 0);
        if (got == 0) break;
        used += (size_t)got;
    }
    *length = used;
    return text;
}

static size_t footprint(void) {
    struct mallinfo2 info = mallinfo2();
    return info.arena + info.hblkhd;
}

/* glibc's chunk header: the size word just before the block, IS_MMAPPED its bit 1. */
enum { IS_MMAPPED = 0x2 };

static int is_mmapped(const void *block) {
    return (((const size_t *)block)[-1] & IS_MMAPPED) != 0;
}

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static const char *number(const char *p, const char *end, uint32_t *value, unsigned long line) {
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    if (p == end || *p < '0' || *p > '9') die("expected a number", line);
    uint64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        v = v * 10 + (uint64_t)(*p++ - '0');
        if (v > UINT32_MAX) die("number too large", line);
    }
    *value = (uint32_t)v;
    return p;
}

typedef struct {
    op_t *ops;
    size_t count;
    uint32_t id_limit;
} trace_t;

static trace_t parse(void) {
    size_t length;
    const char *text = read_all(&length), *end = text + length;
    trace_t trace = {map((length / 4 + 1) * sizeof(op_t)), 0, 0};
    unsigned long line = 0;
    for (const char *p = text; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL) eol = end;
        line++;
        const char *q = p;
        while (q < eol && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        if (q < eol && *q != '#') {
            op_t op = {0, 0, 0};
            if (*q == 'a') op.kind = OP_ALLOC;
            else if (*q == 'f') op.kind = OP_FREE;
            else if (*q == 'r') op.kind = OP_REALLOC;
            else die("expected a, f or r", line);
            q = number(q + 1, eol, &op.id, line);
            if (op.kind != OP_FREE) number(q, eol, &op.size, line);
            if (op.id >= trace.id_limit) trace.id_limit = op.id + 1;
            trace.ops[trace.count++] = op;
        }
        p = eol + 1;
    }
    return trace;
}

/* Runs one op; false iff an allocation of a nonzero size returned NULL. */
static inline bool run_op(void **table, op_t op) {
    if (op.kind == OP_FREE) {
        free(table[op.id]);
        table[op.id] = NULL;
        return true;
    }
    unsigned char *p = op.kind == OP_ALLOC ? malloc(op.size) : realloc(table[op.id], op.size);
    if (p == NULL && op.size != 0) return false;
    if (p != NULL && op.size != 0) *p = 1;
    table[op.id] = p;
    return true;
}

static int time_mode(trace_t trace) {
    void **table = map((size_t)trace.id_limit * sizeof *table);
    uint64_t began = now_ns();
    for (size_t i = 0; i < trace.count; i++) {
        if (!run_op(table, trace.ops[i])) die("allocation failed", (unsigned long)i);
    }
    uint64_t elapsed = now_ns() - began;
    printf("{\"ops\":%zu,\"ns\":%llu}\n", trace.count, (unsigned long long)elapsed);
    return 0;
}

static int footprint_mode(trace_t trace) {
    void **table = map((size_t)trace.id_limit * sizeof *table);
    size_t *sizes = map((size_t)trace.id_limit * sizeof *sizes);
    size_t live = 0, peak_live = 0, peak_footprint = footprint(), done = 0;
    void *last_break = sbrk(0);
    const char *failure = NULL;
    for (; done < trace.count; done++) {
        const op_t op = trace.ops[done];
        if (!run_op(table, op)) {
            failure = op.kind == OP_ALLOC ? "malloc returned NULL" : "realloc returned NULL";
            break;
        }
        void *brk_now = sbrk(0);
        const void *block = table[op.id];
        if (brk_now != last_break || (block != NULL && is_mmapped(block))) {
            last_break = brk_now;
            size_t f = footprint();
            if (f > peak_footprint) peak_footprint = f;
        }
        if (op.kind == OP_FREE) live -= sizes[op.id];
        else live += op.size - sizes[op.id];
        sizes[op.id] = op.kind == OP_FREE ? 0 : op.size;
        if (live > peak_live) peak_live = live;
    }
    size_t final_footprint = footprint();
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    printf("{\"ops\":%zu,\"peakLiveBytes\":%zu,\"peakFootprintBytes\":%zu,\"finalFootprintBytes\":%zu,"
           "\"peakRssBytes\":%ld",
           trace.count, peak_live, peak_footprint, final_footprint, usage.ru_maxrss * 1024L);
    if (failure != NULL) {
        const op_t op = trace.ops[done];
        printf(",\"failure\":{\"op\":%zu,\"liveBytes\":%zu,\"size\":%u,\"message\":\"%s\"}", done, live, op.size, failure);
    }
    printf("}\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2 || (strcmp(argv[1], "footprint") != 0 && strcmp(argv[1], "time") != 0)) {
        fprintf(stderr, "usage: replay footprint|time < trace.txt\n");
        return 2;
    }
    trace_t trace = parse();
    return strcmp(argv[1], "time") == 0 ? time_mode(trace) : footprint_mode(trace);
}
