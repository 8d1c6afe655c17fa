/* pool_tree.c - libmemsleuth_pool: pools (create, destroy), destructors,
 * ownership (steal, move, adopt, release) and limits. */
#include "pool_internal.h"

#define EMIT(...)                                                                                        \
    do {                                                                                                 \
        if (MS_UNLIKELY(atomic_load_explicit(&ms_g_emit, memory_order_relaxed)))                         \
            ms_emit(__VA_ARGS__);                                                                        \
    } while (0)

/* ------------------------------------------------------ links */
static void reg_add(struct ms_pool *p)
{
    pthread_mutex_lock(&ms_g_reg_lock);
    p->rnext = NULL;
    p->rprev = ms_g_roots_tail;
    if (ms_g_roots_tail)
        ms_g_roots_tail->rnext = p;
    else
        ms_g_roots = p;
    ms_g_roots_tail = p;
    ms_g_nroots++;
    p->flags |= PF_ROOT;
    pthread_mutex_unlock(&ms_g_reg_lock);
}

static void reg_del(struct ms_pool *p)
{
    if (!(p->flags & PF_ROOT))
        return;
    pthread_mutex_lock(&ms_g_reg_lock);
    if (p->rprev)
        p->rprev->rnext = p->rnext;
    else
        ms_g_roots = p->rnext;
    if (p->rnext)
        p->rnext->rprev = p->rprev;
    else
        ms_g_roots_tail = p->rprev;
    ms_g_nroots--;
    p->flags &= ~PF_ROOT;
    p->rprev = p->rnext = NULL;
    pthread_mutex_unlock(&ms_g_reg_lock);
}

static void link_child(struct ms_pool *parent, struct ms_pool *c)
{
    c->parent = parent;
    c->prev = NULL;
    c->next = parent->first_child;
    if (c->next)
        c->next->prev = c;
    parent->first_child = c;
}

