/* unwind.h - fast stack capture for memsleuth's agent (x86-64 Linux).
 *
 * The agent records a call stack on every allocation.  libunwind's
 * unw_backtrace costs ~150-300 ns for 15-20 frames; a frame-pointer walk
 * ~10-15 ns, but distribution binaries have no frame pointers.  This module
 * compiles each loaded module's .eh_frame (found through PT_GNU_EH_FRAME,
 * i.e. the sorted .eh_frame_hdr table, or a scan of .eh_frame) into a
 * compact sorted table of simple rules, ORC-style, and walks the stack with
 * it.
 *
 * Table (per module, built lazily the first time one of its pcs is seen):
 *   pcs[n]    u32, offset from the module's load base, ascending; row i
 *             covers [pcs[i], pcs[i+1]); consecutive equal rows merged
 *   ridx[n]   u16, index into the module's rule dictionary
 *   rules[m]  8 bytes: kind, CFA = RSP+k | RBP+k (k: s32), RBP saved at
 *             CFA+r (r: s16) or unchanged
 *   blocks[]  u32 per 256 bytes of code: first row to search (the search is
 *             then over a handful of rows, branch-free)
 * = 6 bytes per row + 8 per distinct rule + 1 byte per 64 bytes of code
 * (libc.so.6: 28379 rows, 300 rules, 192 KiB).  Kinds:
 *   STD       CFA = RSP/RBP + k, RA = [CFA-8], RBP = [CFA+r] or same
 *   ALIGNED   gcc's stack realignment (DRAP): CFA = [RBP+k], RBP = [RBP]
 *   SIGNAL    __restore_rt (FDE with the 'S' augmentation whose code is
 *             48 c7 c0 0f 00 00 00 0f 05): rip, rsp, rbp from the ucontext
 *             at rsp; the next pc is the interrupted one, looked up as is
 *   END       return address undefined (_start, clone3): the stack ends
 *   NOINFO    no FDE covers the pc: handled as unw_backtrace handles it
 *             (__restore_rt or old-style PLT bytes, else a frame-pointer
 *             guess CFA = RBP+16, refused when RBP is 0, below SP or more
 *             than 0x4000 above it)
 *   FALLBACK  anything else: CFA on another register or an expression other
 *             than DRAP's and the PLT's, expression/register rules for the
 *             return address or RBP, DW_CFA_val_*, unknown opcodes
 *             (in libc: __longjmp, setcontext, __vfork, __longjmp_chk)
 * The PLT's expression CFA (RSP + 8 + 8*((RIP & 15) >= 11)) is evaluated
 * into two rows per 16-byte entry, so PLT stubs need no fallback.
 *
 * Walk: per frame, a per-thread cache of pc -> rule (one load, one compare)
 * or a module range search + the table search, then one or two loads from
 * the stack, each checked against the current thread's stack bounds.  A
 * per-thread memo of recent walks (their start state, the words they read
 * and their frames' states) makes a repeated stack cost a re-read of those
 * words (independent loads, about a frame-pointer walk), and a stack that
 * shares its outer frames with a remembered one is walked only down to
 * where the states meet.  A remembered result is used only if every word
 * its walk read is unchanged, so it is exactly what the walk would give.
 *
 * The stacks are identical, element by element, to unw_backtrace's called
 * from the same place (tests/unit/test_unwind.c: -O2 -fomit-frame-pointer
 * and -O0 code, alloca, VLAs, realigned frames, 100 KB frames, libc's
 * qsort/bsearch, signal handlers incl. a sigaltstack and a SIGALRM storm on
 * a busy loop, C++ exception handling, threads with dlopen/dlclose, fork).
 *
 * Memory: tables live in mmap'd memory (never malloc: the module runs inside
 * malloc hooks) and are never unmapped; the table of a library that is
 * dlclose'd is kept (dead) and reused if the same file is loaded again.
 * Per thread: 10 KiB of static TLS (initial-exec) for the stack bounds, the
 * rule cache (256 entries) and the memo (2 ways + 1 being recorded).
 *
 * Limitations (see also ms_unwind_capture):
 *   - a pc in no loaded module (JIT code) ends the stack; unw_backtrace
 *     would go on guessing through RBP;
 *   - where libunwind's fast trace and its cursor API disagree (after a
 *     frame without FDE its cursor API continues from a wrong CFA), the
 *     result is unw_backtrace's, except in a stack that also needs the
 *     fallback, where it is the cursor API's (so is unw_backtrace's then:
 *     its own fallback is the cursor API);
 *   - libunwind caches per pc the kind of a no-FDE frame the first time it
 *     meets it; this module decides each time;
 *   - building a table or falling back calls dl_iterate_phdr: in a child
 *     forked while another thread was inside dl_iterate_phdr that deadlocks
 *     (glibc's fork does not take the loader's lock; libunwind has the same
 *     problem): build the tables before forking (the agent warms up).
 */
