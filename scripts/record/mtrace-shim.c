/*
 * mtrace-shim.c: preloaded after glibc's libc_malloc_debug.so.0 by src/tools/trace/record.ts.
 *
 * mtrace() only traces once it is called, and the program being recorded does not call it.
 * This library calls it from a constructor, so tracing starts as the program loads, before
 * main(); blocks allocated earlier (by libc start-up) show up in the trace only as frees of
 * unknown addresses, which the importer skips and counts.
 *
 * Which processes are traced: the recorded process, across exec, and none of its children.
 *
 *   - The first traced image notes its pid in PYMALLOC_RECORD_PID.
 *   - An image exec'd into that same pid (a wrapper script, such as pyenv's python3, running
 *     the real program) is traced too: it starts with "= Start" again, which the importer
 *     takes as a new, empty heap.
 *     Tricky: exec discards the old image's stdio buffer, which may end mid-line, so the new
 *     image first writes a newline: the cut line then stands alone, right before "= Start",
 *     where the importer forgives it.
 *   - A child made by fork() inherits the trace stream, unwritten buffer included, and would
 *     interleave its own heap (and a copy of that buffer) with ours. So the fork handler points
 *     the child's copy of the trace descriptor at /dev/null.
 *   - Any image whose pid is not PYMALLOC_RECORD_PID is a child that exec'd: it inherited
 *     LD_PRELOAD and MALLOC_TRACE, so it drops MALLOC_TRACE and does not trace.
 *
 * No muntrace() at exit: glibc flushes the trace at exit by itself, and the frees that
 * __libc_freeres() logs then are real frees worth keeping.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <mcheck.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define OWNER_VARIABLE "PYMALLOC_RECORD_PID"

/* Descriptors scanned for the one mtrace() opened; it is among the first few. */
#define MAX_SCANNED_FD 1024

/* The descriptor mtrace() writes to, or -1. */
static int trace_fd = -1;

static int find_trace_fd(const char *path)
{
    struct stat trace, candidate;
    if (stat(path, &trace) != 0)
        return -1;
    int found = -1;
    for (int fd = 0; fd < MAX_SCANNED_FD; fd++) {
        if (fstat(fd, &candidate) == 0 && candidate.st_dev == trace.st_dev && candidate.st_ino == trace.st_ino)
            found = fd; /* the latest opened: mtrace's, not one the program had before */
    }
    return found;
}

static void mute_forked_child(void)
{
    if (trace_fd < 0)
        return;
    int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null_fd >= 0) {
        dup3(null_fd, trace_fd, O_CLOEXEC);
        close(null_fd);
    }
}

__attribute__((constructor)) static void start_tracing(void)
{
    const char *trace = getenv("MALLOC_TRACE");
    if (trace == NULL)
        return;

    const char *owner = getenv(OWNER_VARIABLE);
    if (owner == NULL) {
        char pid[24];
        snprintf(pid, sizeof pid, "%ld", (long)getpid());
        setenv(OWNER_VARIABLE, pid, 1);
    } else if (atol(owner) != (long)getpid()) {
        unsetenv("MALLOC_TRACE");
        return;
    } else {
        int fd = open(trace, O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) {
            (void)!write(fd, "\n", 1);
            close(fd);
        }
    }
    mtrace();
    trace_fd = find_trace_fd(trace);
    pthread_atfork(NULL, NULL, mute_forked_child);
}
