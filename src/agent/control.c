/* control.c - the control socket: `memsleuth snapshot PID` talks to a
 * running traced process here.
 *
 * One unix stream socket per process, $XDG_RUNTIME_DIR/memsleuth/PID.sock
 * (or /tmp/memsleuth-UID/PID.sock), in a folder created 0700 and checked to
 * be ours, the socket itself 0600; every connection's peer credentials are
 * checked (same user, or root) before anything is read.  The trace writer
 * thread polls it, so serving a request never runs on a program thread.
 * Requests are one line: "snapshot" or "pools"; the reply is text, then the
 * connection closes.  The socket is removed at exit.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int listen_fd = -1;
static ino_t listen_ino;
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static pid_t sock_pid;

/* the folder for the sockets of this user; shared with the command */
int ms_control_dir(char *out, size_t cap) MS_HIDDEN;
int ms_control_dir(char *out, size_t cap)
{
    const char *rt = getenv("XDG_RUNTIME_DIR");
    if (rt && rt[0] == '/')
        snprintf(out, cap, "%s/memsleuth", rt);
    else
        snprintf(out, cap, "/tmp/memsleuth-%u", (unsigned)geteuid());
    if (mkdir(out, 0700) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (lstat(out, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))
        return -1; /* not ours, or open to others: refuse */
    return 0;
}

void ms_control_start(void)
{
    char dir[200];
    if (ms_control_dir(dir, sizeof dir) != 0) {
        ms_warn("cannot use the control folder '%s' (not ours or not private); no live snapshots", dir);
        return;
    }
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if ((size_t)snprintf(a.sun_path, sizeof a.sun_path, "%s/%d.sock", dir, (int)ms_pid) >= sizeof a.sun_path)
        return;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return;
    unlink(a.sun_path); /* a stale socket of a dead process with our pid */
    /* the socket file 0600: chmod after bind, not umask(), which is the
     * whole process's and may be read or set by a program thread meanwhile
     * (this can run on the writer thread); until then the folder (0700,
     * ours) keeps everybody else out */
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return;
    }
    if (chmod(a.sun_path, 0600) != 0 || listen(fd, 4) != 0) {
        unlink(a.sun_path);
        close(fd);
        return;
    }
    int hi = fcntl(fd, F_DUPFD_CLOEXEC, 920);
    if (hi >= 0) {
        close(fd);
        fd = hi;
    }
    extern void ms_fd_internal_set(int fd) MS_HIDDEN;
    ms_fd_internal_set(fd);
    listen_fd = fd;
    struct stat st;
    listen_ino = fstat(fd, &st) == 0 ? st.st_ino : 0;
    sock_pid = ms_pid;
    snprintf(sock_path, sizeof sock_path, "%s", a.sun_path);
}

void ms_control_stop(void)
{
    if (listen_fd >= 0 && sock_pid == getpid()) {
        unlink(sock_path);
        close(listen_fd);
    }
    listen_fd = -1;
}

/* a forked child: the parent's socket is the parent's */
void ms_control_after_fork_child(void)
{
    if (listen_fd >= 0)
        close(listen_fd);
    listen_fd = -1;
    ms_control_start();
}

static void reply_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* Wait up to ms milliseconds for a request and serve it.  Called by the
 * writer thread only. */
void ms_control_poll(int ms)
{
    /* a daemon may have closed our descriptor, and its number may now be one
     * of the program's: check it is still our socket before touching it */
    struct stat st;
    if (listen_fd >= 0 && (fstat(listen_fd, &st) != 0 || st.st_ino != listen_ino || !S_ISSOCK(st.st_mode))) {
        listen_fd = -1;
        ms_control_start();
    }
    if (listen_fd < 0) {
        struct timespec d = { ms / 1000, (long)(ms % 1000) * 1000000 };
        nanosleep(&d, NULL);
        return;
    }
    struct pollfd p = { listen_fd, POLLIN, 0 };
    if (poll(&p, 1, ms) <= 0)
        return;
    int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return;
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || (cr.uid != geteuid() && cr.uid != 0)) {
        reply_all(c, "error: refused: not the same user\n", 34);
        close(c);
        return;
    }
    char req[64];
    size_t got = 0;
    struct pollfd q = { c, POLLIN, 0 };
    while (got < sizeof req - 1 && poll(&q, 1, 2000) > 0) {
        ssize_t k = read(c, req + got, sizeof req - 1 - got);
        if (k <= 0)
            break;
        got += (size_t)k;
        if (memchr(req, '\n', got))
            break;
    }
    req[got] = 0;
    char *nl = strchr(req, '\n');
    if (nl)
        *nl = 0;
    extern int ms_snapshot(int trigger, int pools, int reply_fd) MS_HIDDEN;
    if (!strcmp(req, "snapshot"))
        ms_snapshot(3, 0, c);
    else if (!strcmp(req, "pools"))
        ms_snapshot(3, 1, c);
    else
        reply_all(c, "error: unknown request\n", 23);
    close(c);
}