/* Unlink c from its parent's children (or pending) list; no-op if detached. */
static void unlink_child(struct ms_pool *c)
{
    struct ms_pool *parent = c->parent;
    if (c->prev)
        c->prev->next = c->next;
    else if (parent && parent->first_child == c)
        parent->first_child = c->next;
    else if (parent && parent->pending == c)
        parent->pending = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* x is p or below p (primary links). */
static int is_desc(const struct ms_pool *x, const struct ms_pool *p)
{
    for (; x; x = x->parent)
        if (x == p)
            return 1;
    return 0;
}

/* In top's subtree, the pools whose nearest limited ancestor was `from`
 * now have `to` (pools with their own limit shield their subtrees). */
static void relim(struct ms_pool *top, struct ms_pool *from, struct ms_pool *to)
{
    struct ms_pool *x = top;
    for (;;) {
        int descend = 0;
        if (x == top || !x->limit) {
            if (x->lim == from)
                set_lim(x, to);
            descend = x->first_child != NULL;
        }
        if (descend) {
            x = x->first_child;
            continue;
        }
        while (x != top && !x->next)
            x = x->parent;
        if (x == top)
            break;
        x = x->next;
    }
}

/* ------------------------------------------------------ limits */
static void limit_hit(struct ms_pool *l, struct ms_pool *p, size_t add, const char *file, int line)
{
    ms_pool_limit_fn fn = l->lhandler;
    void *arg = l->larg;
    if (!fn) {
        fn = atomic_load(&ms_g_lhandler);
        arg = atomic_load(&ms_g_larg);
    }
    if (fn) {
        struct ms_pool_limit_info info = {l, p, l->limit, l->used, add, file, line};
        fn(&info, arg);
    }
}

int ms_limit_ok(struct ms_pool *p, size_t add, const char *file, int line)
{
    for (struct ms_pool *l = p->lim; l; l = lim_next(l)) {
        if (l->used > l->limit || add > l->limit - l->used) {
            limit_hit(l, p, add, file, line);
            return 0;
        }
    }
    return 1;
}

/* Can `add` bytes now counted under `old` move under np?  Limited pools
 * that are ancestors-or-self of old already count them. */
static int limit_ok_move(struct ms_pool *np, struct ms_pool *old, size_t add, const char *file, int line)
{
    for (struct ms_pool *l = np->lim; l; l = lim_next(l)) {
        if (old && is_desc(old, l))
            continue;
        if (l->used > l->limit || add > l->limit - l->used) {
            limit_hit(l, np, add, file, line);
            return 0;
        }
    }
    return 1;
}

void ms_limit_add(struct ms_pool *p, size_t n)
{
    for (struct ms_pool *l = p->lim; l; l = lim_next(l))
        l->used += n;
}

void ms_limit_sub(struct ms_pool *p, size_t n)
{
    for (struct ms_pool *l = p->lim; l; l = lim_next(l))
        l->used -= n;
}

int ms_pool_set_limit(struct ms_pool *p, size_t limit)
{
    if (!pool_ok(p))
        return ms_bad_pool(p, NULL, 0);
    struct ms_pool *outer = p->parent ? p->parent->lim : NULL;
    if (limit) {
        if (!p->limit) {
            p->used = ms_subtree_bytes(p);
            p->limit = limit;
            relim(p, outer, p);
            set_lim(p, p);
        } else {
            p->limit = limit;
        }
    } else if (p->limit) {
        p->limit = 0;
        p->used = 0;
        relim(p, p, outer);
        set_lim(p, outer);
    }
    return 0;
}

void ms_pool_set_limit_handler(struct ms_pool *p, ms_pool_limit_fn fn, void *arg)
{
    if (!p) {
        atomic_store(&ms_g_larg, arg);
        atomic_store(&ms_g_lhandler, fn);
        return;
    }
    if (!pool_ok(p)) {
        ms_bad_pool(p, NULL, 0);
        return;
    }
    p->lhandler = fn;
    p->larg = arg;
}

/* ------------------------------------------------------ create */
static struct ms_pool *pool_new(struct ms_pool *parent, size_t limit, const char *file, int line)
{
    struct chunk *c = ms_chunk_get();
    if (!c)
        return NULL;
    struct ms_pool *p = (struct ms_pool *)c->start;
    memset(p, 0, sizeof *p);
    p->magic = POOL_LIVE;
    c->owner = p;
    c->start = (char *)p + POOL_SZ;
    p->chunk = c;
    p->chunks[0] = c;
    p->nchunks = 1;
    p->cur = c->start;
    p->end = c->end;
    p->file = file;
    p->line = line;
    p->limit = limit;
    if (parent) {
        link_child(parent, p);
        set_lim(p, limit ? p : parent->lim);
    } else {
        set_lim(p, limit ? p : NULL);
        reg_add(p);
    }
    EMIT(MS_POOL_EV_CREATE, p, parent, NULL, NULL, NULL, 0, file, line);
    return p;
}

struct ms_pool *ms_pool_new_root_at(size_t limit, const char *file, int line)
{
    ms_init_once();
    return pool_new(NULL, limit, file, line);
}

struct ms_pool *ms_pool_new_child_at(struct ms_pool *parent, const char *file, int line)
{
    if (!pool_ok(parent)) {
        ms_bad_pool(parent, file, line);
        return NULL;
    }
    if (parent->flags & PF_FREEING) {
        errno = EBUSY;
        return NULL;
    }
    return pool_new(parent, 0, file, line);
}

void ms_pool_set_name(struct ms_pool *p, const char *name)
{
    if (!pool_ok(p)) {
        ms_bad_pool(p, NULL, 0);
        return;
    }
    p->name = name;
    if (MS_UNLIKELY(atomic_load_explicit(&ms_g_agent, memory_order_relaxed) != NULL))
        ms_emit_name(p, name);
}

const char *ms_pool_name(const struct ms_pool *p)
{
    return pool_ok(p) ? p->name : NULL;
}

struct ms_pool *ms_pool_parent(const struct ms_pool *p)
{
    return pool_ok(p) ? p->parent : NULL;
}

/* ------------------------------------------------------ destructors */
static struct ms_pool_dtor *dtor_new(ms_pool_destructor_fn fn, void *arg, const char *file, int line)
{
    struct ms_pool_dtor *d = ms_raw_calloc(sizeof *d);
    if (!d)
        return NULL;
    d->fn = fn;
    d->arg = arg;
    d->file = file;
    d->line = line;
    return d;
}

static void dtor_push(struct ms_pool_dtor **head, struct ms_pool_dtor *d)
{
    d->prev = NULL;
    d->next = *head;
    if (*head)
        (*head)->prev = d;
    *head = d;
    d->linked = 1;
}

struct ms_pool_dtor *ms_pool_add_destructor_at(struct ms_pool *p, ms_pool_destructor_fn fn, void *arg,
                                               const char *file, int line)
{
    if (!pool_ok(p)) {
        ms_bad_pool(p, file, line);
        return NULL;
    }
    if (!fn) {
        errno = EINVAL;
        return NULL;
    }
    if (p->flags & PF_FREEING) {
        errno = EBUSY;
        return NULL;
    }
    struct ms_pool_dtor *d = dtor_new(fn, arg, file, line);
    if (!d)
        return NULL;
    d->pool = p;
    dtor_push(&p->dtors, d);
    return d;
}

struct ms_pool_dtor *ms_pool_add_block_destructor_at(void *ptr, ms_pool_destructor_fn fn, void *arg,
                                                     const char *file, int line)
{
    struct blk *h = ms_live_blk(ptr, file, line, 1);
    if (!h)
        return NULL;
    if (!fn) {
        errno = EINVAL;
        return NULL;
    }
    struct ms_pool *owner = ms_blk_owner(h);
    struct ext *he = blk_ext(h);
    if ((owner->flags & PF_FREEING) || (he && he->freeing)) {
        errno = EBUSY;
        return NULL;
    }
    struct ms_pool_dtor *d = dtor_new(fn, arg, file, line);
    if (!d)
        return NULL;
    struct ext *e = ms_ext_get(h, owner);
    if (!e) {
        ms_raw_free(d, sizeof *d);
        return NULL;
    }
    d->ext = e;
    dtor_push(&e->dtors, d);
    return d;
}

int ms_pool_remove_destructor(struct ms_pool_dtor *d)
{
    if (!d) {
        errno = EINVAL;
        return -1;
    }
    if (d->running) {
        d->running = 2;
        return 0;
    }
    struct ms_pool_dtor **head = d->pool ? &d->pool->dtors : &d->ext->dtors;
    if (d->prev)
        d->prev->next = d->next;
    else if (*head == d)
        *head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    struct ext *e = d->ext;
    ms_raw_free(d, sizeof *d);
    if (e)
        ms_ext_maybe_drop(e->hdr);
    return 0;
}

/* Run the destructors of *head newest first.  0: all agreed (and are
 * gone); -1: one refused (it stays at the head, the newer ones are gone). */
int ms_run_dtors(struct ms_pool_dtor **head, void *obj)
{
    struct ms_pool_dtor *d;
    while ((d = *head) != NULL) {
        *head = d->next;
        if (d->next)
            d->next->prev = NULL;
        d->next = d->prev = NULL;
        d->linked = 0;
        d->running = 1;
        int r = d->fn(obj, d->arg);
        if (r != 0 && d->running == 1) {
            d->running = 0;
            dtor_push(head, d);
            return -1;
        }
        ms_raw_free(d, sizeof *d);
    }
    return 0;
}

/* ------------------------------------------------------ claims */
static struct ref **ref_ohead(struct ref *r)
{
    return r->pool ? &r->pool->adopters : &r->ext->adopters;
}

/* Attach claim r (holder, object set) to both lists; the object's list is
 * oldest first. */
static void ref_attach(struct ref *r)
{
    struct ref **oh = ref_ohead(r);
    r->onext = NULL;
    r->oprev = NULL;
    if (!*oh) {
        *oh = r;
    } else {
        struct ref *t = *oh;
        while (t->onext)
            t = t->onext;
        t->onext = r;
        r->oprev = t;
    }
    r->hprev = NULL;
    r->hnext = r->holder->held;
    if (r->hnext)
        r->hnext->hprev = r;
    r->holder->held = r;
}

static void ref_remove(struct ref *r)
{
    struct ref **oh = ref_ohead(r);
    if (r->oprev)
        r->oprev->onext = r->onext;
    else
        *oh = r->onext;
    if (r->onext)
        r->onext->oprev = r->oprev;
    if (r->hprev)
        r->hprev->hnext = r->hnext;
    else
        r->holder->held = r->hnext;
    if (r->hnext)
        r->hnext->hprev = r->hprev;
    ms_raw_free(r, sizeof *r);
}

void ms_ref_free(struct ref *r)
{
    ref_remove(r);
}

static void ref_drop(struct ref *r, const char *file, int line)
{
    struct ms_pool *obj = r->pool ? r->pool : r->ext->owner;
    const void *ptr = r->pool ? NULL : (const void *)(r->ext->hdr + 1);
    struct ms_pool *holder = r->holder;
    ref_remove(r);
    EMIT(MS_POOL_EV_RELEASE, obj, holder, NULL, ptr, NULL, 0, file, line);
}

/* The claim on pool c to hand it to: oldest holder not being destroyed
 * and not inside c. */
static struct ref *pick_pool_heir(struct ms_pool *c)
{
    for (struct ref *r = c->adopters; r; r = r->onext)
        if (!(r->holder->flags & PF_FREEING) && !is_desc(r->holder, c))
            return r;
    return NULL;
}

static struct ref *pick_block_heir(struct ext *e)
{
    for (struct ref *r = e->adopters; r; r = r->onext)
        if (!(r->holder->flags & PF_FREEING))
            return r;
    return NULL;
}

/* ------------------------------------------------------ moving */
/* Re-parent p under np (NULL: root); commit only, checks done. */
static void relink_pool(struct ms_pool *p, struct ms_pool *np)
{
    struct ms_pool *old = p->parent;
    struct ms_pool *old_outer = old ? old->lim : NULL;
    struct ms_pool *new_outer = np ? np->lim : NULL;
    size_t bytes = 0;
    if ((old && old->lim) || new_outer)
        bytes = ms_subtree_bytes(p);
    if (old && old->lim)
        ms_limit_sub(old, bytes);
    if (old)
        unlink_child(p);
    else
        reg_del(p);
    p->parent = np;
    if (np)
        link_child(np, p);
    else
        reg_add(p);
    if (!p->limit && old_outer != new_outer)
        relim(p, old_outer, new_outer);
    if (new_outer)
        ms_limit_add(np, bytes);
}

/* Move block h from old to np; pre: a spare ext for the case it needs one
 * (freed if unused).  Cannot fail. */
static void block_move(struct blk *h, struct ext *pre, struct ms_pool *old, struct ms_pool *np)
{
    size_t n = blk_size(h);
    struct ext *e = blk_ext(h);
    if (blk_large(h)) {
        struct lhdr *l = blk_lhdr(h);
        ms_large_unlink(l);
        ms_large_link(l, np);
        if (e) {
            ms_ext_unlink(e);
            ms_ext_link(e, np);
        }
    } else {
        struct chunk *c = blk_chunk(h);
        if (c->owner == np) { /* back home: no longer foreign */
            ms_ext_unlink(e);
            blk_clear_flag(h, BF_FOREIGN);
            atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel);
            ms_ext_link(e, np);
            ms_ext_maybe_drop(h);
        } else {
            if (!e) {
                e = pre;
                pre = NULL;
                e->hdr = h;
                ms_blk_set_ext(h, e); /* the ext map was reserved with pre */
            } else {
                ms_ext_unlink(e);
            }
            if (!(blk_flags(h) & BF_FOREIGN)) {
                c->owner->flags |= PF_STOLEN;
                blk_set_flag(h, BF_FOREIGN);
                atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
            }
            ms_ext_link(e, np);
        }
    }
    if (pre)
        ms_raw_free(pre, sizeof *pre);
    old->bytes -= n;
    old->nblocks--;
    np->bytes += n;
    np->nblocks++;
    if (old->lim)
        ms_limit_sub(old, n);
    if (np->lim)
        ms_limit_add(np, n);
}

