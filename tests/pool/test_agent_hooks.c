/* test_agent_hooks.c - the hand-off between libmemsleuth_pool and the
 * memsleuth agent (src/common/pool_agent.h): this program plays the agent by
 * exporting memsleuth_agent_pool_hooks itself (linked with -rdynamic), so
 * that the library finds it with dlsym at its first use.
 *
 *   test_agent_hooks on          the table is used: every event arrives, in
 *                                order, with its pool, pointers, size, file:line
 *   test_agent_hooks off         enabled() says no: no event
 *   test_agent_hooks badversion  another version: ignored
 *   test_agent_hooks noenv       MEMSLEUTH_POOL_NO_AGENT=1: ignored
 * In every mode the public event hook still works, alongside.
 * Prints TAP lines and "N passed, M failed". */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <memsleuth/pool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/common/pool_agent.h"

struct ev {
    int kind;
    const void *pool, *other, *old_owner, *ptr, *old_ptr;
    size_t size;
    const char *file;
    int line;
    size_t old_size;
};
static struct ev evs[256];
/* the library's own heap memory (MS_POOL_AGENT_EV_RAW / _RAW_FREE) */
#define NRAW 64
static const void *raw_ptr[NRAW];
static size_t raw_size[NRAW];
static int nraw_ev, nraw_free_ev, raw_unknown_free;
static int nev, enabled_calls, want_enabled = 1, user_events;

static int agent_enabled(void)
{
    enabled_calls++;
    return want_enabled;
}

static void agent_event(int kind, const void *pool, const void *other, const void *old_owner, const void *ptr,
                        const void *old_ptr, size_t size, const char *file, int line, size_t old_size)
{
    if (kind == MS_POOL_AGENT_EV_RAW) {
        nraw_ev++;
        for (int i = 0; i < NRAW; i++)
            if (!raw_ptr[i]) {
                raw_ptr[i] = ptr;
                raw_size[i] = size;
                break;
            }
        return;
    }
    if (kind == MS_POOL_AGENT_EV_RAW_FREE) {
        nraw_free_ev++;
        int i;
        for (i = 0; i < NRAW; i++)
            if (raw_ptr[i] == ptr && raw_size[i] == size) {
                raw_ptr[i] = NULL;
                break;
            }
        raw_unknown_free += i == NRAW;
        return;
    }
    if (nev < 256)
        evs[nev++] = (struct ev){ kind, pool, other, old_owner, ptr, old_ptr, size, file, line, old_size };
}

/* p lies in a block reported as the library's own */
static int raw_covers(const void *p)
{
    for (int i = 0; i < NRAW; i++)
        if (raw_ptr[i] && (const char *)p >= (const char *)raw_ptr[i] &&
            (const char *)p < (const char *)raw_ptr[i] + raw_size[i])
            return 1;
    return 0;
}

static int raw_live(void)
{
    int k = 0;
    for (int i = 0; i < NRAW; i++)
        k += raw_ptr[i] != NULL;
    return k;
}

__attribute__((visibility("default"))) struct ms_pool_agent_hooks memsleuth_agent_pool_hooks = {
    MS_POOL_AGENT_VERSION, sizeof(struct ms_pool_agent_hooks), agent_enabled, agent_event,
};

static void user_hook(const struct ms_pool_event *e, void *arg)
{
    (void)e;
    (void)arg;
    user_events++;
}

static int pass, fail, n;
static void ok(int c, const char *what)
{
    n++;
    if (c)
        pass++;
    else
        fail++;
    printf("%s %d - %s\n", c ? "ok" : "not ok", n, what);
}

