/*
 * memsleuth/pool.h - libmemsleuth_pool: a hierarchical pool allocator.
 *
 * This header is the manual.  Every call states who owns what, how it fails
 * and which thread may make it.
 *
 * ------------------------------------------------------------------------
 * EXAMPLE
 * ------------------------------------------------------------------------
 *
 *     #include <memsleuth/pool.h>
 *
 *     static int close_fd(void *obj, void *arg)      // a destructor
 *     {
 *         (void)obj;
 *         close(*(int *)arg);
 *         return 0;                                  // 0: let the free go on
 *     }
 *
 *     int serve(int fd)
 *     {
 *         struct ms_pool *root = ms_pool_new_root(64 << 20);   // 64 MiB cap
 *         struct ms_pool *req = ms_pool_new_child(root);       // one request
 *         if (!root || !req)
 *             return -1;                             // errno == ENOMEM
 *         int *pfd = ms_pool_alloc(req, sizeof *pfd);
 *         char *line = ms_pool_asprintf(req, "fd %d", fd);
 *         if (!pfd || !line) {
 *             ms_pool_destroy(root);                 // frees everything
 *             return -1;
 *         }
 *         *pfd = fd;
 *         ms_pool_add_destructor(req, close_fd, pfd); // runs at destroy
 *         ...
 *         ms_pool_print(stderr, root, MS_POOL_PRINT_BLOCKS); // who holds what
 *         ms_pool_destroy(req);   // closes fd, frees pfd and line at once
 *         ms_pool_destroy(root);
 *         return 0;
 *     }
 *
 * ------------------------------------------------------------------------
 * MODEL
 * ------------------------------------------------------------------------
 *
 * An allocator ("pool", struct ms_pool) owns allocations ("blocks") and
 * child pools.  Pools form trees; a pool without a parent is a root.
 * Blocks are leaves: only pools have children.  Destroying a pool frees
 * everything below it, deepest first.  Every pool and every block remembers
 * the file:line of the call that made it (the macros pass __FILE__ and
 * __LINE__ to the *_at functions; call the *_at functions directly to pass
 * another site, e.g. your own caller's).  The file string is not copied: it
 * must live as long as the object (a string literal such as __FILE__ does).
 *
 * Ownership.  Each pool and block has exactly one primary owner (a block:
 * its pool; a pool: its parent, or none for a root) and may in addition be
 * "adopted" by any number of other pools (shared ownership, see
 * ms_pool_adopt).  An object is freed when its primary owner is destroyed
 * and nobody else holds it; if adopters remain, the object passes to the
 * first of them instead (it becomes that adopter's own object).
 *
 * Memory layout (what it costs).  Blocks of up to MS_POOL_SMALL_MAX bytes
 * are carved from the pool's chunks (8 KiB each; the first chunk also holds
 * the pool itself, so an empty pool costs 8 KiB) behind an 8-byte header
 * (the allocation site as an id into a process-wide table of file:line
 * pairs, the size, a magic word), the block rounded up so that the next
 * block is 16-aligned: no malloc per allocation.  Chunks come from 256 KiB
 * slabs (one malloc each).  Blocks with destructors or adopters, or stolen
 * into another pool, get a separate record (and their chunk a 4 KiB map to
 * find it).  A freed small block is reused by the next allocation of the
 * same 16-byte size class in the same pool; its memory goes back when the
 * pool is destroyed.  Larger blocks get their own malloc (a 56-byte header
 * more).  Destroying a pool costs one step per chunk, per large block and
 * per block that has a destructor, an adopter or came from another pool:
 * plain blocks are not visited.  Freed chunks are kept in a process-wide
 * cache (MEMSLEUTH_POOL_CACHE bytes, default 64 MiB) for the next pools;
 * past it, slabs whose chunks are all free go back to malloc and other
 * free chunks' pages back to the kernel (madvise), so the limit bounds the
 * resident cache, while a slab stays allocated as long as one of its
 * chunks is in use.
 *
 * ------------------------------------------------------------------------
 * ERRORS
 * ------------------------------------------------------------------------
 *
 * A call that fails returns NULL or -1 and sets errno; it changes nothing:
 * the tree, the byte counts and the blocks are as before the call.  errno:
 *   ENOMEM     out of memory, or a byte limit would be exceeded
 *   EINVAL     a NULL or invalid argument
 *   ELOOP      the move/adoption would make an object its own ancestor
 *   EBUSY      the object is shared (adopted) and must be let go with
 *              ms_pool_release, or it is being destroyed right now
 *   ECANCELED  a destructor refused the free (see DESTRUCTORS)
 *   EOVERFLOW  a size computation overflowed (calloc, strings)
 * Memory errors (a double free, a freed pool used, an overwritten canary,
 * a pointer that is no block) are reported to the error handler, which by
 * default prints both sites to stderr and aborts; see DEBUG MODE.
 *
 * ------------------------------------------------------------------------
 * THREADS
 * ------------------------------------------------------------------------
 *
 * A tree (a root and everything below it) is used by one thread at a time:
 * calls on pools and blocks of one tree must not run concurrently; calls on
 * different trees may.  Handing a whole tree to another thread is fine
 * with the usual happens-before (a mutex, a queue).  A call that involves
 * two trees (ms_pool_steal, ms_pool_move, ms_pool_adopt, ms_pool_release
 * across trees) needs both; after such an exchange the two trees share
 * memory until the exchanged object is freed, so use them from one thread
 * (or under one lock) until then.
 * Process-wide state is thread-safe: the root registry (ms_pool_roots,
 * ms_pool_dump_all), the chunk cache and the debug quarantine are locked;
 * the settings (ms_pool_set_debug, ms_pool_set_event_hook, handlers) are
 * atomic, but set them at start-up: a call already running may still see
 * the old value.  ms_pool_dump_all and ms_pool_foreach_root read trees that
 * other threads own: call them when those threads are stopped (memsleuth's
 * agent stops the world first) or from the thread that owns the trees.
 * Nothing here is async-signal-safe.
 * fork: the library's locks are taken around fork (pthread_atfork), so a
 * child can use the library even when another thread of the parent was
 * inside it; the child's trees are copies (those of the parent's other
 * threads may be half changed: do not use them in the child).  Do not fork
 * from a ms_pool_foreach_root callback (the registry lock is held there).
 *
 * Destructors and callbacks run on the calling thread, inside the call.
 */