int ms_pool_steal_at(struct ms_pool *np, void *ptr, const char *file, int line)
{
    if (!pool_ok(np))
        return ms_bad_pool(np, file, line);
    struct blk *h = ms_live_blk(ptr, file, line, 1);
    if (!h)
        return -1;
    struct ms_pool *old = ms_blk_owner(h);
    if (old == np)
        return 0;
    struct ext *he = blk_ext(h);
    if ((np->flags & PF_FREEING) || (he && he->freeing)) {
        errno = EBUSY;
        return -1;
    }
    size_t n = blk_size(h);
    if (np->lim && !limit_ok_move(np, old, n, file, line)) {
        errno = ENOMEM;
        return -1;
    }
    struct ext *pre = NULL;
    if (!blk_large(h) && !he && blk_chunk(h)->owner != np) {
        if (ms_emap_reserve(h) < 0)
            return -1;
        pre = ms_raw_calloc(sizeof *pre);
        if (!pre)
            return -1;
    }
    block_move(h, pre, old, np);
    EMIT(MS_POOL_EV_REPARENT, np, np, old, ptr, NULL, n, file, line);
    return 0;
}

int ms_pool_move_at(struct ms_pool *np, struct ms_pool *p, const char *file, int line)
{
    if (!pool_ok(p))
        return ms_bad_pool(p, file, line);
    if (np && !pool_ok(np))
        return ms_bad_pool(np, file, line);
    if ((p->flags & PF_FREEING) || (np && (np->flags & PF_FREEING))) {
        errno = EBUSY;
        return -1;
    }
    struct ms_pool *old = p->parent;
    if (np == old)
        return 0;
    if (np && is_desc(np, p)) {
        errno = ELOOP;
        return -1;
    }
    if (np && np->lim && !limit_ok_move(np, old, ms_subtree_bytes(p), file, line)) {
        errno = ENOMEM;
        return -1;
    }
    relink_pool(p, np);
    EMIT(MS_POOL_EV_REPARENT, p, np, old, NULL, NULL, 0, file, line);
    return 0;
}

