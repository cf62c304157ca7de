/*
 * mtrace-shim.c: preloaded after glibc's libc_malloc_debug.so.0 by src/trace/record.ts.
 *
 * mtrace() only traces once it is called, and the program being recorded does not call it.
 * This library calls it from a constructor, so tracing starts as the program loads, before
 * main(); blocks allocated earlier (by libc start-up) show up in the trace only as frees of
 * unknown addresses, which the importer skips and counts.
 *
 * Which processes are traced: the recorded process, across exec, and not its children.
 *
 *   - The first traced image notes its pid in PYMALLOC_RECORD_PID.
 *   - An image exec'd into that same pid (a wrapper script, such as pyenv's python3, running
 *     the real program) is traced too: it starts with "= Start" again, and the importer
 *     treats that as a new, empty heap.
 *     Tricky: exec discards the old image's stdio buffer, which may end mid-line, so this
 *     image first writes a newline: the cut line then stands alone, right before "= Start",
 *     where the importer forgives it.
 *   - Any other pid is a child: it inherited LD_PRELOAD and MALLOC_TRACE, and writing into the
 *     same trace would mix two heaps, so it drops MALLOC_TRACE and is not traced.
 *
 * No muntrace() at exit: glibc flushes the trace at exit by itself, and the frees that
 * __libc_freeres() logs then are real frees worth keeping.
 */
#include <fcntl.h>
#include <mcheck.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define OWNER_VARIABLE "PYMALLOC_RECORD_PID"

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
        int fd = open(trace, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd >= 0) {
            (void)!write(fd, "\n", 1);
            close(fd);
        }
    }
    mtrace();
}