#ifndef MEMSLEUTH_POOL_H
#define MEMSLEUTH_POOL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the exported calls (the library is built with -fvisibility=hidden). */
#if defined(__GNUC__)
#define MS_POOL_API __attribute__((visibility("default")))
#define MS_POOL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define MS_POOL_MALLOC __attribute__((malloc))
#else
#define MS_POOL_API
#define MS_POOL_PRINTF(f, a)
#define MS_POOL_MALLOC
#endif

/* Version of this interface: major * 10000 + minor * 100 + patch. */
#define MS_POOL_VERSION 10000

/* The largest block carved from a chunk; larger ones get their own malloc. */
#define MS_POOL_SMALL_MAX 1024

/* Debug-mode fill bytes: new blocks (not zalloc/calloc), freed blocks, and
 * the 8-byte canary after each block. */
#define MS_POOL_FILL_NEW   0xCD
#define MS_POOL_FILL_FREED 0xDD
#define MS_POOL_FILL_TAIL  0xFD

/* An allocator.  Opaque; always handled through a pointer. */
struct ms_pool;

/* ======================================================================
 * POOLS
 * ====================================================================== */

/* Create a root pool, registered in the process-wide root registry
 * (ms_pool_roots, ms_pool_dump_all) until it is destroyed or moved under
 * a parent.  limit: a byte limit for the whole tree (see LIMITS), 0 for
 * none.
 * Returns the pool, or NULL with errno ENOMEM.  The caller owns it and
 * frees it with ms_pool_destroy.  Thread: any; the new tree belongs to the
 * calling thread.  The first root read MEMSLEUTH_POOL_* from the
 * environment (see DEBUG MODE). */
MS_POOL_API struct ms_pool *ms_pool_new_root_at(size_t limit, const char *file, int line);
#define ms_pool_new_root(limit) ms_pool_new_root_at((limit), __FILE__, __LINE__)

/* Create a child pool of parent.  It is freed with its parent, or earlier
 * with ms_pool_destroy.  It starts with no limit of its own but counts
 * against the limits of its ancestors.
 * Returns NULL with errno ENOMEM (out of memory), EINVAL (parent NULL or
 * not a live pool: reported, see DEBUG MODE) or EBUSY (parent is being
 * destroyed).  Thread: the one using parent's tree. */
MS_POOL_API struct ms_pool *ms_pool_new_child_at(struct ms_pool *parent, const char *file, int line);
#define ms_pool_new_child(parent) ms_pool_new_child_at((parent), __FILE__, __LINE__)

/* Destroy pool p and everything below it: child pools deepest first, then
 * p's blocks, then p (see DESTRUCTORS for the order and for refusals).
 * Blocks and pools adopted by pools outside the subtree survive: they pass
 * to their first remaining adopter (an adopter inside the subtree, or one
 * being destroyed, does not count).
 * Returns 0 when p was freed, or if p is already being destroyed (a
 * destructor below p destroying p again: nothing more happens).  Returns
 * -1 with errno ECANCELED if a destructor refused (p survives with what was
 * not freed), EBUSY if p is adopted (use ms_pool_release) or if a pool in
 * p's subtree is being destroyed by an outer call, EINVAL if p is NULL or
 * no live pool (reported).  In debug mode destroying p twice is reported
 * with both sites.  Thread: the one using p's tree.  After success p and
 * every pointer into its subtree are invalid. */
