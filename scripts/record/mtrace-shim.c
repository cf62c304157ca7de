/*
 * mtrace-shim.c: preloaded after glibc's libc_malloc_debug.so.0 by src/tools/trace/record.ts.
 *
 * mtrace() only traces once it is called, and the program being recorded does not call it.
 * This library calls it from a constructor, so tracing starts as the program loads, before
 * main(); blocks allocated earlier (by libc start-up) show up in the trace only as frees of
 * unknown addresses, which the importer skips and counts.
 *
 * Glossary. A process is one pid from its start (fork, or its first exec) to its exit; an
 * image is one program it runs, from an exec (or a fork, which copies the parent's image) to
 * the next exec or the exit. The shim runs in every image that loads it: a dynamically
 * linked, not setuid program started by the command or by its descendants, which inherit
 * LD_PRELOAD. Its name is the file name it was exec'd by (a script's, not its interpreter's).
 *
 * With a recorder (PYMALLOC_RECORD_DIR set by record.ts), every image announces itself on the
 * control pipe <dir>/control, one line, written with a single write() (atomic below PIPE_BUF):
 *
 *     <event> <process id> <stream file or -> <image name>
 *
 *     event       fork   a fork() child, announced by the fork handler before fork() returns
 *                 exec   an image started by exec (the first of a process started with vfork or
 *                        posix_spawn, or a later one)
 *     process id  <pid>.<start time>: the start time, in clock ticks after boot, is the kernel's
 *                 (/proc/self/stat), which exec keeps and a reused pid does not share, so the
 *                 id names one process in all its images without anything passed through the
 *                 environment: shells build their children's environment from their own
 *                 variables, and would not pass on what a fork handler set
 *
 * Which images are traced: PYMALLOC_RECORD_PROCESSES is empty for the command's own process
 * (the images whose parent is the recorder, PYMALLOC_RECORD_PARENT), "*" for all of them, or
 * names between slashes, "/cc1/as/", for the images of those names. A traced image gets a named
 * pipe of its own, <dir>/<process id>-<ns>.pipe, announced in its line; the recorder
 * concatenates the streams of one process into one trace, so each image after the first opens
 * with "= Start", which the importer takes as a new, empty heap.
 *
 *   - The stream's handshake: mkfifo, announce, then open the pipe to write without blocking,
 *     retrying until the recorder has opened it to read (it does on reading the line), and
 *     write one newline. Tricky: the recorder reads the pipe without blocking, and such a read
 *     says end-of-file both before the first writer came and after the last one left; the
 *     newline tells them apart, since the recorder takes end-of-file as final only after a
 *     byte. It also ends the line that the previous image's stream may have been cut in (exec
 *     discards the old image's stdio buffer), so that the cut line stands alone right before
 *     "= Start", where the importer forgives it.
 *   - The pipe is opened without blocking so that an image whose recorder is gone gives up
 *     after HANDSHAKE_TIMEOUT_NS and runs untraced instead of hanging.
 *   - A fork() child inherits the parent's trace stream, unwritten buffer included, and would
 *     interleave its heap (and a copy of that buffer) with the parent's. So the fork handler
 *     closes the child's copy of the trace descriptor and stops the stream with muntrace(),
 *     which then writes nothing; a traced child starts a stream of its own. glibc resets
 *     stdio's locks in the child before fork handlers run.
 *   - Writes to the recorder's pipes hold SIGPIPE back: a recorder that has just gone must not
 *     kill the program.
 *
 * Without a recorder (MALLOC_TRACE=<file> and the preload set by hand, as bench/trace-import.ts
 * does), the first image is traced into MALLOC_TRACE and nothing else is: it notes its pid in
 * PYMALLOC_RECORD_PID, set by a constructor early enough for shells to pass it on.
 *
 * No muntrace() at exit: glibc flushes the trace at exit by itself, and the frees that
 * __libc_freeres() logs then are real frees worth keeping.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mcheck.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DIR_VARIABLE "PYMALLOC_RECORD_DIR"
#define PROCESSES_VARIABLE "PYMALLOC_RECORD_PROCESSES"
#define PARENT_VARIABLE "PYMALLOC_RECORD_PARENT"
#define FIRST_PID_VARIABLE "PYMALLOC_RECORD_PID"

#define CONTROL_PIPE "control"
#define ALL_PROCESSES "*"

/* How long a new stream waits for the recorder to open it, and how often it looks. */
#define HANDSHAKE_TIMEOUT_NS (10LL * 1000 * 1000 * 1000)
#define HANDSHAKE_RETRY_NS (50LL * 1000)

