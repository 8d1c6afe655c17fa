/*
 * pool_agent.h - the hand-off between libmemsleuth_pool and the memsleuth
 * agent (libmemsleuth_agent.so), so that a program's pool events go into the
 * agent's trace when it runs under `memsleuth run`.
 *
 * The agent exports one data symbol, MS_POOL_AGENT_SYMBOL, a struct
 * ms_pool_agent_hooks.  The pool library looks it up once, with
 * dlsym(RTLD_DEFAULT, MS_POOL_AGENT_SYMBOL), when it is first used (the first
 * root pool, or the first call that reads the settings).  It uses the table
 * only if
 *   - version == MS_POOL_AGENT_VERSION (a major number: a later agent with
 *     an incompatible table uses another number and is ignored), and
 *   - size >= the size of the version-1 table (fields are only appended),
 *   - enabled() returns non-zero (the agent writes a trace).
 * Otherwise nothing changes: no agent, no cost beyond the branch on the
 * "any hook" flag the library tests for its own event hook anyway.
 *
 * event() is called on the thread of the pool call, after the event
 * happened (as the public ms_pool_set_event_hook hook is), with the same
 * arguments as struct ms_pool_event, plus one kind the public hook does not
 * see: MS_POOL_AGENT_EV_NAME (ms_pool_set_name: pool, ptr = the name or
 * NULL).  Pointers are passed as const void *: the agent never dereferences
 * a pool or a block, it only reads the file and name strings.  The agent
 * must not call the pool library from event().
 *
 * Both sides include this file; it needs nothing but <stddef.h> and
 * <stdint.h>.
 */
#ifndef MS_POOL_AGENT_H
#define MS_POOL_AGENT_H

#include <stddef.h>
#include <stdint.h>

#define MS_POOL_AGENT_SYMBOL  "memsleuth_agent_pool_hooks"
#define MS_POOL_AGENT_VERSION 2u

/* the event kinds are those of memsleuth/pool.h (MS_POOL_EV_CREATE 1 ...
 * MS_POOL_EV_RELEASE 8), plus: */
#define MS_POOL_AGENT_EV_NAME 9 /* ms_pool_set_name: pool, ptr = name (NULL: cleared) */
/* The library's own heap memory (chunks, large blocks, destructor and
 * claim records, free-list arrays: every malloc/realloc/free it makes for
 * itself), so that the agent's exit report can tell it from the program's
 * and give its verdicts in pool terms instead: */
#define MS_POOL_AGENT_EV_RAW      10 /* ptr = a block the library got from malloc, size = its size */
#define MS_POOL_AGENT_EV_RAW_FREE 11 /* ptr = such a block, given back to free (or realloc'd away) */

/* old_size: for MS_POOL_EV_REALLOC the block's size before (0 for the
 * other kinds).  Version 2 added it (version 1 had no old_size). */
typedef void (*ms_pool_agent_event_fn)(int kind, const void *pool, const void *other, const void *old_owner,
                                       const void *ptr, const void *old_ptr, size_t size, const char *file,
                                       int line, size_t old_size);

struct ms_pool_agent_hooks {
    uint32_t version;            /* MS_POOL_AGENT_VERSION */
    uint32_t size;               /* sizeof(struct ms_pool_agent_hooks) of the agent */
    int (*enabled)(void);        /* non-zero: the agent wants the events */
    ms_pool_agent_event_fn event;
};

#endif /* MS_POOL_AGENT_H */