#ifndef MS_UNWIND_H
#define MS_UNWIND_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Capture the return addresses of the calling thread's stack.
 *
 * pcs[0] is the return address of this call, i.e. the pc in the function
 * that called ms_unwind_capture just after the call instruction; pcs[1] is
 * that function's return address in its caller, and so on outwards.  This is
 * exactly what unw_backtrace(pcs, max) stores when it is called from the same
 * call instruction (libunwind 1.6 does not include unw_backtrace's own frame
 * either): the unit test calls both through one indirect call instruction
 * and compares the arrays element by element, including pcs[0].  Return
 * addresses are stored as they are (not minus 1); the pc after a signal
 * frame is the interrupted pc (not a return address), as libunwind stores it.
 *
 * Returns the number of pcs stored (0 <= n <= max).  The walk ends at the
 * outermost frame (a row whose return address is undefined: _start, clone3),
 * at a return address below 0x4000 (as unw_backtrace), at a pc in no loaded
 * module (JIT or unknown code: the unknown pc itself is stored, nothing
 * after it), at a CFA that does not grow or leaves the thread's stack, or at
 * max.
 *
 * Never crashes (every stack read is checked against the current thread's
 * stack bounds, found once per thread by a raw read of /proc/self/maps: the
 * main thread's [stack], another thread's stack mapping up to its
 * descriptor; a sigaltstack is asked for with sigaltstack(2) when the stack
 * pointer is elsewhere), never calls malloc, never takes a lock on the fast
 * path.  Tables are built lazily, the first time a pc of a module is seen:
 * building calls dl_iterate_phdr (the loader's lock) and mmap and takes this
 * module's build lock, with signals blocked meanwhile (as libunwind blocks
 * them around its dl_iterate_phdr); a thread that finds the build lock held
 * by another thread waits for it (bounded, then falls back), a nested call
 * from a synchronous signal handler that finds the build lock held by its
 * own thread falls back.  Once every module on the stack has a table the
 * call is async-signal-safe.
 *
 * Fallback: on a FALLBACK row, when a table cannot be built now, or when the
 * stack pointer is on no known stack (neither the thread's stack nor its
 * sigaltstack: a coroutine's), the stack is finished with libunwind's cursor
 * API: a unw_getcontext in the current frame, unw_init_local, unw_step until
 * the frame with ip == pcs[0] and sp == the caller's sp (our first frame),
 * then unw_step along the frames already found (taking libunwind's pcs from
 * the first difference on, if any) and on to the end or max.  This is
 * exactly unw_backtrace's own fallback (it restarts with the cursor API when
 * its fast trace meets a frame it cannot trace), and the cursor API is
 * signal-safe (libunwind blocks signals around its locks). */
int ms_unwind_capture(uintptr_t *pcs, int max);

/* Right after a capture on this thread: a word the caller may keep for
 * that stack (the agent keeps its stack id there), and *same = 1 when the
 * stack is exactly the one the word was last kept for (so a nonzero word
 * is that stack's); NULL when the capture had no such word.  The word
 * lives in the per-thread template the capture went through (see
 * unwind.c); it is reset to 0 whenever that template's stack changes.
 * Only for captures that no signal handler of this thread can come
 * between: the agent calls it with its hooks marked busy, and the
 * captures of the handlers it defers are made with ms_unwind_nocache. */
uint32_t *ms_unwind_stack_tag(int *same);

/* The stack-id cache (unwind.c, struct kc_ent).  Right after a capture on
 * this thread (same conditions as ms_unwind_stack_tag): the id kept for
 * that stack, 0 if none (the capture did not come from the cache).  The
 * pcs were written all the same. */
uint32_t ms_unwind_kept_id(void);

/* After a capture that ms_unwind_kept_id gave 0 for: keep id for that
 * stack.  The caller's id must stand for exactly the capture's frames from
 * lead on (the first lead frames are the caller's own, 1..6 of them), as
 * ms_stack_get gives them; the cache checks every hit against those. */
void ms_unwind_keep_id(uint32_t id, int lead);

/* the verification mode: an id from the stack-id cache was checked
 * against the one the caller computed from the pcs (same: they agreed) */
void ms_unwind_verify_kept_id(int same);

/* on (1): the captures of this thread leave the per-thread templates and
 * their tags alone until the matching call with 0 (they still use the rule
 * cache and the memo); calls nest */
void ms_unwind_nocache(int on);

/* 1 once after a capture of this thread went through libunwind or built a
 * table: their frames reach far below the caller (the hooks clear it) */
int ms_unwind_took_deep(void);

/* glibc's x86-64 signal return trampoline, __restore_rt: mov $15, %rax;
 * syscall.  A signal handler's frame returns to it. */
extern const uint8_t ms_restore_rt_code[9];