/* Descriptors scanned for the one mtrace() opened, when it is not where expected. */
#define MAX_SCANNED_FD 1024

/* An announcement must fit one atomic pipe write. */
#define ANNOUNCEMENT_MAX 1024

typedef enum { EVENT_FORK, EVENT_EXEC } image_event;
static const char *const EVENT_NAMES[] = {"fork", "exec"};

/* This image's name: the basename of the path it was exec'd by; a fork child keeps it. */
static char image_name[NAME_MAX + 1];

/* The descriptor mtrace() writes to in this image, or -1 when it is not tracing. */
static int trace_fd = -1;

static long long monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
}

static void name_image(void)
{
    const char *path = (const char *)getauxval(AT_EXECFN);
    if (path == NULL)
        path = program_invocation_name;
    const char *slash = strrchr(path, '/');
    snprintf(image_name, sizeof image_name, "%s", slash == NULL ? path : slash + 1);
    for (char *c = image_name; *c != '\0'; c++) {
        if (*c == '\n')
            *c = '?'; /* an announcement is one line */
    }
}

/* ---- which images are traced ---------------------------------------------------------------- */

static int is_selected(void)
{
    const char *processes = getenv(PROCESSES_VARIABLE);
    if (processes == NULL || processes[0] == '\0') {
        const char *parent = getenv(PARENT_VARIABLE);
        return parent != NULL && atol(parent) == (long)getppid();
    }
    if (strcmp(processes, ALL_PROCESSES) == 0)
        return 1;
    char wanted[NAME_MAX + 3];
    snprintf(wanted, sizeof wanted, "/%s/", image_name);
    return strstr(processes, wanted) != NULL;
}

/* <pid>.<start time>, or <pid>.-<monotonic ns> where /proc is missing (then an exec'd image
 * counts as a process of its own). */
static void get_process_id(char *process_id, size_t size)
{
    char stat[1024];
    long long start_time = -1;
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t length = read(fd, stat, sizeof stat - 1);
        close(fd);
        stat[length > 0 ? length : 0] = '\0';
        /* Field 22; the name, field 2, is in parentheses and may hold spaces and parentheses. */
        char *field = strrchr(stat, ')');
        for (int n = 2; field != NULL && n < 22; n++)
            field = strchr(field + 1, ' ');
        if (field != NULL)
            start_time = atoll(field + 1);
    }
    if (start_time >= 0)
        snprintf(process_id, size, "%ld.%lld", (long)getpid(), start_time);
    else
        snprintf(process_id, size, "%ld.-%lld", (long)getpid(), monotonic_ns());
}

/* ---- talking to the recorder ---------------------------------------------------------------- */

/* write(), but a reader gone makes it fail with EPIPE instead of raising SIGPIPE. */
static ssize_t write_quietly(int fd, const void *data, size_t size)
{
    sigset_t pipe_signal, previous;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_signal, &previous);
    ssize_t written = write(fd, data, size);
    if (written < 0 && errno == EPIPE && !sigismember(&previous, SIGPIPE)) {
        const struct timespec now = {0, 0};
        sigtimedwait(&pipe_signal, NULL, &now); /* the one this write raised */
    }
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    return written;
}

/* One line on the control pipe; 0 if the recorder is gone (nobody reads the pipe). */
static int announce(const char *dir, image_event event, const char *process_id, const char *stream)
{
    char line[ANNOUNCEMENT_MAX];
    int length = snprintf(line, sizeof line, "%s %s %s %s\n", EVENT_NAMES[event], process_id, stream, image_name);
    if (length < 0 || length >= (int)sizeof line)
        return 0;
    char control[PATH_MAX];
    snprintf(control, sizeof control, "%s/%s", dir, CONTROL_PIPE);
    int fd = open(control, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return 0;
    fcntl(fd, F_SETFL, 0); /* a full pipe makes us wait for the recorder, not fail */
    ssize_t written = write_quietly(fd, line, (size_t)length);
    close(fd);
    return written == length;
}

/* The pipe opened to write once the recorder reads it, or -1 after HANDSHAKE_TIMEOUT_NS. */
static int open_stream(const char *path)
{
    const struct timespec retry = {0, HANDSHAKE_RETRY_NS};
    long long deadline = monotonic_ns() + HANDSHAKE_TIMEOUT_NS;
    for (;;) {
        int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) {
            fcntl(fd, F_SETFL, 0);
            return fd;
        }
        if (errno != ENXIO || monotonic_ns() > deadline)
            return -1;
        nanosleep(&retry, NULL);
    }
}

