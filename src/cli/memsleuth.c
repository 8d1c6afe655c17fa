/* memsleuth.c - the command: `memsleuth run` launches a program under the
 * agent; the other subcommands come with the trace (see docs/).
 *
 * `run` validates the options (one-line error and exit 2 on a bad one),
 * passes them to the agent in MEMSLEUTH_OPTIONS, puts the agent in
 * LD_PRELOAD, forks, execs the program and waits for it.  Its exit status is
 * the program's (128+N when the program died of signal N, as a shell says
 * it), unless the agent's --error-exitcode fired inside the program.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "../common/options.h"
#include "../common/safe_open.h"
#include "../common/elfkind.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "analyze.h"

#define VERSION "0.1.0"
#define AGENT_NAME "libmemsleuth_agent.so"

static const char usage_run[] =
    "NAME\n"
    "    memsleuth run - find the memory a program leaks, the way valgrind memcheck does\n"
    "\n"
    "SYNOPSIS\n"
    "    memsleuth run [OPTIONS] [--] PROGRAM [ARGS...]\n"
    "\n"
    "DESCRIPTION\n"
    "    Runs PROGRAM (any dynamically linked, unmodified program) with the memsleuth agent\n"
    "    preloaded.  Every allocation is recorded with its call stack.  When the program\n"
    "    exits (return from main, exit, _exit, or a fatal signal left at its default action),\n"
    "    the other threads are stopped, memory is scanned from the roots (stacks, registers,\n"
    "    globals, TLS) and every block still allocated is classified as definitely lost,\n"
    "    indirectly lost, possibly lost or still reachable, with valgrind's rules and text\n"
    "    layout.  Forked children and exec'd programs are followed; each process reports\n"
    "    at its own exit.\n"
    "\n"
    "OPTIONS\n"
    "    --leak-check=no|summary|full      what to report at exit [full]\n"
    "    --show-leak-kinds=KINDS           loss records shown: a comma list of definite,\n"
    "                                      indirect, possible, reachable, or all, none\n"
    "                                      [definite,possible]\n"
    "    --errors-for-leak-kinds=KINDS     kinds that count as errors [definite,possible]\n"
    "    --error-exitcode=N                exit with N (1-255) when errors were found\n"
    "    --log-file=PATH                   text report to PATH instead of stderr; %p = pid\n"
    "    --json=PATH                       JSON report (one file per process with %p)\n"
    "    --suppressions=FILE               valgrind suppressions ({ ... Memcheck:Leak ... })\n"
    "                                      or LeakSanitizer 'leak:' lines; may repeat\n"
    "    --gen-suppressions=all|no         print a suppression after each loss record\n"
    "    --track-fds=yes|no                list descriptors open at exit and where they\n"
    "                                      were opened [no]\n"
    "    --snapshot-signal=SIG             a live reachability check when SIG arrives (USR1, USR2,\n"
    "                                      HUP, WINCH, URG, PWR or a number; none by default)\n"
    "    --snapshot-interval=SECONDS       a live reachability check every SECONDS\n"
    "    --snapshot-peak=FACTOR|no         a quiet check (into the trace only) whenever the live\n"
    "                                      heap reaches FACTOR times what the last such check\n"
    "                                      held: the largest one holds at least 1/FACTOR of the\n"
    "                                      highest heap seen (sampled every 10 ms) [1.5]\n"
    "    --snapshot-peak-min=SIZE          no peak check below SIZE live bytes (K, M, G) [64M]\n"
    "    --graph=yes|no                    record the heap graph (pointers between blocks, roots)\n"
    "                                      at every check, for `memsleuth report`'s retained-by-\n"
    "                                      root and why-alive sections [yes]\n"
    "    --trace=PATH|no                   where the trace of every allocation goes (%p = pid,\n"
    "                                      %n = program name) [memsleuth.%n.%p.trace]; read it\n"
    "                                      with `memsleuth report`\n"
    "    --num-callers=N                   frames kept per stack, the allocation\n"
    "                                      function's line included (as valgrind), 1-250 [64]\n"
    "    --malloc-fill=HEX, --free-fill=HEX  fill new (freed) blocks with this byte, as valgrind\n"
    "                                      does; --malloc-fill=0 also keeps stale pointers in\n"
    "                                      never-written bytes from making blocks reachable\n"
    "    --keep-stacktraces=alloc|alloc-and-free\n"
    "                                      also record where each block is freed, for\n"
    "                                      double-free reports (costs a second unwind) [alloc]\n"
    "    --run-libc-freeres=yes|no         let glibc and libstdc++ free their own buffers\n"
    "                                      before the final scan [yes]\n"
    "    --sample-rate=BYTES               record one allocation per ~BYTES allocated (K, M,\n"
    "                                      G: KiB, MiB, GiB), chosen at random (Poisson), as\n"
    "                                      tcmalloc's heap profiler does: for always-on use in\n"
    "                                      production.  Verdicts then cover the recorded\n"
    "                                      blocks only and are statistical [0: every one]\n"
    "    -h, --help                        this text\n"
    "\n"
    "EXIT STATUS\n"
    "    The program's own; 128+N when it was killed by signal N; the --error-exitcode\n"
    "    value when errors were found; 2 on a usage error; 127 when PROGRAM cannot run.\n"
    "\n"
    "ENVIRONMENT\n"
    "    MEMSLEUTH_AGENT   path of " AGENT_NAME " (default: next to this program)\n"
    "\n"
    "EXAMPLES\n"
    "    memsleuth run ./server --port 8080\n"
    "    memsleuth run --show-leak-kinds=all --json=leaks.%p.json -- make check\n"
    "    memsleuth run --error-exitcode=1 --suppressions=ci.supp -- ./unit_tests\n";

static const char usage_top[] =
    "usage: memsleuth COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "    run [OPTIONS] [--] PROGRAM [ARGS...]   run a program and report its leaks at exit\n"
    "    snapshot [--pools] PID                 reachability check of a running traced process\n"
    "    report [OPTIONS] TRACE...              memory over time, top sites, growth suspects, threads\n"
    "    diff [--scale N:M] A B                 per-site change between two traces\n"
    "    help [COMMAND]                         show help\n"
    "    version                                print the version\n"
    "\n"
    "`memsleuth run --help` describes the options.\n";

static int die_usage(const char *fmt, const char *arg)
{
    /* one line, whatever the argument holds */
    char shown[256];
    size_t k = 0;
    for (const char *c = arg; *c && k < sizeof shown - 4; c++)
        shown[k++] = (unsigned char)*c < 0x20 || *c == 0x7f ? '?' : *c;
    if (strlen(arg) > k)
        shown[k++] = '.', shown[k++] = '.', shown[k++] = '.';
    shown[k] = 0;
    fprintf(stderr, "memsleuth: ");
    fprintf(stderr, fmt, shown);
    fprintf(stderr, " (see 'memsleuth run --help')\n");
    return 2;
}