MS_POOL_API int ms_pool_destroy_at(struct ms_pool *p, const char *file, int line);
#define ms_pool_destroy(p) ms_pool_destroy_at((p), __FILE__, __LINE__)

/* Name p for the printouts.  The string is not copied: use a literal or a
 * string allocated in p itself.  NULL clears it.  ms_pool_name returns
 * the name or NULL.  Thread: the one using p's tree. */
MS_POOL_API void ms_pool_set_name(struct ms_pool *p, const char *name);
MS_POOL_API const char *ms_pool_name(const struct ms_pool *p);

/* The primary parent of p (NULL for a root or an invalid p). */
MS_POOL_API struct ms_pool *ms_pool_parent(const struct ms_pool *p);

/* ======================================================================
 * BLOCKS
 * ======================================================================
 * All blocks are aligned for any type (16 bytes).  The pool owns the block
 * (see MODEL); the caller may free it earlier with ms_pool_free.  All of
 * these fail with NULL and errno ENOMEM (no memory, or a byte limit: the
 * limit handler has been called), or EINVAL (p NULL or no live pool;
 * reported), or EOVERFLOW (a size overflows); nothing changes then.
 * Thread: the one using p's tree. */

/* n bytes, uninitialized (filled with MS_POOL_FILL_NEW in debug mode).
 * n == 0 gives a unique block of size 0. */
MS_POOL_API void *ms_pool_alloc_at(struct ms_pool *p, size_t n, const char *file, int line) MS_POOL_MALLOC;
#define ms_pool_alloc(p, n) ms_pool_alloc_at((p), (n), __FILE__, __LINE__)

/* n bytes, zeroed. */
MS_POOL_API void *ms_pool_zalloc_at(struct ms_pool *p, size_t n, const char *file, int line) MS_POOL_MALLOC;
#define ms_pool_zalloc(p, n) ms_pool_zalloc_at((p), (n), __FILE__, __LINE__)

/* nmemb * size bytes, zeroed; EOVERFLOW if the product overflows. */
MS_POOL_API void *ms_pool_calloc_at(struct ms_pool *p, size_t nmemb, size_t size, const char *file,
                                    int line) MS_POOL_MALLOC;
#define ms_pool_calloc(p, nmemb, size) ms_pool_calloc_at((p), (nmemb), (size), __FILE__, __LINE__)

/* Typed helpers: one zeroed object, or n zeroed objects. */
#define MS_POOL_NEW(p, type)          ((type *)ms_pool_zalloc((p), sizeof(type)))
#define MS_POOL_NEW_ARRAY(p, type, n) ((type *)ms_pool_calloc((p), (n), sizeof(type)))

/* Resize block ptr to n bytes and return it, possibly moved; the contents
 * up to the smaller size are kept, the block keeps its owner, its
 * destructors and its adopters, and its site becomes this call's.
 * ptr NULL: same as ms_pool_alloc(p, n).  Otherwise p may be NULL or must
 * be ptr's owner (else EINVAL).  n == 0 with ptr not NULL frees ptr as
 * ms_pool_free does and returns NULL (errno ECANCELED/EBUSY if that free
 * fails, 0 otherwise: check errno after setting it to 0).  On failure
 * returns NULL and ptr is untouched and still owned by its pool. */
MS_POOL_API void *ms_pool_realloc_at(struct ms_pool *p, void *ptr, size_t n, const char *file, int line);
#define ms_pool_realloc(p, ptr, n) ms_pool_realloc_at((p), (ptr), (n), __FILE__, __LINE__)

/* A copy of n bytes at src (src may be NULL only if n == 0). */
MS_POOL_API void *ms_pool_memdup_at(struct ms_pool *p, const void *src, size_t n, const char *file,
                                    int line) MS_POOL_MALLOC;
#define ms_pool_memdup(p, src, n) ms_pool_memdup_at((p), (src), (n), __FILE__, __LINE__)

/* A copy of string s; s NULL fails with EINVAL. */
MS_POOL_API char *ms_pool_strdup_at(struct ms_pool *p, const char *s, const char *file, int line) MS_POOL_MALLOC;
#define ms_pool_strdup(p, s) ms_pool_strdup_at((p), (s), __FILE__, __LINE__)

/* A copy of at most n bytes of s, always NUL-terminated; s is read up to
 * its NUL or n bytes, whichever comes first. */
MS_POOL_API char *ms_pool_strndup_at(struct ms_pool *p, const char *s, size_t n, const char *file,
                                     int line) MS_POOL_MALLOC;
#define ms_pool_strndup(p, s, n) ms_pool_strndup_at((p), (s), (n), __FILE__, __LINE__)

/* A new string formatted as by printf.  Also fails with EINVAL if fmt is
 * NULL or the formatting fails (vsnprintf error, EOVERFLOW for more than
 * INT_MAX bytes).  The va_list variant leaves ap indeterminate, as
 * vprintf does (use va_copy to keep it). */
