/* fdtrack.c - where each open descriptor was opened (--track-fds=yes).
 *
 * The functions that create descriptors are interposed; each records the
 * caller's stack in a table indexed by descriptor number.  At exit the
 * report lists /proc/self/fd and looks every descriptor up here; one with no
 * entry was inherited (or opened by libc internally).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define MAX_FD 65536
struct fdent {
    uint32_t stack;
    uint8_t fn;
};
static struct fdent *fdtab;

static const char *const fd_fns[] = {
    "?", "open", "open64", "openat", "openat64", "creat", "socket", "socketpair", "pipe", "pipe2",
    "dup", "dup2", "dup3", "accept", "accept4", "eventfd", "epoll_create", "epoll_create1",
    "timerfd_create", "signalfd", "memfd_create", "inotify_init", "inotify_init1", "fopen",
    "fopen64", "freopen", "opendir", "fcntl", "creat64",
};
enum {
    F_OPEN = 1, F_OPEN64, F_OPENAT, F_OPENAT64, F_CREAT, F_SOCKET, F_SOCKETPAIR, F_PIPE, F_PIPE2,
    F_DUP, F_DUP2, F_DUP3, F_ACCEPT, F_ACCEPT4, F_EVENTFD, F_EPOLL, F_EPOLL1, F_TIMERFD,
    F_SIGNALFD, F_MEMFD, F_INOTIFY, F_INOTIFY1, F_FOPEN, F_FOPEN64, F_FREOPEN, F_OPENDIR, F_FCNTL,
    F_CREAT64,
};

const char *ms_fd_fn_name(int fd) MS_HIDDEN;
const char *ms_fd_fn_name(int fd)
{
    if (!fdtab || fd < 0 || fd >= MAX_FD || fdtab[fd].fn >= sizeof fd_fns / sizeof fd_fns[0])
        return "?";
    return fd_fns[fdtab[fd].fn];
}

#define FN_INTERNAL 255 /* opened by the agent or its libraries (libunwind's pipe) */

static void opened(int fd, int fn)
{
    if (fd < 0 || fd >= MAX_FD || !ms_opt.track_fds || !ms_active)
        return;
    if (!fdtab && !(fdtab = ms_region_alloc(MAX_FD * sizeof *fdtab)))
        return;
    if (ms_ts.in_report || ms_ts.busy) {
        fdtab[fd].stack = 0;
        fdtab[fd].fn = FN_INTERNAL;
        return;
    }
    int e = errno;
    ms_ts.busy = 1;
    fdtab[fd].stack = ms_capture_stack();
    fdtab[fd].fn = (uint8_t)fn;
    ms_leave_busy();
    errno = e;
}

void ms_fd_opened(int fd)
{
    opened(fd, 0);
}

void ms_fd_closed(int fd)
{
    if (fdtab && fd >= 0 && fd < MAX_FD)
        fdtab[fd].stack = 0, fdtab[fd].fn = 0;
}

void ms_fd_internal_set(int fd) MS_HIDDEN;
void ms_fd_internal_set(int fd)
{
    if (fd < 0 || fd >= MAX_FD || (!fdtab && !(fdtab = ms_region_alloc(MAX_FD * sizeof *fdtab))))
        return;
    fdtab[fd].stack = 0;
    fdtab[fd].fn = FN_INTERNAL;
}

int ms_fd_internal(int fd) MS_HIDDEN;
int ms_fd_internal(int fd)
{
    return fdtab && fd >= 0 && fd < MAX_FD && fdtab[fd].fn == FN_INTERNAL;
}

uint32_t ms_fd_site(int fd)
{
    return fdtab && fd >= 0 && fd < MAX_FD ? fdtab[fd].stack : 0;
}