/* the agent: $MEMSLEUTH_AGENT, next to this executable, or ../lib/memsleuth */
static int find_agent(char *out, size_t cap)
{
    const char *env = getenv("MEMSLEUTH_AGENT");
    if (env && *env) {
        if (!realpath(env, out) || access(out, R_OK) != 0)
            return -1;
        return 0;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (!slash)
        return -1;
    *slash = 0;
    const char *cands[] = { "/", "/../lib/memsleuth/", "/../lib/" };
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        snprintf(out, cap, "%s%s%s", self, cands[i], AGENT_NAME);
        char real[PATH_MAX];
        if (access(out, R_OK) == 0 && realpath(out, real)) {
            snprintf(out, cap, "%s", real);
            return 0;
        }
    }
    return -1;
}

/* PROGRAM as execvp would find it */
static int find_program(const char *prog, char *out, size_t cap)
{
    if (strchr(prog, '/')) {
        snprintf(out, cap, "%s", prog);
        return access(out, X_OK);
    }
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path; *p;) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        snprintf(out, cap, "%.*s/%s", (int)n, n ? p : ".", prog);
        struct stat st;
        if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
            return 0;
        p += n;
        if (*p == ':')
            p++;
    }
    return -1;
}

static pid_t child;

static void forward(int sig)
{
    if (child > 0)
        kill(child, sig);
}