MS_POOL_API char *ms_pool_asprintf_at(struct ms_pool *p, const char *file, int line, const char *fmt, ...)
    MS_POOL_PRINTF(4, 5) MS_POOL_MALLOC;
MS_POOL_API char *ms_pool_vasprintf_at(struct ms_pool *p, const char *file, int line, const char *fmt,
                                       va_list ap) MS_POOL_PRINTF(4, 0) MS_POOL_MALLOC;
#define ms_pool_asprintf(p, ...)      ms_pool_asprintf_at((p), __FILE__, __LINE__, __VA_ARGS__)
#define ms_pool_vasprintf(p, fmt, ap) ms_pool_vasprintf_at((p), __FILE__, __LINE__, (fmt), (ap))

/* Free one block now: its destructors run (newest first), then its memory
 * goes back to its pool.  ptr NULL: nothing, returns 0.
 * Returns 0, or -1 with errno ECANCELED (a destructor refused: the block
 * stays), EBUSY (the block is adopted: use ms_pool_release), EINVAL (not a
 * live block: a double free or a foreign pointer, reported first; debug
 * mode names where it was freed before).  Freeing a block from inside one
 * of its own destructors does nothing and returns 0.  Thread: the one
 * using the owner's tree. */
MS_POOL_API int ms_pool_free_at(void *ptr, const char *file, int line);
#define ms_pool_free(ptr) ms_pool_free_at((ptr), __FILE__, __LINE__)

/* The primary owner of block ptr, or NULL (errno EINVAL) if ptr is no live
 * block.  Does not report. */
MS_POOL_API struct ms_pool *ms_pool_owner(const void *ptr);

/* The size requested for block ptr (0 if ptr is no live block, with errno
 * EINVAL).  Does not report. */
MS_POOL_API size_t ms_pool_size(const void *ptr);

/* ======================================================================
 * DESTRUCTORS (on-free callbacks)
 * ======================================================================
 * A destructor is called when its pool or block is about to be freed.
 * obj is the pool (struct ms_pool *) or the block; arg is the pointer
 * given when registering.  Return 0 to let the free go on, non-zero to
 * refuse it.
 *
 * Order.  Destroying pool P runs, depth-first and deepest first: for each
 * child pool (newest first) its whole subtree, then P's blocks that have
 * destructors (newest first, each block's destructors newest first), then
 * P's own destructors (newest first), then P's memory is released.
 *
 * Refusal (a destructor returned non-zero).  The free of that pool or
 * block is cancelled, and so is the free of each of its ancestors up to
 * the object being destroyed: a pool is only freed when everything below
 * it was.  The destructor that refused stays registered, after those that
 * ran before it were consumed (each destructor is called at most once per
 * successful registration unless it refuses).  The object's other
 * destructors (older than the refusing one) do not run.  Siblings that
 * agreed are freed.  A pool whose free is cancelled keeps every block that
 * has no destructor, every child that refused, its limit, its adopters;
 * the destroy call returns -1 with errno ECANCELED.
 *
 * What a destructor may do: anything with objects outside the subtree
 * being destroyed, allocate in its own pool, free or steal blocks and move
 * pools out of that subtree.  It may not create children, steal, move or
 * adopt into a pool being destroyed, nor add destructors there (EBUSY);
 * destroying the object again is a no-op that returns 0.
 * Thread: the one using the object's tree. */

/* A destructor.  obj: the pool or block being freed; arg: as registered. */
typedef int (*ms_pool_destructor_fn)(void *obj, void *arg);

/* A registered destructor (opaque handle). */
struct ms_pool_dtor;

/* Register fn(p, arg) to run when pool p is destroyed.  Returns a handle
 * for ms_pool_remove_destructor (owned by the library: it is invalid once
 * the destructor has run and returned 0, or was removed, or p was freed),
 * or NULL with errno ENOMEM, EINVAL (p invalid or fn NULL) or EBUSY (p is
 * being destroyed). */
MS_POOL_API struct ms_pool_dtor *ms_pool_add_destructor_at(struct ms_pool *p, ms_pool_destructor_fn fn,
                                                           void *arg, const char *file, int line);
#define ms_pool_add_destructor(p, fn, arg) ms_pool_add_destructor_at((p), (fn), (arg), __FILE__, __LINE__)

/* The same for block ptr: fn(ptr, arg) runs when the block is freed (alone
 * or with its pool); realloc keeps it, and passes the new pointer. */
MS_POOL_API struct ms_pool_dtor *ms_pool_add_block_destructor_at(void *ptr, ms_pool_destructor_fn fn,
                                                                 void *arg, const char *file, int line);
#define ms_pool_add_block_destructor(ptr, fn, arg)                                                       \
    ms_pool_add_block_destructor_at((ptr), (fn), (arg), __FILE__, __LINE__)

