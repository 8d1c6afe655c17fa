/* lock.h - the agent's short-section lock (the live-block table's shards).
 *
 * A futex mutex in the manner of Drepper's "Futexes Are Tricky" (mutex2):
 * 0 free, 1 locked, 2 locked with waiters.  Uncontended, lock is one
 * compare-and-swap and unlock one exchange, inline: about half the cost of
 * glibc's pthread_mutex_lock/unlock pair, which also keeps an owner and a
 * user count and is reached through two calls.  Waiters sleep in the kernel
 * after a short spin, so a holder that was preempted costs no busy CPU.
 * Not recursive; after fork the child sets its locks to 0 (ms_lock_init).
 */
#ifndef MS_LOCK_H
#define MS_LOCK_H

#include <stdint.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct {
    uint32_t v;
} ms_lock_t;

#define MS_LOCK_INIT {0}

static inline void ms_lock_init(ms_lock_t *l)
{
    __atomic_store_n(&l->v, 0, __ATOMIC_RELAXED);
}

static __attribute__((noinline, cold)) void ms_lock_slow(ms_lock_t *l)
{
    for (int i = 0; i < 64; i++) {
        __builtin_ia32_pause();
        uint32_t z = 0;
        if (__atomic_load_n(&l->v, __ATOMIC_RELAXED) == 0 &&
            __atomic_compare_exchange_n(&l->v, &z, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return;
    }
    while (__atomic_exchange_n(&l->v, 2, __ATOMIC_ACQUIRE) != 0)
        syscall(SYS_futex, &l->v, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
}

static inline void ms_lock(ms_lock_t *l)
{
    uint32_t z = 0;
    if (__builtin_expect(__atomic_compare_exchange_n(&l->v, &z, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED), 1))
        return;
    ms_lock_slow(l);
}

static inline void ms_unlock(ms_lock_t *l)
{
    if (__builtin_expect(__atomic_exchange_n(&l->v, 0, __ATOMIC_RELEASE) == 2, 0))
        syscall(SYS_futex, &l->v, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

#endif
