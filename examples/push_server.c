/*
 * push_server.c - a small APE-style push server, the memsleuth demo target.
 *
 * Build:
 *   gcc -std=c17 -D_GNU_SOURCE -O1 -g -Wall -Wextra -o push_server push_server.c
 * Usage:
 *   push_server PORT   (0 = any free port; prints "listening on PORT")
 *
 * One process, one poll() loop, 127.0.0.1 only, one command per line:
 *   CONNECT <nick>       -> OK <pubid>    (a known nick: same user, new session)
 *   JOIN <channel>       -> OK <members>  (channels are created on demand)
 *   SEND <pubid> <text>  -> OK delivered=D queued=Q
 *   PUB <channel> <text> -> OK delivered=D queued=Q    (to the other members)
 *   POLL                 -> the pending MSG lines, then OK <count>
 *   QUIT                 -> OK bye, and the connection closes
 *   SHUTDOWN             -> OK shutdown; free everything, return 0 from main
 *   anything else        -> ERR <reason>
 * Messages arrive as "MSG <from-nick> <text>".  Each user owns a pipe, a
 * queue of pending messages, emptied into its connection at once while it
 * is online.  Offline users (after QUIT or a hang-up) keep their messages
 * until they reconnect with the same nick and POLL, or until the pipe
 * timeout handler drops them after PIPE_TIMEOUT_MS.  SIGINT and SIGTERM
 * act like SHUTDOWN.
 *
 * Two deliberate bugs for memsleuth, marked PLANTED LEAK where allocated:
 *   #1 definitely lost: the pipe timeout handler unlinks expired messages
 *      without freeing them (pipe_expire);
 *   #2 still reachable, growing: each reconnect retires the old session to
 *      history lists that nothing frees, not even SHUTDOWN (cmd_connect).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS       256         /* simultaneous connections */
#define MAX_LINE        1024        /* longest command line, '\n' included */
#define MAX_NAME        32          /* longest nick or channel name */
#define MAX_BACKLOG     (1 << 20)   /* unsent output before we drop a client */
#define PIPE_TIMEOUT_MS 300         /* max wait of an unpolled message */
#define HT_BUCKETS      256
#define PUBID_LEN       32          /* hex digits */
#define SID_LEN         16