/* Cancel a destructor: it will not run.  Returns 0, or -1 with errno
 * EINVAL if d is NULL.  Called from inside d's own run, it makes d's
 * refusal (if any) final: d is dropped either way. */
MS_POOL_API int ms_pool_remove_destructor(struct ms_pool_dtor *d);

/* ======================================================================
 * OWNERSHIP: steal, move, adopt, release
 * ======================================================================
 * The byte counts follow the primary owner: a moved object counts for its
 * new ancestors' limits (checked: ENOMEM and the limit handler if one
 * would be exceeded) and no longer for the old ones'.  Adopters do not
 * count.  A hand-over to an adopter (when the primary owner lets go)
 * cannot fail and may exceed a limit.  All return 0 on success or -1 with
 * errno as listed; on failure nothing changed.  Thread: the ones using
 * both trees (see THREADS). */

/* Make pool new_owner the primary owner of block ptr.  Its memory does not
 * move (the pointer stays valid); it is freed with new_owner.
 * Errors: EINVAL (bad pointer or pool), EBUSY (new_owner is being
 * destroyed), ENOMEM (no memory for the bookkeeping, or a limit). */
MS_POOL_API int ms_pool_steal_at(struct ms_pool *new_owner, void *ptr, const char *file, int line);
#define ms_pool_steal(new_owner, ptr) ms_pool_steal_at((new_owner), (ptr), __FILE__, __LINE__)

/* Re-parent pool p (with its subtree) under new_parent; NULL makes p a
 * registered root.  Errors: ELOOP (new_parent is p or below p), EBUSY (p or
 * new_parent is being destroyed), ENOMEM (a limit of new_parent's
 * ancestors), EINVAL. */
MS_POOL_API int ms_pool_move_at(struct ms_pool *new_parent, struct ms_pool *p, const char *file, int line);
#define ms_pool_move(new_parent, p) ms_pool_move_at((new_parent), (p), __FILE__, __LINE__)

/* Shared ownership: holder takes a claim on block ptr (or on pool p).  The
 * object is then freed only when every claim is gone: its primary owner's
 * (by destroying it or by ms_pool_release) and each adopter's (by
 * ms_pool_release or by destroying the adopter).  The same holder may
 * adopt an object several times (each claim is released separately).
 * While claims remain, ms_pool_free/ms_pool_destroy of the object fail
 * with EBUSY.  Errors: ENOMEM, EINVAL, EBUSY (holder or the object's pool
 * is being destroyed), ELOOP (pool p: holder is p or below p). */
MS_POOL_API int ms_pool_adopt_at(struct ms_pool *holder, void *ptr, const char *file, int line);
#define ms_pool_adopt(holder, ptr) ms_pool_adopt_at((holder), (ptr), __FILE__, __LINE__)
MS_POOL_API int ms_pool_adopt_pool_at(struct ms_pool *holder, struct ms_pool *p, const char *file, int line);
#define ms_pool_adopt_pool(holder, p) ms_pool_adopt_pool_at((holder), (p), __FILE__, __LINE__)

/* holder lets go of block ptr (or pool p).  If holder has an adopter's
 * claim, one claim is dropped.  Otherwise holder must be the primary owner
 * (NULL means "the primary owner, whoever it is"): if adopters remain, the
 * object passes to the oldest eligible one (that claim becomes the primary
 * ownership); if none remains, the object is freed as by ms_pool_free /
 * ms_pool_destroy (destructors may refuse: ECANCELED).  Errors: EINVAL
 * (holder has no claim, bad pointer), ECANCELED. */
MS_POOL_API int ms_pool_release_at(struct ms_pool *holder, void *ptr, const char *file, int line);
#define ms_pool_release(holder, ptr) ms_pool_release_at((holder), (ptr), __FILE__, __LINE__)
MS_POOL_API int ms_pool_release_pool_at(struct ms_pool *holder, struct ms_pool *p, const char *file, int line);
#define ms_pool_release_pool(holder, p) ms_pool_release_pool_at((holder), (p), __FILE__, __LINE__)

/* ======================================================================
 * LIMITS
 * ======================================================================
 * A pool's limit caps the bytes requested by the live blocks of its
 * subtree (the sizes passed to the allocating calls; headers, chunk slack
 * and the pools themselves are not counted).  An allocation, a realloc
 * growth, a steal or a move that would take any limited ancestor-or-self
 * past its limit fails with ENOMEM and changes nothing, after calling the
 * limit handler of the pool whose limit it is (or the process default). */

/* Set (limit > 0) or clear (0) p's limit.  A limit below the current use
 * is allowed: allocations fail until enough is freed.  Costs a walk of p's
 * subtree.  Returns 0, or -1 with errno EINVAL. */
MS_POOL_API int ms_pool_set_limit(struct ms_pool *p, size_t limit);