/* ------------------------------------------------------ adopt, release */
static struct ref *ref_new(struct ms_pool *holder, const char *file, int line)
{
    struct ref *r = ms_raw_calloc(sizeof *r);
    if (r) {
        r->holder = holder;
        r->file = file;
        r->line = line;
    }
    return r;
}

int ms_pool_adopt_at(struct ms_pool *holder, void *ptr, const char *file, int line)
{
    if (!pool_ok(holder))
        return ms_bad_pool(holder, file, line);
    struct blk *h = ms_live_blk(ptr, file, line, 1);
    if (!h)
        return -1;
    struct ms_pool *owner = ms_blk_owner(h);
    struct ext *he = blk_ext(h);
    if ((holder->flags & PF_FREEING) || (owner->flags & PF_FREEING) || (he && he->freeing)) {
        errno = EBUSY;
        return -1;
    }
    struct ref *r = ref_new(holder, file, line);
    if (!r)
        return -1;
    struct ext *e = ms_ext_get(h, owner);
    if (!e) {
        ms_raw_free(r, sizeof *r);
        return -1;
    }
    r->ext = e;
    ref_attach(r);
    EMIT(MS_POOL_EV_ADOPT, owner, holder, NULL, ptr, NULL, blk_size(h), file, line);
    return 0;
}

