/* unwind.h - fast stack capture for memsleuth's agent (x86-64 Linux).
 *
 * The agent records a call stack on every allocation.  libunwind's
 * unw_backtrace costs ~250-300 ns for 15 frames; a frame-pointer walk ~10 ns,
 * but distribution binaries have no frame pointers.  This module compiles
 * each loaded module's .eh_frame (found through PT_GNU_EH_FRAME, i.e.
 * .eh_frame_hdr) into a compact sorted table of simple rules, ORC-style:
 *
 *   row = { pc offset from the module's load base (u32), rule index (u16) }
 *   rule = { kind, CFA = RSP+k | RBP+k | [RBP+k], RBP saved at CFA+k or not }
 *
 * (6 bytes per row, plus an 8-byte rule dictionary per module and a 4-byte
 * lookup entry per 256 bytes of text), and walks the stack with it: per frame
 * one range check, one table lookup and one or two loads from the stack.
 * Whatever a row cannot express (CFA expressions other than gcc's stack
 * realignment, CFA on another register, expression rules for the return
 * address or RBP, the PLT's expression CFA, code without unwind info inside
 * a module) is a "fallback" row: the rest of that stack comes from libunwind's
 * cursor API (see ms_unwind_capture).  Signal frames (__restore_rt) are
 * handled natively from the ucontext on the stack.
 *
 * The stacks are identical, element by element, to unw_backtrace's called
 * from the same place (the unit test tests/unit/test_unwind.c proves it on
 * -O2 -fomit-frame-pointer and -O0 code, through libc, signal handlers and
 * C++ exception handling).
 *
 * Memory: tables live in mmap'd memory (never malloc: the module runs inside
 * malloc hooks) and are never unmapped; the table of a library that is
 * dlclose'd is kept (dead) and reused if the same file is loaded again.
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
 * at a return address below 0x4000, at a pc in no loaded module (JIT or
 * unknown code: the unknown pc itself is stored, nothing after it), at a CFA
 * that does not grow or leaves the thread's stack, or at max.
 *
 * Never crashes (every stack read is checked against the current thread's
 * stack bounds, cached per thread), never calls malloc, never takes a lock
 * on the fast path.  Tables are built lazily, the first time a pc of a module
 * is seen: building calls dl_iterate_phdr (the loader's lock) and mmap and
 * takes this module's build lock; a thread that finds the build lock held by
 * another thread waits for it (bounded, then falls back), a nested call from
 * a signal handler that interrupted this thread's own build falls back.
 * Once every module on the stack has a table the call is async-signal-safe.
 *
 * Fallback: on a row the table cannot express, on a held build lock, or when
 * the stack pointer is on no known stack (neither the thread's stack nor its
 * sigaltstack), the stack is finished with libunwind's cursor API: a
 * unw_getcontext of the current frame, unw_init_local, unw_step until the
 * frame with pc == pcs[0] and sp == the caller's sp, then unw_step along the
 * frames already found (adopting libunwind's pcs from the first difference,
 * if any) and on to the end.  The cursor API is signal-safe (libunwind blocks
 * signals around its locks), so this is what a signal handler gets too. */
int ms_unwind_capture(uintptr_t *pcs, int max);

/* Counters for the verification mode and statistics.
 *   fast_frames      pcs produced by the table walk
 *   fallback_frames  pcs produced by libunwind (in fallback stacks)
 *   fallback_stacks  captures that needed libunwind
 *   tables_built     module tables built (a reused table is not counted)
 *   table_bytes      bytes mapped for those tables
 *   verify_checked   stacks compared by ms_unwind_capture_verify
 *   verify_mismatch  of those, stacks that differed from unw_backtrace's
 * fast_frames is accumulated per thread and published every 256 frames:
 * another thread's last (< 256) frames may be missing; the calling thread's
 * own are always included. */
struct ms_unwind_stats {
    uint64_t fast_frames, fallback_frames, fallback_stacks, tables_built, table_bytes, verify_checked,
        verify_mismatch;
};
void ms_unwind_stats(struct ms_unwind_stats *out);

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
 * unloaded ones and keeps their tables (mapped, marked dead) for reuse if the
 * same file is loaded again.  Safe while other threads unwind: tables are
 * never unmapped, the module list is read under a sequence counter and a
 * capture that overlapped a change is redone.  Newly dlopen'd modules are
 * found without this call (a pc in no known module that the loader knows,
 * by _dl_find_object, triggers a rescan). */
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

#endif