/* What the limit handler is told. */
struct ms_pool_limit_info {
    struct ms_pool *limited; /* the pool whose limit would be exceeded */
    struct ms_pool *pool;    /* the pool the request was made in */
    size_t limit;            /* limited's limit */
    size_t used;             /* bytes limited's subtree uses now */
    size_t request;          /* bytes the call would add */
    const char *file;        /* the call's site */
    int line;
};

/* A limit handler.  It may return (the call then fails with ENOMEM), or
 * not (abort, longjmp out is not supported).  It must not modify the tree
 * (reading it, e.g. printing, is fine). */
typedef void (*ms_pool_limit_fn)(const struct ms_pool_limit_info *info, void *arg);

/* Set the handler called when p's limit is hit; p NULL sets the process
 * default used by pools without one (initially none).  fn NULL removes. */
MS_POOL_API void ms_pool_set_limit_handler(struct ms_pool *p, ms_pool_limit_fn fn, void *arg);

/* A ready handler: prints which limit was hit by which call, then the
 * whole tree of the limited pool with its blocks and allocation sites, to
 * arg (a FILE *) or stderr if arg is NULL, and aborts. */
MS_POOL_API void ms_pool_limit_abort(const struct ms_pool_limit_info *info, void *arg);

/* ======================================================================
 * INTROSPECTION
 * ======================================================================
 * Read-only; the tree must not change while one of these runs (callbacks
 * must not modify it).  Thread: the one using the tree (see THREADS). */

/* One pool as seen by ms_pool_info / ms_pool_walk. */
struct ms_pool_node_info {
    struct ms_pool *pool;
    struct ms_pool *parent; /* primary parent, NULL for a root */
    const char *name;       /* or NULL */
    const char *file;       /* where it was created */
    int line;
    unsigned depth;         /* 0 for the pool the walk started at */
    size_t bytes;           /* requested bytes of its own live blocks */
    size_t blocks;          /* its own live blocks */
    size_t subtree_bytes;   /* the same for it and all pools below it */
    size_t subtree_blocks;
    size_t subtree_pools;   /* it and all pools below it */
    size_t children;        /* direct child pools */
    size_t limit;           /* its own limit, 0 for none */
    size_t adopters;        /* claims others hold on it */
    size_t held;            /* claims it holds on others */
    size_t destructors;     /* its own registered destructors */
    size_t mem;             /* memory it holds: chunks and large blocks */
};

/* One block as seen by ms_pool_block_info / ms_pool_walk. */
struct ms_pool_block_info {
    void *ptr;
    size_t size;
    const char *file; /* where it was allocated (or last reallocated) */
    int line;
    struct ms_pool *owner;
    size_t adopters;
    size_t destructors;
};

/* Fill *out for pool p (depth 0; subtree totals cost a walk).  Returns 0,
 * or -1 with errno EINVAL. */
MS_POOL_API int ms_pool_info(struct ms_pool *p, struct ms_pool_node_info *out);

/* Fill *out for block ptr.  Returns 0, or -1 with errno EINVAL. */
MS_POOL_API int ms_pool_block_info(const void *ptr, struct ms_pool_block_info *out);

/* Walk callback: called for each pool (block == NULL) in pre-order (a pool
 * before its children, children newest first) and, with
 * MS_POOL_WALK_BLOCKS, right after each pool for each of its live blocks
 * (node is then that pool).  Return 0 to go on; non-zero stops the walk
 * and is returned by ms_pool_walk. */
typedef int (*ms_pool_walk_fn)(const struct ms_pool_node_info *node, const struct ms_pool_block_info *block,
                               void *arg);

/* Flags for ms_pool_walk, ms_pool_print and ms_pool_dump_all. */
#define MS_POOL_WALK_BLOCKS  0x1u /* walk: visit the blocks too */
#define MS_POOL_PRINT_BLOCKS 0x1u /* print: list every block with its site */
#define MS_POOL_PRINT_SITES  0x2u /* print: add the per-site table */

/* Walk p's subtree.  Returns 0, the callback's non-zero value, or -1 with
 * errno EINVAL (p invalid or fn NULL). */
MS_POOL_API int ms_pool_walk(struct ms_pool *p, unsigned flags, ms_pool_walk_fn fn, void *arg);

/* Print p's tree to out: one line per pool (address, name, site, own and
 * subtree bytes and blocks, children, limit, claims), indented by depth;
 * with MS_POOL_PRINT_BLOCKS one line per block under its pool (address,
 * size, site); with MS_POOL_PRINT_SITES the ms_pool_print_sites table
 * after it.  Returns 0, or -1 with errno EINVAL (or ENOMEM for the sites
 * table). */
MS_POOL_API int ms_pool_print(FILE *out, struct ms_pool *p, unsigned flags);

/* Print the live blocks of p's subtree grouped by allocation site, one line
 * per file:line with its bytes and block count, most bytes first.  Sites
 * are compared by file name and line.  Returns the number of sites, or -1
 * with errno EINVAL or ENOMEM (the table is malloc'd; nothing printed). */
MS_POOL_API int ms_pool_print_sites(FILE *out, struct ms_pool *p);

