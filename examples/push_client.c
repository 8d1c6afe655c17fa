/*
 * push_client.c - a bounded load driver for push_server (memsleuth demo).
 *
 * Build:
 *   gcc -std=c17 -D_GNU_SOURCE -O1 -g -Wall -Wextra -o push_client push_client.c
 *
 * Usage: push_client PORT [USERS=20] [ROUNDS=50]
 *
 * Plays USERS users, one connection each, against the server on
 * 127.0.0.1:PORT.  Commands go out in lock step (one in flight at a time)
 * and choices come from a fixed-seed generator, so runs are reproducible:
 *   - every user CONNECTs and JOINs #lobby plus one of #dev, #ops, #misc;
 *   - each round every user SENDs to a random user, PUBs to a channel, or
 *     POLLs;
 *   - users 4, 9, 14, ... leave halfway through without polling (one QUITs,
 *     the next just hangs up, ...), so everything sent to them later waits
 *     on their pipe until the server's pipe timeout drops it: planted
 *     leak #1;
 *   - users 3, 8, 13, ... reconnect with the same nick every 10 rounds, so
 *     the server's session history grows: planted leak #2;
 *   - at the end it gives the pipe timeouts time to fire, sends SHUTDOWN
 *     and prints a one-line summary.
 * Everything happens within a 20 s deadline; on any failure (server not
 * reachable, unexpected reply, time is up) it says why and exits 1.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TOTAL_TIMEOUT_MS 20000
#define SETTLE_MS        1000   /* > the server's PIPE_TIMEOUT_MS (300) */
#define MAX_USERS        200
#define USAGE "usage: push_client PORT [USERS=20 (1-200)] [ROUNDS=50]"

struct peer {
    int fd;                     /* -1 while not connected */
    bool gone;                  /* left for good */
    bool have_reply;
    char nick[16];
    char pubid[40];
    char reply[512];            /* the last OK/ERR line */
    size_t in_len;
    char in[8192];              /* start of an incomplete input line */
};