int ms_pool_adopt_pool_at(struct ms_pool *holder, struct ms_pool *p, const char *file, int line)
{
    if (!pool_ok(holder))
        return ms_bad_pool(holder, file, line);
    if (!pool_ok(p))
        return ms_bad_pool(p, file, line);
    if ((holder->flags & PF_FREEING) || (p->flags & PF_FREEING)) {
        errno = EBUSY;
        return -1;
    }
    if (is_desc(holder, p)) {
        errno = ELOOP;
        return -1;
    }
    struct ref *r = ref_new(holder, file, line);
    if (!r)
        return -1;
    r->pool = p;
    ref_attach(r);
    EMIT(MS_POOL_EV_ADOPT, p, holder, NULL, NULL, NULL, 0, file, line);
    return 0;
}

/* The newest claim of holder in list head, or NULL. */
static struct ref *find_claim(struct ref *head, struct ms_pool *holder)
{
    struct ref *found = NULL;
    for (struct ref *r = head; r; r = r->onext)
        if (r->holder == holder)
            found = r;
    return found;
}

int ms_pool_release_at(struct ms_pool *holder, void *ptr, const char *file, int line)
{
    if (holder && !pool_ok(holder))
        return ms_bad_pool(holder, file, line);
    struct blk *h = ms_live_blk(ptr, file, line, 1);
    if (!h)
        return -1;
    struct ms_pool *owner = ms_blk_owner(h);
    struct ext *e = blk_ext(h);
    if (holder && e) {
        struct ref *r = find_claim(e->adopters, holder);
        if (r) {
            ref_drop(r, file, line);
            ms_ext_maybe_drop(h);
            return 0;
        }
    }
    if (holder && holder != owner) {
        errno = EINVAL;
        return -1;
    }
    if (e && e->freeing)
        return 0;
    if (e && e->adopters) {
        struct ref *r = pick_block_heir(e);
        if (r) {
            struct ms_pool *heir = r->holder;
            ref_remove(r);
            block_move(h, NULL, owner, heir); /* e exists: no spare needed */
            EMIT(MS_POOL_EV_REPARENT, heir, heir, owner, ptr, NULL, blk_size(h), file, line);
            return 0;
        }
        while (e->adopters)
            ref_drop(e->adopters, file, line);
    }
    return ms_pool_free_at(ptr, file, line);
}