/* ---- helpers ------------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Running out of memory is not worth recovering from in a demo. */
static void *check(void *p)
{
    if (!p) {
        fputs("push_server: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

/* n random hex digits and a NUL into out (n <= 64). */
static void random_hex(char *out, size_t n)
{
    unsigned char raw[32];
    if (getrandom(raw, (n + 1) / 2, 0) != (ssize_t)(n + 1) / 2)
        for (size_t i = 0; i < (n + 1) / 2; i++)
            raw[i] = (unsigned char)random();
    for (size_t i = 0; i < n; i++)
        out[i] = "0123456789abcdef"[(raw[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    out[n] = '\0';
}

/* Cut the next space-separated word off *p. */
static char *next_word(char **p)
{
    char *word = *p + strspn(*p, " ");
    char *end = word + strcspn(word, " ");
    if (*end)
        *end++ = '\0';
    *p = end + strspn(end, " ");
    return word;
}

/* Nicks and channel names: 1 to MAX_NAME of [A-Za-z0-9_#-]. */
static bool valid_name(const char *s)
{
    size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "0123456789_#-");
    return n > 0 && n <= MAX_NAME && s[n] == '\0';
}

/* ---- a string-keyed hash table and a pointer vector --------------------- */

struct ht_node {
    const char *key;            /* belongs to the value */
    void *val;
    struct ht_node *next;
};

struct ht {
    struct ht_node *bucket[HT_BUCKETS];
    size_t count;
};

static struct ht_node **ht_slot(struct ht *t, const char *key)
{
    unsigned h = 2166136261u;   /* FNV-1a */
    for (const char *s = key; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return &t->bucket[h % HT_BUCKETS];
}

static void *ht_get(struct ht *t, const char *key)
{
    for (struct ht_node *n = *ht_slot(t, key); n; n = n->next)
        if (strcmp(n->key, key) == 0)
            return n->val;
    return NULL;
}

static void ht_put(struct ht *t, const char *key, void *val)
{
    struct ht_node **slot = ht_slot(t, key), *n = check(malloc(sizeof *n));
    *n = (struct ht_node){ key, val, *slot };
    *slot = n;
    t->count++;
}

/* Empty the table, handing every value to free_val. */
static void ht_clear(struct ht *t, void (*free_val)(void *))
{
    for (size_t i = 0; i < HT_BUCKETS; i++)
        for (struct ht_node *n; (n = t->bucket[i]); free(n)) {
            t->bucket[i] = n->next;
            free_val(n->val);
        }
    t->count = 0;
}

struct ptrvec {
    void **v;
    size_t n, cap;
};

static void vec_push(struct ptrvec *pv, void *p)
{
    if (pv->n == pv->cap) {
        pv->cap = pv->cap ? 2 * pv->cap : 4;
        pv->v = check(realloc(pv->v, pv->cap * sizeof *pv->v));
    }
    pv->v[pv->n++] = p;
}

static bool vec_has(const struct ptrvec *pv, const void *p)
{
    for (size_t i = 0; i < pv->n; i++)
        if (pv->v[i] == p)
            return true;
    return false;
}

/* ---- the server's objects ----------------------------------------------- */

struct msgbuf {                 /* one pending line for one recipient */
    struct msgbuf *next;
    int64_t queued_at;          /* now_ms() */
    size_t len;
    char data[];                /* "MSG <from> <text>\n" */
};

struct pipe {                   /* a user's queue of pending messages */
    struct msgbuf *head, *tail;
};

struct session {                /* what one CONNECT established */
    char sid[SID_LEN + 1];
    int64_t started_at;
    unsigned long commands;     /* commands run in this session */
    struct session *prev_same_nick;     /* its nick's history, newest first */
    struct session *next_in_history;    /* g_session_history, newest first */
};

struct user {
    char *nick;
    char pubid[PUBID_LEN + 1];
    struct pipe *pipe;
    struct ptrvec channels;     /* struct channel *: the channels joined */
    struct session *session;    /* the current session */
    struct conn *conn;          /* NULL while offline */
};

struct nick_entry {             /* a value in the nickname table */
    struct user *user;
    struct session *history;    /* sessions retired by reconnects */
};

struct channel {
    char *name;
    struct ptrvec members;      /* struct user * */
};

struct conn {
    int fd;
    bool closing;               /* close once the output is sent */
    bool dead;                  /* closed; freed at the end of the loop turn */
    struct user *user;          /* NULL until CONNECT */
    size_t in_len;
    char in[MAX_LINE];          /* an incomplete input line */
    char *out;                  /* unsent output: out[out_off..out_len) */
    size_t out_off, out_len, out_cap;
};

static struct ht g_users;       /* pubid -> struct user */
static struct ht g_nicks;       /* nick -> struct nick_entry: nickname table */
static struct ht g_channels;    /* name -> struct channel */
static struct conn *g_conns[MAX_CONNS];
static size_t g_nconns;
static struct session *g_session_history;   /* all retired sessions */
static volatile sig_atomic_t g_stop;
static unsigned long g_routed, g_expired, g_accepted;

/* ---- connections -------------------------------------------------------- */

/* Drop the connection; its user, if any, stays on, offline. */
static void conn_kill(struct conn *c)
{
    if (c->user && c->user->conn == c)
        c->user->conn = NULL;
    c->user = NULL;
    c->dead = true;
}

/* Send as much pending output as the socket takes without blocking. */
static void conn_flush(struct conn *c)
{
    while (!c->dead && c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL);
        if (n >= 0)
            c->out_off += (size_t)n;
        else if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;             /* poll() tells us when to go on */
        else if (errno != EINTR)
            conn_kill(c);       /* the peer is gone */
    }
    c->out_off = c->out_len = 0;
    if (c->closing)
        conn_kill(c);
}

static void conn_close_soon(struct conn *c)
{
    c->closing = true;
    conn_flush(c);
}

static void conn_write(struct conn *c, const char *data, size_t len)
{
    size_t pending = c->out_len - c->out_off;
    if (c->dead)
        return;
    if (pending + len > MAX_BACKLOG) {      /* it does not read: drop it */
        conn_kill(c);
        return;
    }
    if (c->out_off) {           /* move the unsent rest to the front */
        memmove(c->out, c->out + c->out_off, pending);
        c->out_off = 0;
        c->out_len = pending;
    }
    if (pending + len > c->out_cap) {
        c->out_cap = pending + len > 2 * c->out_cap ? pending + len : 2 * c->out_cap;
        c->out = check(realloc(c->out, c->out_cap));
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    conn_flush(c);
}

static void conn_printf(struct conn *c, const char *fmt, ...)
{
    char buf[MAX_LINE + 64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        conn_write(c, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* ---- pipes -------------------------------------------------------------- */

static struct msgbuf *msg_new(const char *from, const char *text)
{
    size_t len = strlen(from) + strlen(text) + 6;   /* "MSG " ' ' '\n' */
    struct msgbuf *m = check(malloc(sizeof *m + len + 1)); /* PLANTED LEAK: #1 definitely lost, dropped by pipe_expire() */
    m->next = NULL;
    m->queued_at = now_ms();
    m->len = (size_t)snprintf(m->data, len + 1, "MSG %s %s\n", from, text);
    return m;
}

/* Unlink and return the oldest message, or NULL if there is none. */
static struct msgbuf *pipe_pop(struct pipe *p)
{
    struct msgbuf *m = p->head;
    if (m) {
        p->head = m->next;
        if (!p->head)
            p->tail = NULL;
        m->next = NULL;
    }
    return m;
}

/* Move u's pending messages to its connection; returns how many. */
static size_t pipe_flush(struct user *u)
{
    size_t n = 0;
    for (struct msgbuf *m; u->conn && (m = pipe_pop(u->pipe)); n++) {
        conn_write(u->conn, m->data, m->len);
        free(m);
    }
    return n;
}

/* The pipe timeout handler: drop messages that waited PIPE_TIMEOUT_MS.
 * Returns the milliseconds until the next one is due, or -1. */
static int pipe_expire(struct pipe *p, int64_t now)
{
    while (p->head && now - p->head->queued_at >= PIPE_TIMEOUT_MS) {
        pipe_pop(p);    /* BUG, planted leak #1: the buffer is never freed */
        g_expired++;
    }
    return p->head ? (int)(p->head->queued_at + PIPE_TIMEOUT_MS - now) : -1;
}

/* Queue a message on u's pipe, and push it out at once if u is online. */
static void deliver(struct user *u, const char *from, const char *text,
                    unsigned *delivered, unsigned *queued)
{
    struct msgbuf *m = msg_new(from, text);
    if (u->pipe->tail)
        u->pipe->tail->next = m;
    else
        u->pipe->head = m;
    u->pipe->tail = m;
    g_routed++;
    if (u->conn) {
        pipe_flush(u);
        (*delivered)++;
    } else {
        (*queued)++;
    }
}

/* ---- users, sessions, channels ------------------------------------------ */

static struct session *session_new(void)
{
    struct session *s = check(calloc(1, sizeof *s)); /* PLANTED LEAK: #2 still reachable, retired by cmd_connect(), never freed */
    random_hex(s->sid, SID_LEN);
    s->started_at = now_ms();
    return s;
}

static struct user *user_new(const char *nick)
{
    struct user *u = check(calloc(1, sizeof *u));
    u->nick = check(strdup(nick));
    do
        random_hex(u->pubid, PUBID_LEN);
    while (ht_get(&g_users, u->pubid));
    u->pipe = check(calloc(1, sizeof *u->pipe));
    u->session = session_new();
    ht_put(&g_users, u->pubid, u);
    return u;
}

static void user_free(void *p)
{
    struct user *u = p;
    for (struct msgbuf *m; (m = pipe_pop(u->pipe)); )
        free(m);
    free(u->pipe);
    free(u->channels.v);
    free(u->session);
    free(u->nick);
    free(u);
}

static void channel_free(void *p)
{
    struct channel *ch = p;
    free(ch->members.v);
    free(ch->name);
    free(ch);
}

/* ---- commands ----------------------------------------------------------- */

static void cmd_connect(struct conn *c, char *nick, char *text)
{
    struct nick_entry *e = ht_get(&g_nicks, nick);
    (void)text;
    if (c->user) {
        conn_printf(c, "ERR already connected as %s\n", c->user->nick);
        return;
    }
    if (!e) {
        e = check(calloc(1, sizeof *e));
        e->user = user_new(nick);
        ht_put(&g_nicks, e->user->nick, e);
    } else {
        /* A reconnect: the same user (pubid, channels, pending messages)
         * in a new session.  The old session goes on the nick's history
         * and on the global one, and there it stays: planted leak #2. */
        struct user *u = e->user;
        if (u->conn) {          /* still attached elsewhere: take it over */
            struct conn *old = u->conn;
            old->user = NULL;
            conn_printf(old, "ERR session taken over\n");
            conn_close_soon(old);
        }
        u->session->prev_same_nick = e->history;
        e->history = u->session;
        u->session->next_in_history = g_session_history;
        g_session_history = u->session;
        u->session = session_new();
    }
    c->user = e->user;
    c->user->conn = c;
    conn_printf(c, "OK %s\n", c->user->pubid);
}

static void cmd_join(struct conn *c, char *name, char *text)
{
    struct channel *ch = ht_get(&g_channels, name);
    (void)text;
    if (!ch) {
        ch = check(calloc(1, sizeof *ch));
        ch->name = check(strdup(name));
        ht_put(&g_channels, ch->name, ch);
    }
    if (!vec_has(&ch->members, c->user)) {
        vec_push(&ch->members, c->user);
        vec_push(&c->user->channels, ch);
    }
    conn_printf(c, "OK %zu\n", ch->members.n);
}

static void cmd_send(struct conn *c, char *pubid, char *text)
{
    struct user *to = ht_get(&g_users, pubid);
    unsigned delivered = 0, queued = 0;
    if (!to) {
        conn_printf(c, "ERR no such user\n");
        return;
    }
    deliver(to, c->user->nick, text, &delivered, &queued);
    conn_printf(c, "OK delivered=%u queued=%u\n", delivered, queued);
}

static void cmd_pub(struct conn *c, char *name, char *text)
{
    struct channel *ch = ht_get(&g_channels, name);
    unsigned delivered = 0, queued = 0;
    if (!ch || !vec_has(&c->user->channels, ch)) {
        conn_printf(c, "ERR not a member of %s\n", name);
        return;
    }
    for (size_t i = 0; i < ch->members.n; i++)
        if (ch->members.v[i] != c->user)
            deliver(ch->members.v[i], c->user->nick, text, &delivered, &queued);
    conn_printf(c, "OK delivered=%u queued=%u\n", delivered, queued);
}

static void cmd_poll(struct conn *c, char *arg, char *text)
{
    (void)arg, (void)text;
    size_t n = pipe_flush(c->user);
    conn_printf(c, "OK %zu\n", n);
}

static void cmd_quit(struct conn *c, char *arg, char *text)
{
    (void)arg, (void)text;
    conn_printf(c, "OK bye\n");
    if (c->user)
        c->user->conn = NULL;   /* offline from now on */
    c->user = NULL;
    conn_close_soon(c);
}

static void cmd_shutdown(struct conn *c, char *arg, char *text)
{
    (void)arg, (void)text;
    conn_printf(c, "OK shutdown\n");
    g_stop = 1;
}

static const struct command {
    const char *usage;
    enum { NO_ARGS, NAME, WORD_TEXT } args;
    bool needs_user;            /* only after CONNECT */
    void (*run)(struct conn *c, char *arg, char *text);
} commands[] = {
    { "CONNECT <nick>", NAME, false, cmd_connect },
    { "JOIN <channel>", NAME, true, cmd_join },
    { "SEND <pubid> <text>", WORD_TEXT, true, cmd_send },
    { "PUB <channel> <text>", WORD_TEXT, true, cmd_pub },
    { "POLL", NO_ARGS, true, cmd_poll },
    { "QUIT", NO_ARGS, false, cmd_quit },
    { "SHUTDOWN", NO_ARGS, false, cmd_shutdown },
};

/* Parse and check one command line, then run it.  A command's name is the
 * first word of its usage string. */
static void handle_line(struct conn *c, char *line)
{
    char *name = next_word(&line), *arg = next_word(&line), *text = line;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const struct command *cmd = &commands[i];
        size_t len = strcspn(cmd->usage, " ");
        if (strncmp(name, cmd->usage, len) != 0 || name[len] != '\0')
            continue;
        if (cmd->args == NO_ARGS ? *arg != '\0'
            : cmd->args == NAME ? !valid_name(arg) || *text != '\0'
            : *arg == '\0' || *text == '\0')
            conn_printf(c, "ERR usage: %s\n", cmd->usage);
        else if (cmd->needs_user && !c->user)
            conn_printf(c, "ERR not connected (CONNECT first)\n");
        else {
            if (c->user)
                c->user->session->commands++;
            cmd->run(c, arg, text);
        }
        return;
    }
    conn_printf(c, "ERR unknown command\n");
}

/* Read what the socket holds and run every complete line in it. */
static void conn_read(struct conn *c)
{
    while (!c->dead && !c->closing) {
        ssize_t n = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
        char *start = c->in, *nl;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;             /* all read */
        if (n <= 0) {
            conn_kill(c);       /* hang-up or reset: the user goes offline */
            return;
        }
        c->in_len += (size_t)n;
        while (!c->dead && !c->closing &&
               (nl = memchr(start, '\n', c->in_len - (size_t)(start - c->in)))) {
            *nl = '\0';
            if (nl > start && nl[-1] == '\r')
                nl[-1] = '\0';
            handle_line(c, start);
            start = nl + 1;
        }
        c->in_len -= (size_t)(start - c->in);
        memmove(c->in, start, c->in_len);
        if (c->in_len == sizeof c->in) {
            conn_printf(c, "ERR line too long\n");
            conn_close_soon(c);
        }
    }
}

/* ---- the event loop ----------------------------------------------------- */

/* Run every pipe's timeout handler; returns the timeout for poll(). */
static int expire_pipes(void)
{
    int64_t now = now_ms();
    int next = -1;
    for (size_t i = 0; i < HT_BUCKETS; i++)
        for (struct ht_node *n = g_users.bucket[i]; n; n = n->next) {
            int t = pipe_expire(((struct user *)n->val)->pipe, now);
            if (t >= 0 && (next < 0 || t < next))
                next = t;
        }
    return next;
}

static void accept_clients(int lfd)
{
    int fd, one = 1;
    while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        if (g_nconns == MAX_CONNS) {
            send(fd, "ERR server full\n", 16, MSG_NOSIGNAL);
            close(fd);
            continue;
        }
        /* Replies are small and must not wait for Nagle. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        g_conns[g_nconns] = check(calloc(1, sizeof **g_conns));
        g_conns[g_nconns++]->fd = fd;
        g_accepted++;
    }
}

/* Free the connections marked dead; keep the others in order. */
static void sweep_conns(void)
{
    size_t kept = 0;
    for (size_t i = 0; i < g_nconns; i++) {
        struct conn *c = g_conns[i];
        if (!c->dead) {
            g_conns[kept++] = c;
            continue;
        }
        close(c->fd);
        free(c->out);
        free(c);
    }
    g_nconns = kept;
}

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

int main(int argc, char **argv)
{
    static struct pollfd pfds[MAX_CONNS + 1];
    struct sigaction sa = { .sa_handler = on_signal };  /* no SA_RESTART */
    char *end = NULL, banner[32];
    long port = argc == 2 ? strtol(argv[1], &end, 10) : -1;
    struct sockaddr_in addr = { .sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    int one = 1, lfd, n;

    if (argc != 2 || end == argv[1] || *end || port < 0 || port > 65535) {
        fprintf(stderr, "usage: %s PORT   (0 = any free port)\n", argv[0]);
        return 2;
    }
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(lfd, (struct sockaddr *)&addr, sizeof addr) || listen(lfd, 64) ||
        getsockname(lfd, (struct sockaddr *)&addr, &len)) {
        perror("push_server: listen");
        return 1;
    }
    /* write(2), not stdio: nothing to flush, no stdio buffer in leak reports */
    n = snprintf(banner, sizeof banner, "listening on %u\n", ntohs(addr.sin_port));
    if (write(STDOUT_FILENO, banner, (size_t)n) != n)
        perror("push_server: stdout");

    while (!g_stop) {
        int timeout = expire_pipes();
        nfds_t nfds = g_nconns + 1;
        pfds[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
        for (size_t i = 0; i < g_nconns; i++)
            pfds[i + 1] = (struct pollfd){
                .fd = g_conns[i]->fd,
                .events = (short)((g_conns[i]->closing ? 0 : POLLIN) |
                    (g_conns[i]->out_len > g_conns[i]->out_off ? POLLOUT : 0)) };
        if (poll(pfds, nfds, timeout) < 0) {
            if (errno == EINTR)
                continue;
            perror("push_server: poll");
            break;
        }
        /* g_conns only shrinks in sweep_conns() and grows in accept_clients(),
         * so it matches pfds[1..] throughout this loop. */
        for (size_t i = 0; i + 1 < nfds; i++) {
            short ev = pfds[i + 1].revents;
            if (ev & (POLLOUT | POLLERR | POLLHUP))
                conn_flush(g_conns[i]);
            if (ev & (POLLIN | POLLERR | POLLHUP))
                conn_read(g_conns[i]);
        }
        sweep_conns();
        if (pfds[0].revents & POLLIN)
            accept_clients(lfd);
    }

    /* Shutdown: last words to every client, then free all we own. */
    for (size_t i = 0; i < g_nconns; i++) {
        conn_flush(g_conns[i]);
        g_conns[i]->dead = true;
    }
    sweep_conns();
    close(lfd);
    unsigned long retired = 0;
    for (struct session *s = g_session_history; s; s = s->next_in_history)
        retired++;
    fprintf(stderr, "push_server: shutdown: %zu users, %zu channels, %lu "
            "connections, %lu messages routed, %lu expired, %lu sessions "
            "retired\n", g_users.count, g_channels.count, g_accepted,
            g_routed, g_expired, retired);
    /* The nickname table goes, and with it each nick's history list, but
     * the retired sessions stay on g_session_history: planted leak #2. */
    ht_clear(&g_nicks, free);
    ht_clear(&g_channels, channel_free);
    ht_clear(&g_users, user_free);
    return 0;
}