/* Counters for the verification mode and statistics.
 *   fast_frames      pcs produced without libunwind (table walk or memo)
 *   fallback_frames  pcs produced by libunwind (in fallback stacks)
 *   fallback_stacks  captures that needed libunwind
 *   tables_built     module tables built (a reused table is not counted)
 *   table_bytes      bytes mapped for those tables
 *   verify_checked   stacks compared by ms_unwind_capture_verify
 *   verify_mismatch  of those, stacks that differed from unw_backtrace's,
 *                    and ids from the stack-id cache that differed
 *   verify_kept      ids from the stack-id cache checked against the
 *                    caller's own (ms_unwind_verify_kept_id)
 * fast_frames is accumulated per thread and published every 256 frames:
 * another thread's last (< 256) frames may be missing; the calling thread's
 * own are always included. */
struct ms_unwind_stats {
    uint64_t fast_frames, fallback_frames, fallback_stacks, tables_built, table_bytes, verify_checked,
        verify_mismatch, verify_kept;
};
void ms_unwind_stats(struct ms_unwind_stats *out);

/* One built table (per module): ms_unwind_tables fills up to max of them,
 * newest first, and returns how many there are.  rows * 6 + rules * 8 +
 * 4 per 256 bytes of code (the lookup index) + a header, rounded up to
 * pages, is bytes.  loaded is 0 for a table kept after its module was
 * unloaded (reused if the same file is loaded again).  Takes the build
 * lock: not for signal handlers. */
struct ms_unwind_table_info {
    char name[128]; /* the module's path (its last 127 bytes), "" for the main program */
    uint32_t rows, rules, fallback_rows, loaded;
    uint64_t bytes;
};
int ms_unwind_tables(struct ms_unwind_table_info *out, int max);

/* Verification: capture the caller's stack with the fast path (exactly as
 * ms_unwind_capture would) and with libunwind's unw_backtrace, count the
 * stacks that differ (length or any element) and return the fast result.
 * max is limited to 256.  Not async-signal-safe (unw_backtrace is not). */
int ms_unwind_capture_verify(uintptr_t *pcs, int max);

/* The last stack that ms_unwind_capture_verify found different: copies up to
 * max pcs of the fast result to fast[] and of unw_backtrace's to ref[],
 * stores the counts in *nfast and *nref; returns 0 if there was none.
 * For tests and diagnostics. */
int ms_unwind_last_mismatch(uintptr_t *fast, int *nfast, uintptr_t *ref, int *nref, int max);

/* Forget tables of modules that are no longer loaded: call after dlclose.
 * Rescans the loaded modules (dl_iterate_phdr), drops the address ranges of
 * unloaded ones and keeps their tables (mapped, no longer referenced) for
 * reuse if the same file (device, inode, size, mtime, layout) is loaded
 * again.  Safe while other threads unwind: tables are never unmapped, the
 * module list is read under a sequence counter (seqlock) and a capture that
 * overlapped a change is redone; the per-thread caches are tied to the
 * sequence number.  Newly dlopen'd modules are found without this call (a
 * pc in no known module that the loader knows, by the lock-free
 * _dl_find_object, triggers a rescan); without it after a dlclose, a
 * library later mapped at the same addresses would be walked with the old
 * table.  Not for signal handlers. */
void ms_unwind_invalidate(void);

/* For tests: walk from an arbitrary register state (pc, sp, rbp) of the
 * current thread, pc_is_ra != 0 when pc is a return address (looked up at
 * pc - 1).  Garbage is allowed: the walk reads only the current thread's
 * stack and ends where the state makes no sense. */
int ms_unwind_capture_from(uintptr_t *pcs, int max, uintptr_t pc, uintptr_t sp, uintptr_t bp,
                           int pc_is_ra);

#ifdef __cplusplus
}
#endif

/* The hash of a stack's pcs (never 0), for the stack table and the
 * unwinder's stack-id cache: four independent lanes (a chain of one multiply per pc would cost a
 * multiply's latency per frame), then the full mix */
static inline uint64_t ms_hash_pcs(const uintptr_t *pcs, int n)
{
    uint64_t a = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n, b = 0xc2b2ae3d27d4eb4fULL, c = 0x165667b19e3779f9ULL,
             d = 0x27d4eb2f165667c5ULL;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        a = (a ^ pcs[i]) * 0xff51afd7ed558ccdULL;
        b = (b ^ pcs[i + 1]) * 0xc4ceb9fe1a85ec53ULL;
        c = (c ^ pcs[i + 2]) * 0x9e3779b97f4a7c15ULL;
        d = (d ^ pcs[i + 3]) * 0xd6e8feb86659fd93ULL;
        a ^= a >> 29;
        b ^= b >> 31;
        c ^= c >> 27;
        d ^= d >> 33;
    }
    for (; i < n; i++)
        a = (a ^ pcs[i]) * 0xff51afd7ed558ccdULL, a ^= a >> 29;
    uint64_t h = a ^ (b << 1 | b >> 63) ^ (c << 2 | c >> 62) ^ (d << 3 | d >> 61);
    h ^= h >> 33; /* the full mix (murmur3's finalizer) */
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h ? h : 1;
}

#endif