/* The root registry.  ms_pool_roots copies up to max registered roots
 * into out (oldest first) and returns how many there are; the pointers
 * may be stale as soon as the lock is dropped, so prefer
 * ms_pool_foreach_root, which holds the registry lock while fn runs (fn
 * must not create, destroy or move roots: deadlock).  foreach returns 0 or
 * fn's first non-zero value.  Thread: any. */
MS_POOL_API size_t ms_pool_roots(struct ms_pool **out, size_t max);
MS_POOL_API int ms_pool_foreach_root(int (*fn)(struct ms_pool *root, void *arg), void *arg);

/* Print every registered tree (ms_pool_print with flags) between a header
 * and a footer line, holding the registry lock.  For the memsleuth command
 * (signal/socket); see THREADS for when it may be called.  It waits at most
 * one second for the registry lock (a stopped thread may hold it), then
 * prints a "registry busy" line and fails with EBUSY.  It allocates nothing
 * itself unless flags has MS_POOL_PRINT_SITES (a malloc'd table); out's
 * stdio buffer is the caller's business.  Returns the number of roots
 * printed, or -1 with errno EINVAL (out NULL) or EBUSY. */
MS_POOL_API int ms_pool_dump_all(FILE *out, unsigned flags);

/* ======================================================================
 * DEBUG MODE
 * ======================================================================
 * Switched on by ms_pool_set_debug(1) or by MEMSLEUTH_POOL_DEBUG=1 in the
 * environment (read when the first root is created).  Blocks allocated
 * while it is on get an 8-byte canary (MS_POOL_FILL_TAIL) after their end,
 * the 8 bytes before them hold a 21-bit magic word, new blocks are filled with
 * MS_POOL_FILL_NEW; on free both canaries are checked and the block is
 * filled with MS_POOL_FILL_FREED and kept (not reused) with the site that
 * freed it.  Destroyed pools are kept in a quarantine (FIFO, at most
 * MEMSLEUTH_POOL_QUARANTINE bytes, default 64 MiB) marked dead with the
 * destroying site.  So these are reported with both sites, then the error
 * handler runs (default: print to stderr, abort):
 *   - a double free of a block (freed at X, freed again at Y),
 *   - allocating from, destroying, or otherwise using a destroyed pool,
 *   - a canary overwritten (checked on free, destroy and ms_pool_check),
 *   - a freed block written to (checked by ms_pool_check and at destroy).
 * Outside debug mode the same are caught on a best-effort basis (a freed
 * block reused, or a pool whose memory went back, cannot be recognized).
 * A pointer that is no block is recognized by its missing magic word: one
 * random 32-bit value in 2^21 passes for one.
 * Costs: a slower allocation path, 0-16 bytes more per block, freed memory
 * held until its pool is destroyed or leaves the quarantine. */

MS_POOL_API int ms_pool_set_debug(int on); /* returns the previous setting */
MS_POOL_API int ms_pool_debug(void);       /* the current setting */

/* Kinds of memory errors. */
#define MS_POOL_ERR_DOUBLE_FREE   1 /* a block freed again */
#define MS_POOL_ERR_DEAD_POOL     2 /* a destroyed pool used */
#define MS_POOL_ERR_BAD_POINTER   3 /* not a block / not a pool */
#define MS_POOL_ERR_CANARY        4 /* written before or after a block */
#define MS_POOL_ERR_USE_AFTER_FREE 5 /* a freed block written to */
#define MS_POOL_ERR_CORRUPT       6 /* the pool's bookkeeping is damaged */

/* What the error handler is told. */
struct ms_pool_error {
    int kind;               /* MS_POOL_ERR_* */
    const char *what;       /* e.g. "double free" */
    const void *ptr;        /* the block or pool */
    size_t size;            /* the block's size, if known */
    const char *file;       /* the current call */
    int line;
    const char *first_file; /* where it was freed/destroyed (or allocated, */
    int first_line;         /* for canary errors); NULL if unknown */
};

/* An error handler.  If it returns, the call that found the error fails
 * (NULL or -1, errno EINVAL) without touching the damaged memory. */
typedef void (*ms_pool_error_fn)(const struct ms_pool_error *err, void *arg);

/* Set the handler; NULL restores the default (print, abort).  Thread: any
 * (set it at start-up). */
MS_POOL_API void ms_pool_set_error_handler(ms_pool_error_fn fn, void *arg);

/* Check p's subtree (p NULL: every registered tree): the links between
 * pools, the byte counts, every block header and, for debug blocks, the
 * canaries and the freed-fill.  Each problem goes to the error handler.
 * Returns the number of problems (0: all good).  Thread: the one using
 * the tree (p NULL: see ms_pool_dump_all). */
MS_POOL_API int ms_pool_check(struct ms_pool *p);

/* ======================================================================
 * PROCESS-WIDE MEMORY, EVENTS, TESTING
 * ====================================================================== */