/* a path pattern without %p is shared by every process: start it empty */
static int prepare_log(const char *pattern)
{
    if (!*pattern || strstr(pattern, "%p"))
        return 0;
    int fd = ms_open_private(pattern, 0); /* 0600, no symlink, not another user's */
    if (fd < 0) {
        fprintf(stderr, "memsleuth: cannot write log file '%s': %s\n", pattern,
                ms_open_private_why(fd, errno));
        return -1;
    }
    close(fd);
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    struct ms_options o;
    ms_options_init(&o);
    char env[16384];
    size_t envlen = 0;
    int i;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_run, stdout);
            return 0;
        }
        if (a[0] != '-')
            break;
        char err[512];
        int r = ms_options_parse(&o, a, err, sizeof err);
        if (r < 0)
            return die_usage("%s", err);
        if (r == 0)
            return die_usage("unknown option '%s'", a);
        /* a relative output or suppressions path is relative to here: a
         * daemon that changes to / must still write (read) the same file */
        char absarg[PATH_MAX + 64];
        static const char *const paths[] = { "--log-file=", "--json=", "--trace=", "--suppressions=" };
        for (size_t k = 0; k < sizeof paths / sizeof *paths; k++) {
            size_t pl = strlen(paths[k]);
            const char *v = a + pl;
            char cwd[PATH_MAX];
            if (!strncmp(a, paths[k], pl) && *v && *v != '/' && strcmp(a, "--trace=no") &&
                getcwd(cwd, sizeof cwd) &&
                (size_t)snprintf(absarg, sizeof absarg, "%s%s/%s", paths[k], strcmp(cwd, "/") ? cwd : "", v) <
                    sizeof absarg) {
                struct ms_options scratch; /* still within the option's size? */
                char e2[64];
                ms_options_init(&scratch);
                if (ms_options_parse(&scratch, absarg, e2, sizeof e2) == 1)
                    a = absarg;
            }
        }
        size_t n = strlen(a);
        if (envlen + n + 2 > sizeof env)
            return die_usage("%s", "too many options");
        if (envlen)
            env[envlen++] = MS_OPT_SEP;
        memcpy(env + envlen, a, n);
        envlen += n;
    }
    env[envlen] = 0;
    if (i >= argc)
        return die_usage("%s", "no program to run");
    /* suppression files must exist now, not at the end of a long run */
    for (const char *s = o.supp_files; *s;) {
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        char path[4096];
        snprintf(path, sizeof path, "%.*s", (int)n, s);
        if (access(path, R_OK) != 0) {
            fprintf(stderr, "memsleuth: cannot read suppressions file '%s': %s\n", path, strerror(errno));
            return 2;
        }
        s += n + (e != NULL);
    }
    char prog[PATH_MAX];
    if (find_program(argv[i], prog, sizeof prog) != 0) {
        fprintf(stderr, "memsleuth: cannot run '%s': %s\n", argv[i],
                errno == EACCES ? "permission denied" : "no such program");
        return 127;
    }
    char agent[PATH_MAX];
    int traced = 1;
    if (find_agent(agent, sizeof agent) != 0) {
        fprintf(stderr, "memsleuth: cannot find %s (set MEMSLEUTH_AGENT); the program runs untraced\n",
                AGENT_NAME);
        traced = 0;
    } else if (ms_elf_is_static(prog)) {
        fprintf(stderr, "memsleuth: '%s' is statically linked: it cannot be traced; running it untraced\n",
                prog);
        traced = 0;
    }
    if (traced) {
        if (prepare_log(o.log_file) < 0)
            return 2;
        const char *old = getenv("LD_PRELOAD");
        char pre[PATH_MAX * 2];
        if (old && *old)
            snprintf(pre, sizeof pre, "%s:%s", agent, old);
        else
            snprintf(pre, sizeof pre, "%s", agent);
        setenv("LD_PRELOAD", pre, 1);
        setenv("MEMSLEUTH_OPTIONS", env, 1);
    }
    fflush(NULL);
    child = fork();
    if (child < 0) {
        fprintf(stderr, "memsleuth: fork failed: %s\n", strerror(errno));
        return 127;
    }
    if (child == 0) {
        execv(prog, &argv[i]);
        fprintf(stderr, "memsleuth: cannot run '%s': %s\n", prog, strerror(errno));
        _exit(127);
    }
    /* the terminal sends ^C and ^\ to the whole group: the program gets its
     * own; signals sent to us alone are passed on */
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    int st;
    while (waitpid(child, &st, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "memsleuth: waitpid: %s\n", strerror(errno));
            return 127;
        }
    }
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 127;
}

/* `memsleuth snapshot [--pools] PID`: ask a traced process, through its
 * control socket, for a reachability check now (or its pool trees) */