int ms_pool_release_pool_at(struct ms_pool *holder, struct ms_pool *p, const char *file, int line)
{
    if (holder && !pool_ok(holder))
        return ms_bad_pool(holder, file, line);
    if (!pool_ok(p))
        return ms_bad_pool(p, file, line);
    if (holder) {
        struct ref *r = find_claim(p->adopters, holder);
        if (r) {
            ref_drop(r, file, line);
            return 0;
        }
        if (holder != p->parent) {
            errno = EINVAL;
            return -1;
        }
    }
    if (p->flags & PF_FREEING)
        return 0;
    if (p->adopters) {
        struct ref *r = pick_pool_heir(p);
        if (r) {
            struct ms_pool *heir = r->holder, *old = p->parent;
            ref_remove(r);
            relink_pool(p, heir);
            EMIT(MS_POOL_EV_REPARENT, p, heir, old, NULL, NULL, 0, file, line);
            return 0;
        }
        while (p->adopters)
            ref_drop(p->adopters, file, line);
    }
    return ms_pool_destroy_at(p, file, line);
}

/* ------------------------------------------------------ destroy */
static void enter(struct ms_pool *n)
{
    n->flags |= PF_FREEING;
    n->flags &= ~(PF_REFUSED | PF_BUSY);
    n->pending = n->first_child;
    n->first_child = NULL;
}

/* n's blocks that have an ext: hand the shared ones over, run the
 * destructors, free those that agreed.  0 if one refused. */