static struct peer *g_peers;
static int g_npeers;
static unsigned g_port;
static int64_t g_deadline;
static uint64_t g_rng = 0x9e3779b97f4a7c15u;
static struct {
    unsigned long sent, delivered, queued, polled, received, reconnects, left;
} g_st;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static _Noreturn void fail(const char *fmt, ...)
{
    va_list ap;

    fputs("push_client: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* Milliseconds left before the deadline; gives up when there are none. */
static int remaining_ms(void)
{
    int64_t left = g_deadline - now_ms();

    if (left <= 0)
        fail("giving up: %d s time limit reached", TOTAL_TIMEOUT_MS / 1000);
    return (int)left;
}

static unsigned rnd(unsigned n)     /* xorshift64*, uniform enough */
{
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return (unsigned)((g_rng * 2685821657736338717u) >> 32) % n;
}

static void peer_connect(struct peer *p)
{
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons((uint16_t)g_port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct pollfd pfd = { .events = POLLOUT };
    int err = 0, one = 1;
    socklen_t len = sizeof err;

    pfd.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (pfd.fd < 0)
        fail("socket: %s", strerror(errno));
    setsockopt(pfd.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(pfd.fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        if (errno != EINPROGRESS)
            err = errno;
        else if (poll(&pfd, 1, remaining_ms()) != 1)
            err = ETIMEDOUT;
        else
            getsockopt(pfd.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    }
    if (err)
        fail("cannot reach the server at 127.0.0.1:%u: %s", g_port, strerror(err));
    p->fd = pfd.fd;
    p->in_len = 0;
    p->have_reply = false;
}

static void hang_up(struct peer *p)
{
    close(p->fd);
    p->fd = -1;
    p->in_len = 0;
}

/* Take in what p's socket has: count MSG lines, keep the reply line. */
static void peer_read(struct peer *p)
{
    ssize_t n = recv(p->fd, p->in + p->in_len, sizeof p->in - p->in_len, 0);
    char *start = p->in, *nl;

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {               /* the server closed the connection */
        hang_up(p);
        return;
    }
    p->in_len += (size_t)n;
    while ((nl = memchr(start, '\n', p->in_len - (size_t)(start - p->in)))) {
        *nl = '\0';
        if (strncmp(start, "MSG ", 4) == 0) {
            g_st.received++;
        } else if (p->have_reply) {
            fail("%s: unexpected line from the server: %s", p->nick, start);
        } else {
            snprintf(p->reply, sizeof p->reply, "%.*s", (int)sizeof p->reply - 1, start);
            p->have_reply = true;
        }
        start = nl + 1;
    }
    p->in_len -= (size_t)(start - p->in);
    memmove(p->in, start, p->in_len);
    if (p->in_len == sizeof p->in)
        fail("%s: overlong line from the server", p->nick);
}

/* Wait up to timeout_ms for input on any connection and take it in. */
static void pump(int timeout_ms)
{
    struct pollfd pfds[MAX_USERS];
    int who[MAX_USERS], n = 0;

    for (int i = 0; i < g_npeers; i++)
        if (g_peers[i].fd >= 0) {
            pfds[n] = (struct pollfd){ .fd = g_peers[i].fd, .events = POLLIN };
            who[n++] = i;
        }
    if (poll(pfds, (nfds_t)n, timeout_ms) <= 0)
        return;
    for (int k = 0; k < n; k++)
        if (pfds[k].revents)
            peer_read(&g_peers[who[k]]);
}

/* Keep taking in input for ms milliseconds. */
static void settle(int ms)
{
    int64_t until = now_ms() + ms;

    while (now_ms() < until && remaining_ms() > 0)
        pump((int)(until - now_ms()));
}

/* Send one command line and wait for its reply (OK... or ERR...). */
static const char *command(struct peer *p, const char *fmt, ...)
{
    char line[1100];
    va_list ap;
    size_t off = 0;

    va_start(ap, fmt);
    int len = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (len < 0 || len >= (int)sizeof line - 1)
        fail("%s: command too long", p->nick);
    line[len++] = '\n';
    if (p->fd < 0)
        fail("%s: the server closed the connection", p->nick);
    p->have_reply = false;
    while (off < (size_t)len) {         /* short writes are possible */
        ssize_t n = send(p->fd, line + off, (size_t)len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
        } else if (errno == EAGAIN || errno == EINTR) {
            struct pollfd pfd = { .fd = p->fd, .events = POLLOUT };
            poll(&pfd, 1, remaining_ms());
        } else {
            fail("%s: send: %s", p->nick, strerror(errno));
        }
    }
    while (!p->have_reply) {
        if (p->fd < 0)
            fail("%s: the server closed the connection", p->nick);
        pump(remaining_ms());
    }
    return p->reply;
}

static void expect_ok(const struct peer *p, const char *reply, const char *what)
{
    if (strncmp(reply, "OK", 2) != 0)
        fail("%s: %s failed: %s", p->nick, what, reply);
}

/* Book-keeping for a SEND or PUB reply. */
static void count_routed(const struct peer *p, const char *reply)
{
    unsigned delivered, queued;

    if (sscanf(reply, "OK delivered=%u queued=%u", &delivered, &queued) != 2)
        fail("%s: SEND/PUB failed: %s", p->nick, reply);
    g_st.sent++;
    g_st.delivered += delivered;
    g_st.queued += queued;
}

static void do_poll(struct peer *p)
{
    unsigned n;
    const char *reply = command(p, "POLL");

    if (sscanf(reply, "OK %u", &n) != 1)
        fail("%s: POLL failed: %s", p->nick, reply);
    g_st.polled += n;
}

/* Connect and CONNECT; on a reconnect the pubid must not change. */
static void login(struct peer *p)
{
    char pubid[40];
    const char *reply;

    peer_connect(p);
    reply = command(p, "CONNECT %s", p->nick);
    if (sscanf(reply, "OK %39s", pubid) != 1 || strlen(pubid) != 32)
        fail("%s: CONNECT failed: %s", p->nick, reply);
    if (p->pubid[0] && strcmp(p->pubid, pubid) != 0)
        fail("%s: pubid changed on reconnect", p->nick);
    strcpy(p->pubid, pubid);
}

static void quit(struct peer *p)
{
    expect_ok(p, command(p, "QUIT"), "QUIT");
    if (p->fd >= 0)
        hang_up(p);
}

/* Leave for good without polling: alternately QUIT or just hang up. */
static void leave(struct peer *p)
{
    if (g_st.left++ % 2 == 0) {
        quit(p);
    } else {
        hang_up(p);
        settle(20);             /* give the server time to notice */
    }
    p->gone = true;
}

/* Come back with the same nick: alternately QUIT, get a message while
 * away and POLL it after the reconnect, or just hang up and reconnect. */
static void reconnect(struct peer *p, struct peer *friend)
{
    if (g_st.reconnects++ % 2 == 0) {
        quit(p);
        count_routed(friend, command(friend, "SEND %s are you back, %s?",
                                     p->pubid, p->nick));
        login(p);
        do_poll(p);
    } else {
        hang_up(p);
        login(p);
    }
}

static long arg(int argc, char **argv, int i, long def, long min, long max)
{
    char *end;
    long v = i < argc ? strtol(argv[i], &end, 10) : def;

    if (i < argc && (end == argv[i] || *end || v < min || v > max))
        fail(USAGE);
    return v;
}

int main(int argc, char **argv)
{
    static const char *const channels[] = { "#dev", "#ops", "#misc" };
    int users, rounds;

    if (argc < 2 || argc > 4)
        fail(USAGE);
    g_port = (unsigned)arg(argc, argv, 1, 0, 1, 65535);
    users = (int)arg(argc, argv, 2, 20, 1, MAX_USERS);
    rounds = (int)arg(argc, argv, 3, 50, 0, 100000);
    g_deadline = now_ms() + TOTAL_TIMEOUT_MS;
    g_peers = calloc((size_t)users, sizeof *g_peers);
    if (!g_peers)
        fail("out of memory");
    g_npeers = users;

    for (int i = 0; i < users; i++) {
        struct peer *p = &g_peers[i];
        p->fd = -1;
        snprintf(p->nick, sizeof p->nick, "user%02d", i);
        login(p);
        expect_ok(p, command(p, "JOIN #lobby"), "JOIN");
        expect_ok(p, command(p, "JOIN %s", channels[i % 3]), "JOIN");
    }

    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < users; i++) {
            struct peer *p = &g_peers[i];
            unsigned what;

            if (p->gone)
                continue;
            what = rnd(10);
            if (i % 5 == 4 && r == rounds / 2) {
                leave(p);
            } else if (i % 5 == 3 && r % 10 == 9) {
                reconnect(p, &g_peers[0]);  /* user00 never leaves */
            } else if (what < 4 && users > 1) {
                int to = (int)rnd((unsigned)users - 1);
                to += to >= i;              /* anybody else, even if gone */
                count_routed(p, command(p, "SEND %s hello %s, round %d from %s",
                                        g_peers[to].pubid, g_peers[to].nick,
                                        r, p->nick));
            } else if (what < 6) {
                count_routed(p, command(p, "PUB %s round %d news from %s",
                                        what == 4 ? "#lobby" : channels[i % 3],
                                        r, p->nick));
            } else {
                do_poll(p);
            }
        }
    }

    /* Everyone still here polls once more; then wait until the server's
     * pipe timeouts have dropped what is queued for the users who left. */
    for (int i = 0; i < users; i++)
        if (!g_peers[i].gone)
            do_poll(&g_peers[i]);
    settle(SETTLE_MS);
    if (strcmp(command(&g_peers[0], "SHUTDOWN"), "OK shutdown") != 0)
        fail("SHUTDOWN failed: %s", g_peers[0].reply);
    for (int i = 0; i < users; i++)
        if (g_peers[i].fd >= 0)
            hang_up(&g_peers[i]);

    printf("push_client: %d users, %d rounds, %lu reconnects, %lu left: "
           "%lu SEND/PUB -> %lu messages (%lu pushed, %lu queued, %lu polled "
           "back), %lu received; the server should have expired %lu "
           "messages and retired %lu sessions\n",
           users, rounds, g_st.reconnects, g_st.left, g_st.sent,
           g_st.delivered + g_st.queued, g_st.delivered, g_st.queued,
           g_st.polled, g_st.received, g_st.queued - g_st.polled,
           g_st.reconnects);
    free(g_peers);
    return 0;
}