/* Set the chunk cache's size in bytes (default MEMSLEUTH_POOL_CACHE or 64
 * MiB; 0 disables it) and the debug quarantine's (MEMSLEUTH_POOL_QUARANTINE
 * or 64 MiB), trimming them now if needed (see "Memory layout": slabs with
 * all chunks free go back to malloc, other free chunks' pages to the
 * kernel).  ms_pool_trim empties both (also done at exit).  Thread: any. */
MS_POOL_API void ms_pool_set_cache_limit(size_t bytes);
MS_POOL_API void ms_pool_set_quarantine_limit(size_t bytes);
MS_POOL_API void ms_pool_trim(void);

/* Process-wide counters. */
struct ms_pool_stats {
    size_t raw_live;        /* underlying allocations not yet given back
                               (slabs of chunks, large blocks,
                               bookkeeping records) */
    size_t raw_bytes;       /* their bytes */
    size_t raw_total;       /* underlying allocations made so far */
    size_t cached_bytes;    /* free chunks in the cache (resident ones) */
    size_t quarantine_bytes;
    size_t roots;           /* registered roots */
};
MS_POOL_API void ms_pool_get_stats(struct ms_pool_stats *out);

/* Events, for tracing (memsleuth's trace).  The hook is called after the
 * event happened (DESTROY: before the pool's memory is released), on the
 * thread of the call, with the pointers and sizes involved.  Blocks freed
 * together with their pool have no FREE event (except those that had
 * destructors, adopters or came from another pool: they get theirs first):
 * the pool's DESTROY covers every block it still owned then.  When no hook is set each event costs one
 * predictable branch.
 * Under `memsleuth run` (with a trace) the same events, and the names set
 * with ms_pool_set_name, go into memsleuth's trace without any call of
 * yours: at its first use the library looks for the agent's table
 * (dlsym "memsleuth_agent_pool_hooks", versioned) and, if the agent writes a
 * trace, hands it every event; allocations then take the library's slower
 * path, as with a hook.  `memsleuth report` shows the pool trees, the memory
 * of each pool over time, the sites and the pools never destroyed.  The
 * agent's own report at exit then leaves the library's chunks out of its
 * malloc loss records and reports each pool tree never destroyed once, at
 * its root's creation site, with its subtree's bytes and blocks (these are
 * not counted as errors in its ERROR SUMMARY); a forked child's trace names
 * the pools it inherited.  Set
 * MEMSLEUTH_POOL_NO_AGENT=1 to keep the library away from the agent.  This
 * hook (ms_pool_set_event_hook) is independent of it: both get the events. */
#define MS_POOL_EV_CREATE   1 /* pool created: pool, other = parent */
#define MS_POOL_EV_DESTROY  2 /* pool destroyed: pool, other = parent */
#define MS_POOL_EV_ALLOC    3 /* block: pool, ptr, size */
#define MS_POOL_EV_FREE     4 /* block freed alone: pool, ptr, size */
#define MS_POOL_EV_REALLOC  5 /* block: pool, ptr (new), old_ptr, size */
#define MS_POOL_EV_REPARENT 6 /* ptr (block) or pool moved: other = new owner,
                                 old_owner = old one; ptr NULL for a pool */
#define MS_POOL_EV_ADOPT    7 /* other adopted ptr (or pool if ptr NULL) */
#define MS_POOL_EV_RELEASE  8 /* other dropped its claim on ptr (or pool) */

struct ms_pool_event {
    int kind;                  /* MS_POOL_EV_* */
    struct ms_pool *pool;      /* the pool concerned (block: its owner) */
    struct ms_pool *other;     /* parent / new owner / holder */
    struct ms_pool *old_owner; /* REPARENT: the previous owner */
    const void *ptr;           /* the block, or NULL */
    const void *old_ptr;       /* REALLOC: the old address */
    size_t size;               /* the block's (new) size */
    const char *file;          /* the call's site */
    int line;
};
typedef void (*ms_pool_event_fn)(const struct ms_pool_event *ev, void *arg);

/* Set (or clear, fn NULL) the event hook.  It must not call this library
 * on the tree the event is about.  Thread: set at start-up. */
MS_POOL_API void ms_pool_set_event_hook(ms_pool_event_fn fn, void *arg);

/* Fault injection, for tests (SQLite's fault simulator): after n more
 * successful underlying allocations (chunks, large blocks, bookkeeping),
 * the next one fails; with persistent != 0 every later one fails too.
 * n < 0 disarms.  ms_pool_fail_hits tells how many failures were injected
 * since the last ms_pool_set_fail_after.  Thread: set and read from one
 * thread while no other uses the library. */
MS_POOL_API void ms_pool_set_fail_after(long n, int persistent);
MS_POOL_API unsigned long ms_pool_fail_hits(void);

#ifdef __cplusplus
}
#endif

#endif /* MEMSLEUTH_POOL_H */