/* The descriptor other than `except` open on the same file as `like`, or -1. */
static int find_descriptor(const struct stat *like, int except)
{
    struct stat candidate;
    for (int fd = 0; fd < MAX_SCANNED_FD; fd++) {
        if (fd != except && fstat(fd, &candidate) == 0 && candidate.st_dev == like->st_dev && candidate.st_ino == like->st_ino)
            return fd;
    }
    return -1;
}

/* Starts mtrace() on `path` and notes the descriptor it opened, which is not `except`. */
static void start_mtrace(const char *path, int except)
{
    /* fopen() takes the lowest free descriptor: this one, as long as no other thread opens one
     * meanwhile (there is no other in a constructor or a fork child); checked after. */
    int expected = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (expected >= 0)
        close(expected);
    setenv("MALLOC_TRACE", path, 1);
    mtrace();
    unsetenv("MALLOC_TRACE"); /* a child calling mtrace() itself must not write into our stream */
    struct stat target, found;
    if (stat(path, &target) != 0)
        return;
    if (expected >= 0 && fstat(expected, &found) == 0 && found.st_dev == target.st_dev && found.st_ino == target.st_ino)
        trace_fd = expected;
    else
        trace_fd = find_descriptor(&target, except);
}

/* Announces this image and, if it is selected, gives it a stream and starts tracing it. */
static void begin_image(const char *dir, image_event event)
{
    char process_id[64];
    get_process_id(process_id, sizeof process_id);
    if (!is_selected()) {
        announce(dir, event, process_id, "-");
        return;
    }
    char stream[NAME_MAX + 1], path[PATH_MAX];
    snprintf(stream, sizeof stream, "%s-%lld.pipe", process_id, monotonic_ns());
    snprintf(path, sizeof path, "%s/%s", dir, stream);
    if (mkfifo(path, 0600) != 0) {
        announce(dir, event, process_id, "-");
        return;
    }
    int fd = -1;
    if (announce(dir, event, process_id, stream))
        fd = open_stream(path);
    if (fd < 0) {
        unlink(path);
        return;
    }
    if (write_quietly(fd, "\n", 1) == 1)
        start_mtrace(path, fd);
    close(fd);
}

/* ---- process start, fork ---------------------------------------------------------------------- */

/* In a fork child: the inherited stream, with the parent's unwritten lines, goes nowhere. The
 * descriptor is closed first, so muntrace()'s flush and "= End" fail to be written (nothing else
 * can take the number meanwhile: a fork child has one thread). */
static void stop_inherited_trace(void)
{
    if (trace_fd < 0)
        return;
    close(trace_fd);
    muntrace();
    trace_fd = -1;
}

static void on_fork_child(void)
{
    stop_inherited_trace();
    const char *dir = getenv(DIR_VARIABLE);
    if (dir != NULL)
        begin_image(dir, EVENT_FORK);
}

static void start_without_recorder(void)
{
    const char *trace = getenv("MALLOC_TRACE");
    if (trace == NULL || getenv(FIRST_PID_VARIABLE) != NULL) {
        unsetenv("MALLOC_TRACE");
        return;
    }
    char path[PATH_MAX], pid[24];
    snprintf(path, sizeof path, "%s", trace);
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    setenv(FIRST_PID_VARIABLE, pid, 1);
    start_mtrace(path, -1);
}

__attribute__((constructor)) static void start_image(void)
{
    name_image();
    pthread_atfork(NULL, NULL, on_fork_child);
    const char *dir = getenv(DIR_VARIABLE);
    if (dir == NULL)
        start_without_recorder();
    else
        begin_image(dir, EVENT_EXEC);
}