static int finish_blocks(struct ms_pool *n, const char *file, int line)
{
    struct ext *kept = NULL;
    int ok = 1;
    struct ext *e;
    while ((e = n->exts) != NULL) {
        ms_ext_unlink(e);
        struct blk *h = e->hdr;
        if (e->adopters) {
            struct ref *r = pick_block_heir(e);
            if (r) {
                struct ms_pool *heir = r->holder;
                ref_remove(r);
                ms_ext_link(e, n); /* block_move unlinks it from n */
                block_move(h, NULL, n, heir);
                EMIT(MS_POOL_EV_REPARENT, heir, heir, n, h + 1, NULL, blk_size(h), file, line);
                continue;
            }
            while (e->adopters)
                ref_drop(e->adopters, file, line);
        }
        if (e->dtors) {
            e->freeing = 1;
            int r = ms_run_dtors(&e->dtors, h + 1);
            e->freeing = 0;
            if (r) {
                e->owner = n;
                e->prev = NULL;
                e->next = kept;
                if (kept)
                    kept->prev = e;
                kept = e;
                ok = 0;
                continue;
            }
        }
        void *ptr = h + 1;
        size_t sz = blk_size(h);
        ms_blk_release(h, n, file, line);
        EMIT(MS_POOL_EV_FREE, n, NULL, NULL, ptr, NULL, sz, file, line);
    }
    n->exts = kept;
    return ok;
}

/* n is done: drop its claims, unregister, give its memory back. */
static void release_pool(struct ms_pool *n, const char *file, int line)
{
    while (n->held)
        ref_drop(n->held, file, line);
    struct ms_pool *parent = n->parent;
    EMIT(MS_POOL_EV_DESTROY, n, parent, NULL, NULL, NULL, 0, file, line);
    reg_del(n);
    unlink_child(n);
    if (parent && parent->lim)
        ms_limit_sub(parent, pool_bytes(n));
    ms_pool_release_memory(n, file, line);
}

static void relink_survivor(struct ms_pool *parent, struct ms_pool *c)
{
    link_child(parent, c);
}

static int destroy_tree(struct ms_pool *top, const char *file, int line)
{
    struct ms_pool *n = top;
    enter(n);
    for (;;) {
        struct ms_pool *c = n->pending;
        if (c) {
            n->pending = c->next;
            if (c->next)
                c->next->prev = NULL;
            c->next = c->prev = NULL;
            if (c->flags & PF_FREEING) { /* an outer destroy works below */
                relink_survivor(n, c);
                n->flags |= PF_REFUSED | PF_BUSY;
                continue;
            }
            if (c->adopters) {
                struct ref *r = pick_pool_heir(c);
                if (r) {
                    struct ms_pool *heir = r->holder;
                    ref_remove(r);
                    relink_pool(c, heir);
                    EMIT(MS_POOL_EV_REPARENT, c, heir, n, NULL, NULL, 0, file, line);
                    continue;
                }
                while (c->adopters)
                    ref_drop(c->adopters, file, line);
            }
            enter(c);
            n = c;
            continue;
        }
        /* every child is done */
        int ok = !(n->flags & PF_REFUSED);
        if (ok)
            ok = finish_blocks(n, file, line);
        if (ok && n->dtors)
            ok = ms_run_dtors(&n->dtors, n) == 0;
        if (ok && n->exts) /* a destructor freed blocks: nothing can be added */
            ok = finish_blocks(n, file, line);
        struct ms_pool *parent = n->parent;
        unsigned busy = n->flags & PF_BUSY;
        if (ok) {
            release_pool(n, file, line);
        } else {
            n->flags &= ~(PF_FREEING | PF_REFUSED | PF_BUSY);
            if (n != top) {
                relink_survivor(parent, n);
                parent->flags |= PF_REFUSED | busy;
            }
        }
        if (n == top) {
            if (!ok)
                errno = busy ? EBUSY : ECANCELED;
            return ok ? 0 : -1;
        }
        n = parent;
    }
}

int ms_pool_destroy_at(struct ms_pool *p, const char *file, int line)
{
    if (!pool_ok(p))
        return ms_bad_pool(p, file, line);
    if (p->flags & PF_FREEING)
        return 0;
    if (p->adopters) {
        errno = EBUSY;
        return -1;
    }
    return destroy_tree(p, file, line);
}