static int cmd_snapshot(int argc, char **argv)
{
    int pools = 0;
    const char *pid_s = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--pools"))
            pools = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: memsleuth snapshot [--pools] PID\n"
                   "  A reachability check of the running process PID (started with memsleuth run):\n"
                   "  its threads stop briefly; the verdicts so far are printed here, written to its\n"
                   "  trace, and its pause is reported.  --pools prints its libmemsleuth_pool trees.\n");
            return 0;
        } else if (argv[i][0] == '-')
            return die_usage("unknown option '%s'", argv[i]);
        else if (pid_s)
            return die_usage("%s", "one PID only");
        else
            pid_s = argv[i];
    }
    char *end;
    long pid = pid_s ? strtol(pid_s, &end, 10) : 0;
    if (!pid_s || *end || pid <= 0)
        return die_usage("%s", "snapshot needs a PID");
    char st[64];
    snprintf(st, sizeof st, "/proc/%ld", pid);
    struct stat ps;
    if (stat(st, &ps) != 0) {
        fprintf(stderr, "memsleuth: no process %ld\n", pid);
        return 1;
    }
    /* the process's socket folder: its runtime dir, or /tmp/memsleuth-UID of its owner */
    char cands[2][200];
    int nc = 0;
    const char *rt = getenv("XDG_RUNTIME_DIR");
    if (rt && rt[0] == '/')
        snprintf(cands[nc++], sizeof cands[0], "%s/memsleuth/%ld.sock", rt, pid);
    snprintf(cands[nc++], sizeof cands[0], "/tmp/memsleuth-%u/%ld.sock", (unsigned)ps.st_uid, pid);
    int fd = -1, denied = 0;
    for (int i = 0; i < nc && fd < 0; i++) {
        /* only a socket in a folder of the process's owner, closed to others:
         * not one another user put in a /tmp/memsleuth-UID of their own */
        char dir[200];
        snprintf(dir, sizeof dir, "%s", cands[i]);
        *strrchr(dir, '/') = 0;
        struct stat ds;
        if (lstat(dir, &ds) != 0) {
            denied |= errno == EACCES;
            continue;
        }
        if (!S_ISDIR(ds.st_mode) || ds.st_uid != ps.st_uid || (ds.st_mode & 077))
            continue;
        struct sockaddr_un a;
        memset(&a, 0, sizeof a);
        a.sun_family = AF_UNIX;
        snprintf(a.sun_path, sizeof a.sun_path, "%s", cands[i]);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
            denied |= errno == EACCES;
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0 && denied) {
        fprintf(stderr, "memsleuth: process %ld: permission denied (its control socket is its user's only)\n", pid);
        return 1;
    }
    if (fd < 0) {
        fprintf(stderr, "memsleuth: process %ld is not running under memsleuth (no control socket)\n", pid);
        return 1;
    }
    const char *req = pools ? "pools\n" : "snapshot\n";
    /* no SIGPIPE: a process that refuses us answers and closes before reading */
    int werr = 0;
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
        werr = errno ? errno : EIO;
    char buf[8192];
    ssize_t k;
    int any = 0, err = 0;
    while ((k = read(fd, buf, sizeof buf)) > 0) {
        if (!any && !strncmp(buf, "error:", 6))
            err = 1;
        any = 1;
        fwrite(buf, 1, (size_t)k, err ? stderr : stdout);
    }
    close(fd);
    if (!any && werr) {
        fprintf(stderr, "memsleuth: cannot talk to process %ld: %s\n", pid, strerror(werr));
        return 1;
    }
    if (!any) {
        fprintf(stderr, "memsleuth: process %ld gave no answer\n", pid);
        return 1;
    }
    return err;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_top, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "run"))
        return cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("memsleuth %s\n", VERSION);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        if (argc > 2 && !strcmp(argv[2], "run"))
            fputs(usage_run, stdout);
        else
            fputs(usage_top, stdout);
        return 0;
    }
    if (!strcmp(cmd, "snapshot"))
        return cmd_snapshot(argc - 2, argv + 2);
    if (!strcmp(cmd, "report"))
        return ms_report_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "diff"))
        return ms_diff_main(argc - 1, argv + 1);
    fprintf(stderr, "memsleuth: unknown command '%s' (see 'memsleuth help')\n", cmd);
    return 2;
}