static int is(int i, int kind, const void *pool, const void *other, const void *ptr, int line)
{
    if (i >= nev)
        return 0;
    const struct ev *e = &evs[i];
    return e->kind == kind && e->pool == pool && e->other == other && e->ptr == ptr &&
           (line < 0 || (e->line == line && e->file && !strcmp(e->file, __FILE__)));
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "on";
    if (!strcmp(mode, "off"))
        want_enabled = 0;
    else if (!strcmp(mode, "badversion"))
        memsleuth_agent_pool_hooks.version = MS_POOL_AGENT_VERSION + 1;
    else if (!strcmp(mode, "noenv"))
        setenv("MEMSLEUTH_POOL_NO_AGENT", "1", 1);
    int on = !strcmp(mode, "on");

    int l_root = __LINE__ + 1;
    struct ms_pool *root = ms_pool_new_root(0);
    ms_pool_set_name(root, "root");
    int l_child = __LINE__ + 1;
    struct ms_pool *child = ms_pool_new_child(root);
    int l_alloc = __LINE__ + 1;
    char *a = ms_pool_alloc(child, 100);
    int pools_raw = raw_covers(root) && raw_covers(child) && raw_covers(a);
    int l_big = __LINE__ + 1;
    char *big = ms_pool_alloc(child, 5000);
    int l_re = __LINE__ + 1;
    char *a2 = ms_pool_realloc(child, a, 2000);
    int l_steal = __LINE__ + 1;
    int st = ms_pool_steal(root, big);
    int l_adopt = __LINE__ + 1;
    int ad = ms_pool_adopt(root, a2);
    int l_rel = __LINE__ + 1;
    int rl = ms_pool_release(root, a2);
    int l_free = __LINE__ + 1;
    int fr = ms_pool_free(a2);
    int l_destroy = __LINE__ + 1;
    int de = ms_pool_destroy(root);
    ok(root && child && a && big && a2 && !st && !ad && !rl && !fr && !de, "the calls work");

    if (on) {
        ok(enabled_calls == 1, "the table is looked up once and asked once");
        int i = 0;
        ok(is(i++, MS_POOL_EV_CREATE, root, NULL, NULL, l_root), "CREATE of the root, with its file:line");
        ok(i < nev && evs[i].kind == MS_POOL_AGENT_EV_NAME && evs[i].pool == root && evs[i].ptr &&
               !strcmp(evs[i].ptr, "root"),
           "NAME: ms_pool_set_name reaches the agent (the public hook has no such event)");
        i++;
        ok(is(i++, MS_POOL_EV_CREATE, child, root, NULL, l_child), "CREATE of the child, parent = root");
        ok(is(i, MS_POOL_EV_ALLOC, child, NULL, a, l_alloc) && evs[i].size == 100, "ALLOC 100 bytes");
        i++;
        ok(is(i, MS_POOL_EV_ALLOC, child, NULL, big, l_big) && evs[i].size == 5000, "ALLOC of a large block");
        i++;
        ok(is(i, MS_POOL_EV_REALLOC, child, NULL, a2, l_re) && evs[i].old_ptr == a && evs[i].size == 2000 &&
               evs[i].old_size == 100,
           "REALLOC: new pointer, old pointer, new size, and (agent only) the old size");
        i++;
        ok(is(i, MS_POOL_EV_REPARENT, root, root, big, l_steal) && evs[i].old_owner == child,
           "REPARENT: the stolen block, new and old owner");
        i++;
        ok(is(i++, MS_POOL_EV_ADOPT, child, root, a2, l_adopt), "ADOPT");
        ok(is(i++, MS_POOL_EV_RELEASE, child, root, a2, l_rel), "RELEASE");
        ok(is(i, MS_POOL_EV_FREE, child, NULL, a2, l_free) && evs[i].size == 2000, "FREE");
        i++;
        ok(is(i++, MS_POOL_EV_DESTROY, child, root, NULL, l_destroy), "DESTROY of the child first");
        ok(is(i++, MS_POOL_EV_DESTROY, root, NULL, NULL, l_destroy), "then of the root");
        ok(i == nev, "nothing else");
        ok(pools_raw, "RAW: the memory of each pool and its blocks (chunks, in slabs) is reported as the "
                      "library's own");
        ok(nraw_ev >= 4, "RAW: the large block and the records are reported too");
        ms_pool_trim();
        ok(raw_live() == 0 && raw_unknown_free == 0 && nraw_free_ev == nraw_ev,
           "RAW_FREE: after destroy and trim every such block was given back, each reported once with its size");
    } else {
        ok(nev == 0, "no event reaches a table that is not to be used");
        ok(enabled_calls == (!strcmp(mode, "off") ? 1 : 0), "enabled() asked only of a valid table");
        ok(nraw_ev == 0 && nraw_free_ev == 0, "no RAW event either");
    }

    /* the public hook works alongside */
    ms_pool_set_event_hook(user_hook, NULL);
    int before = nev;
    struct ms_pool *r2 = ms_pool_new_root(0);
    ms_pool_alloc(r2, 10);
    ms_pool_destroy(r2);
    ms_pool_set_event_hook(NULL, NULL);
    ok(user_events == 3, "the public event hook gets its events");
    ok(nev - before == (on ? 3 : 0), on ? "and the agent too" : "and the agent still none");
    /* and without the public hook the agent still gets them */
    before = nev;
    struct ms_pool *r3 = ms_pool_new_root(0);
    ms_pool_destroy(r3);
    ok(nev - before == (on ? 2 : 0), "after the public hook is removed, the agent's events go on");
    printf("%d passed, %d failed\n", pass, fail);
    return fail != 0;
}