#define EXPORT __attribute__((visibility("default")))
#define REAL(name) \
    static __typeof__(name) *real_##name; \
    if (!real_##name) real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

EXPORT int open(const char *path, int flags, ...)
{
    REAL(open);
    mode_t mode = 0;
    if (flags & (O_CREAT | __O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    int fd = real_open(path, flags, mode);
    opened(fd, F_OPEN);
    return fd;
}

EXPORT int open64(const char *path, int flags, ...)
{
    REAL(open64);
    mode_t mode = 0;
    if (flags & (O_CREAT | __O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    int fd = real_open64(path, flags, mode);
    opened(fd, F_OPEN64);
    return fd;
}

EXPORT int openat(int dfd, const char *path, int flags, ...)
{
    REAL(openat);
    mode_t mode = 0;
    if (flags & (O_CREAT | __O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    int fd = real_openat(dfd, path, flags, mode);
    opened(fd, F_OPENAT);
    return fd;
}

EXPORT int openat64(int dfd, const char *path, int flags, ...)
{
    REAL(openat64);
    mode_t mode = 0;
    if (flags & (O_CREAT | __O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    int fd = real_openat64(dfd, path, flags, mode);
    opened(fd, F_OPENAT64);
    return fd;
}

EXPORT int creat(const char *path, mode_t mode)
{
    REAL(creat);
    int fd = real_creat(path, mode);
    opened(fd, F_CREAT);
    return fd;
}

EXPORT int creat64(const char *path, mode_t mode)
{
    REAL(creat64);
    int fd = real_creat64(path, mode);
    opened(fd, F_CREAT64);
    return fd;
}

EXPORT int socket(int d, int t, int p)
{
    REAL(socket);
    int fd = real_socket(d, t, p);
    opened(fd, F_SOCKET);
    return fd;
}

EXPORT int socketpair(int d, int t, int p, int sv[2])
{
    REAL(socketpair);
    int r = real_socketpair(d, t, p, sv);
    if (r == 0) {
        opened(sv[0], F_SOCKETPAIR);
        opened(sv[1], F_SOCKETPAIR);
    }
    return r;
}

EXPORT int pipe(int p[2])
{
    REAL(pipe);
    int r = real_pipe(p);
    if (r == 0) {
        opened(p[0], F_PIPE);
        opened(p[1], F_PIPE);
    }
    return r;
}

EXPORT int pipe2(int p[2], int flags)
{
    REAL(pipe2);
    int r = real_pipe2(p, flags);
    if (r == 0) {
        opened(p[0], F_PIPE2);
        opened(p[1], F_PIPE2);
    }
    return r;
}

EXPORT int dup(int fd)
{
    REAL(dup);
    int r = real_dup(fd);
    opened(r, F_DUP);
    return r;
}

EXPORT int dup2(int a, int b)
{
    REAL(dup2);
    int r = real_dup2(a, b);
    if (r >= 0 && a != b)
        opened(r, F_DUP2);
    return r;
}

EXPORT int dup3(int a, int b, int fl)
{
    REAL(dup3);
    int r = real_dup3(a, b, fl);
    opened(r, F_DUP3);
    return r;
}

EXPORT int accept(int s, struct sockaddr *a, socklen_t *l)
{
    REAL(accept);
    int r = real_accept(s, a, l);
    opened(r, F_ACCEPT);
    return r;
}

EXPORT int accept4(int s, struct sockaddr *a, socklen_t *l, int fl)
{
    REAL(accept4);
    int r = real_accept4(s, a, l, fl);
    opened(r, F_ACCEPT4);
    return r;
}

EXPORT int eventfd(unsigned int v, int fl)
{
    REAL(eventfd);
    int r = real_eventfd(v, fl);
    opened(r, F_EVENTFD);
    return r;
}

EXPORT int epoll_create(int n)
{
    REAL(epoll_create);
    int r = real_epoll_create(n);
    opened(r, F_EPOLL);
    return r;
}

EXPORT int epoll_create1(int fl)
{
    REAL(epoll_create1);
    int r = real_epoll_create1(fl);
    opened(r, F_EPOLL1);
    return r;
}

EXPORT int timerfd_create(int c, int fl)
{
    REAL(timerfd_create);
    int r = real_timerfd_create(c, fl);
    opened(r, F_TIMERFD);
    return r;
}

EXPORT int signalfd(int fd, const sigset_t *m, int fl)
{
    REAL(signalfd);
    int r = real_signalfd(fd, m, fl);
    if (fd == -1)
        opened(r, F_SIGNALFD);
    return r;
}

EXPORT int memfd_create(const char *n, unsigned int fl)
{
    REAL(memfd_create);
    int r = real_memfd_create(n, fl);
    opened(r, F_MEMFD);
    return r;
}

EXPORT int inotify_init(void)
{
    REAL(inotify_init);
    int r = real_inotify_init();
    opened(r, F_INOTIFY);
    return r;
}

EXPORT int inotify_init1(int fl)
{
    REAL(inotify_init1);
    int r = real_inotify_init1(fl);
    opened(r, F_INOTIFY1);
    return r;
}

EXPORT int fcntl(int fd, int cmd, ...)
{
    REAL(fcntl);
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int r = real_fcntl(fd, cmd, arg);
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
        opened(r, F_FCNTL);
    return r;
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
    REAL(fcntl64);
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int r = real_fcntl64(fd, cmd, arg);
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
        opened(r, F_FCNTL);
    return r;
}

EXPORT FILE *fopen(const char *path, const char *mode)
{
    REAL(fopen);
    FILE *f = real_fopen(path, mode);
    if (f)
        opened(fileno(f), F_FOPEN);
    return f;
}

EXPORT FILE *fopen64(const char *path, const char *mode)
{
    REAL(fopen64);
    FILE *f = real_fopen64(path, mode);
    if (f)
        opened(fileno(f), F_FOPEN64);
    return f;
}

EXPORT FILE *freopen(const char *path, const char *mode, FILE *s)
{
    REAL(freopen);
    FILE *f = real_freopen(path, mode, s);
    if (f)
        opened(fileno(f), F_FREOPEN);
    return f;
}

EXPORT DIR *opendir(const char *path)
{
    REAL(opendir);
    DIR *d = real_opendir(path);
    if (d)
        opened(dirfd(d), F_OPENDIR);
    return d;
}

EXPORT int close(int fd)
{
    REAL(close);
    ms_fd_closed(fd);
    return real_close(fd);
}

EXPORT int fclose(FILE *f)
{
    REAL(fclose);
    if (f)
        ms_fd_closed(fileno(f));
    return real_fclose(f);
}

EXPORT int closedir(DIR *d)
{
    REAL(closedir);
    DIR *volatile dv = d; /* declared nonnull, but programs pass NULL too */
    if (dv)
        ms_fd_closed(dirfd(dv));
    return real_closedir(d);
}
