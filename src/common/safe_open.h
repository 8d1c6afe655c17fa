/* safe_open.h - open an output file of memsleuth (a report, a log, an export)
 * the safe way, shared by the agent (report.c), the launcher (memsleuth.c) and
 * `memsleuth report/diff -o` (out.c).  Header-only: no new object to link.
 *
 *  - created 0600 (the umask can only take more away);
 *  - never through a symbolic link standing at the path (O_NOFOLLOW), except
 *    /dev/stdout, /dev/stderr and /dev/fd/N, which name our own descriptors;
 *  - never into a file of another user (a shared folder such as /tmp: even
 *    root does not write another user's file), nor a FIFO or socket of another
 *    user (whose reader would get the report), nor a regular file with other
 *    hard links (a link planted to a file elsewhere);
 *  - opened without blocking (a FIFO planted at the path cannot hang the
 *    program at exit), then made blocking again;
 *  - a regular file is emptied unless append is set.
 * Character devices (/dev/null, /dev/full, a terminal) are written as they are.
 *
 * Returns the descriptor (O_CLOEXEC), or a negative MS_OPEN_* code with errno
 * set; ms_open_private_why() words it for the one-line message.
 */
#ifndef MS_SAFE_OPEN_H
#define MS_SAFE_OPEN_H

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    MS_OPEN_ERRNO = -1,      /* open/fstat/ftruncate failed: strerror(errno) */
    MS_OPEN_SYMLINK = -2,    /* a symbolic link stands at the path */
    MS_OPEN_OTHER_USER = -3, /* the file belongs to another user */
    MS_OPEN_HARDLINK = -4,   /* a regular file with other hard links */
};

static inline int ms_open_own_fd_path(const char *p)
{
    if (!strcmp(p, "/dev/stdout") || !strcmp(p, "/dev/stderr"))
        return 1;
    if (strncmp(p, "/dev/fd/", 8) || !p[8])
        return 0;
    for (p += 8; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return 1;
}

static inline int ms_open_private(const char *path, int append)
{
    int fl = O_WRONLY | O_CREAT | O_CLOEXEC | O_NONBLOCK | (append ? O_APPEND : 0);
    int fd = open(path, fl | (ms_open_own_fd_path(path) ? 0 : O_NOFOLLOW), 0600);
    if (fd < 0) {
        if (errno == ELOOP) {
            struct stat ls;
            if (lstat(path, &ls) == 0 && S_ISLNK(ls.st_mode))
                return MS_OPEN_SYMLINK;
            errno = ELOOP;
        }
        return MS_OPEN_ERRNO;
    }
    struct stat st;
    int code = 0;
    if (fstat(fd, &st) != 0)
        code = MS_OPEN_ERRNO;
    else if (!S_ISCHR(st.st_mode) && st.st_uid != geteuid())
        code = MS_OPEN_OTHER_USER;
    else if (S_ISREG(st.st_mode) && st.st_nlink > 1)
        code = MS_OPEN_HARDLINK;
    else if (fcntl(fd, F_SETFL, append ? O_APPEND : 0) != 0)
        code = MS_OPEN_ERRNO;
    else if (!append && S_ISREG(st.st_mode) && ftruncate(fd, 0) != 0)
        code = MS_OPEN_ERRNO;
    if (code) {
        int e = errno;
        close(fd);
        errno = e;
        return code;
    }
    return fd;
}

/* the reason of a failed ms_open_private(), for "cannot write 'PATH': WHY" */
static inline const char *ms_open_private_why(int code, int err)
{
    switch (code) {
    case MS_OPEN_SYMLINK:
        return "it is a symbolic link (not followed)";
    case MS_OPEN_OTHER_USER:
        return "it belongs to another user";
    case MS_OPEN_HARDLINK:
        return "it has other hard links";
    default:
        return strerror(err);
    }
}

#endif /* MS_SAFE_OPEN_H */
