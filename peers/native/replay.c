/*
 * The native reference: replays a canonical trace (src/tools/trace/format.ts, "pymalloc-trace v1")
 * with the C library's malloc, realloc and free, as the Wasm driver does, and prints one JSON
 * line of measurements. Built on demand by src/tools/compare/native.ts with the host's gcc.
 *
 *     replay [sample_interval] < trace.txt
 *     {"ops":N,"nsPerOp":X,"peakLiveBytes":L,"peakFootprintBytes":F,"finalFootprintBytes":G,"peakRssBytes":R}
 *
 * The trace and the id table live in memory taken with mmap, never from malloc, so that the
 * footprint is the replay's alone: mallinfo2's arena (bytes taken with brk) plus hblkhd (bytes
 * in mmapped chunks), sampled every sample_interval ops outside the timed segments. peakRssBytes
 * is the process's maximum resident set (getrusage), trace included: a coarser second opinion.
 * Every block allocated has its first byte written, as in the Wasm drivers.
 */
#define _GNU_SOURCE
#include <malloc.h>
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

int main(int argc, char **argv) {
    size_t interval = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;
    if (interval == 0) interval = 1;

    size_t length;
    const char *text = read_all(&length), *end = text + length;
    op_t *ops = map((length / 4 + 1) * sizeof(op_t));
    size_t count = 0;
    uint32_t id_limit = 0;
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
            if (op.id >= id_limit) id_limit = op.id + 1;
            ops[count++] = op;
        }
        p = eol + 1;
    }

    void **table = map((size_t)id_limit * sizeof *table);
    size_t *sizes = map((size_t)id_limit * sizeof *sizes);
    size_t live = 0, peak_live = 0, peak_footprint = footprint();
    uint64_t elapsed = 0;
    for (size_t start = 0; start < count; start += interval) {
        size_t stop = start + interval < count ? start + interval : count;
        for (size_t i = start; i < stop; i++) {
            if (ops[i].kind == OP_FREE) live -= sizes[ops[i].id];
            else live += ops[i].size - sizes[ops[i].id];
            sizes[ops[i].id] = ops[i].kind == OP_FREE ? 0 : ops[i].size;
            if (live > peak_live) peak_live = live;
        }
        uint64_t began = now_ns();
        for (size_t i = start; i < stop; i++) {
            const op_t op = ops[i];
            unsigned char *p;
            if (op.kind == OP_ALLOC) {
                p = malloc(op.size);
            } else if (op.kind == OP_REALLOC) {
                p = realloc(table[op.id], op.size);
            } else {
                free(table[op.id]);
                table[op.id] = NULL;
                continue;
            }
            if (p == NULL && op.size != 0) die("allocation failed", (unsigned long)i);
            if (p != NULL && op.size != 0) *p = 1;
            table[op.id] = p;
        }
        elapsed += now_ns() - began;
        size_t f = footprint();
        if (f > peak_footprint) peak_footprint = f;
    }
    size_t final_footprint = footprint();
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    printf("{\"ops\":%zu,\"nsPerOp\":%.3f,\"peakLiveBytes\":%zu,\"peakFootprintBytes\":%zu,"
           "\"finalFootprintBytes\":%zu,\"peakRssBytes\":%ld}\n",
           count, count ? (double)elapsed / (double)count : 0.0, peak_live, peak_footprint,
           final_footprint, usage.ru_maxrss * 1024L);
    return 0;
}
