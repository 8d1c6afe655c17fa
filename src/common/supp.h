/*
 * memsleuth - supp.h
 *
 * Suppression files: load valgrind (memcheck) and LeakSanitizer suppression
 * files and decide whether a leak record's (or another error's) allocation
 * stack is suppressed; count what each entry suppressed for valgrind's
 * "used_suppression" listing; generate valgrind suppressions
 * (--gen-suppressions style).
 *
 * Accepted input, line by line (leading and trailing white space of every
 * line is ignored; blank lines and lines whose first non-blank character is
 * '#' are comments, allowed anywhere, also inside an entry, as in valgrind):
 *
 *   valgrind entry                       LeakSanitizer lines
 *   {                                    leak:PATTERN
 *      NAME                              called_from_lib:libfoo.so  (ignored)
 *      TOOL[,TOOL...]:KIND
 *      [match-leak-kinds: K[,K...]]      (KIND Leak only; K = definite,
 *      [EXTRA]                            indirect, possible, reachable,
 *      fun:PATTERN | obj:PATTERN |        all, none)
 *      src:PATTERN[:LINE] | ...          (EXTRA: the syscall parameter line
 *      ...                                of Memcheck:Param (required), the
 *   }                                     "fn(arg)" line of FishyValue)
 *
 * Both formats may be mixed in one file (in practice a file uses one).
 * Valgrind entries whose tool list contains "Memcheck" are parsed and kept
 * (any memcheck kind: Leak, Free, Cond, Param, Addr8, Value4, ...); entries
 * for other tools only ("Helgrind:Race", "core:...", "Addrcheck:Leak") are
 * skipped up to their '}' without looking at their body, like valgrind's
 * memcheck does.  Sanitizer lines "TYPE:PATTERN" with TYPE other than "leak"
 * (called_from_lib, race, interceptor_via_lib, ...; any lower-case type) are
 * accepted and dropped.
 *
 * Matching (valgrind entries): frame lines are matched in order from
 * frames[0] (for a leak, the allocation function: malloc, _Znwm, ...); the
 * entry is a prefix pattern (the stack may be longer), "..." matches zero or
 * more frames.  PATTERN is a valgrind glob over the whole string: '*' any
 * sequence, '?' any one character, '\' quotes the next character.
 *   fun:  matched against fn_mangled and against fn (either may match);
 *         a frame with neither is matched as "???" (like valgrind).
 *   obj:  matched against obj; "???" when obj is NULL.
 *   src:  matched against file, and also against the part of file after its
 *         last '/' (so "src:foo.c" matches ".../dir/foo.c"); with ":LINE" the
 *         frame's line must be equal too.  A frame without file never
 *         matches a src: line.
 * Matching (LeakSanitizer "leak:" lines): a leak is suppressed when any frame
 * has a function name (fn or fn_mangled), a module path (obj) or a source
 * file path (file) matched by PATTERN, where '*' is a wildcard, the pattern
 * matches any substring unless anchored by a leading '^' and/or a trailing
 * '$', and an empty pattern matches any non-empty string.  (LSan's own
 * matcher sometimes misses a match when a literal part occurs more than once
 * in the name; this implementation always finds a match when one exists.)
 * "leak:" entries match every leak kind.
 *
 * Limits: a line may hold at most MS_SUPP_MAX_LINE bytes, an entry at most
 * MS_SUPP_MAX_FRAMES frame lines; NUL bytes are rejected (except trailing
 * NULs at the very end of a memory buffer).  Memory use is linear in the
 * size of the loaded text; every algorithm is polynomial (pattern matching
 * is at worst O(pattern length x string length) per frame, stack matching
 * O(entry frames x stack frames) pattern matches per entry).
 *
 * Errors are reported as one line without a trailing newline, e.g.
 *   memsleuth: suppressions file 'x.supp' line 7: expected 'fun:', 'obj:',
 *   'src:' or '...', got 'foo'
 * (one line in reality).  Text quoted from the input is cut after 60 bytes
 * and its non-printable and non-ASCII bytes are written as \xNN.
 *
 * Ownership: a struct ms_supp_set owns all entries and every string that
 * this API returns; they stay valid until ms_supp_set_free().  Nothing keeps
 * pointers to the caller's buffers, file names or frames after a call
 * returns.
 *
 * Thread safety: none inside one set.  Matching functions only read the set
 * and may run concurrently with each other, but not with loading,
 * ms_supp_count(), ms_supp_reset_counts() or ms_supp_set_free().  Separate
 * sets are independent.  Nothing here prints, uses global state, or depends
 * on the locale; the results are deterministic.
 *
 * Uses only libc (malloc/free, open/read/close).
 */
#ifndef MEMSLEUTH_SUPP_H
#define MEMSLEUTH_SUPP_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Longest accepted input line in bytes, not counting the '\n'. */
#define MS_SUPP_MAX_LINE 65536

/** Most frame lines ("fun:", "obj:", "src:", "...") one valgrind entry may
 *  hold (valgrind's VG_DEEPEST_BACKTRACE). */
#define MS_SUPP_MAX_FRAMES 500

/** Leak kinds, in valgrind's terms. */
enum ms_leak_kind {
    MS_LEAK_DEFINITE = 0,  /**< "definitely lost" */
    MS_LEAK_INDIRECT = 1,  /**< "indirectly lost" */
    MS_LEAK_POSSIBLE = 2,  /**< "possibly lost" */
    MS_LEAK_REACHABLE = 3  /**< "still reachable" */
};

/** One stack frame as the matcher sees it.  All members are optional;
 *  strings are NUL-terminated and only read during the call. */
struct ms_supp_frame {
    const char *fn;         /**< demangled function name or NULL */
    const char *fn_mangled; /**< raw symbol name or NULL */
    const char *obj;        /**< module path or NULL */
    const char *file;       /**< source file (base name or path) or NULL */
    int line;               /**< source line, 0 if unknown */
};

/** A set of suppressions (opaque). */
struct ms_supp_set;
/** One suppression: a valgrind entry or a "leak:" line (opaque). */
struct ms_supp_entry;

/**
 * @brief Create an empty suppression set.
 *
 * @return The new set, owned by the caller, to be released with
 *         ms_supp_set_free(); NULL if out of memory.
 */
struct ms_supp_set *ms_supp_set_new(void);

/**
 * @brief Release a set, its entries and all strings obtained from it.
 *
 * Every struct ms_supp_entry pointer and every string returned for this set
 * becomes invalid.
 *
 * @param[in]  set  The set to free; NULL is accepted and ignored.
 */
void ms_supp_set_free(struct ms_supp_set *set);

/**
 * @brief Keep only the first @p n frame lines of valgrind entries loaded
 *        from now on (valgrind's --num-callers behaviour).
 *
 * Valgrind ignores the frame lines of an entry beyond --num-callers (they
 * are still syntax-checked here, and the MS_SUPP_MAX_FRAMES limit still
 * applies to the whole entry), so an entry longer than the recorded stacks
 * can match.  Use this when stacks are captured with a depth limit.
 *
 * @param[in]  set  The set.
 * @param[in]  n    Frames to keep, >= 1; 0 keeps all (the default).
 * @return The previous value, or -1 (nothing changed) if @p set is NULL or
 *         @p n < 0.
 */
int ms_supp_set_num_callers(struct ms_supp_set *set, int n);

/**
 * @brief Load a suppression file and add its entries to @p set.
 *
 * Entries accumulate across calls, in load order.  The file is read in
 * bounded pieces (never more than about MS_SUPP_MAX_LINE + 64 KiB of it in
 * memory at once), so a device such as /dev/zero fails quickly (NUL byte)
 * instead of exhausting memory.  The path is copied: ms_supp_entry_file()
 * returns the copy.
 *
 * @param[in]  set     The set to add to.
 * @param[in]  path    The file to read.
 * @param[out] err     On failure, receives a one-line message without a
 *                     trailing newline, cut to @p errlen - 1 bytes and
 *                     NUL-terminated ("memsleuth: suppressions file 'P' line
 *                     N: ..." for syntax errors, "memsleuth: suppressions
 *                     file 'P': cannot open: <strerror>" or "...: read
 *                     error: <strerror>" for I/O errors, "...: out of
 *                     memory").
 *                     May be NULL.  Left untouched on success.
 * @param[in]  errlen  Size of @p err (0 writes nothing).
 * @return 0 on success.  -1 on error: cannot open or read the file, syntax
 *         error, line too long, NUL byte, out of memory, NULL @p set or
 *         @p path.  On failure the set is left exactly as it was before the
 *         call (no entry of the file is kept).
 */
int ms_supp_load_file(struct ms_supp_set *set, const char *path,
                      char *err, size_t errlen);

/**
 * @brief Parse suppressions from memory and add them to @p set.
 *
 * Same syntax, limits, error reporting and rollback on failure as
 * ms_supp_load_file().  The buffer needs no terminating NUL; NUL bytes at
 * its very end are ignored (so sizeof of a string literal works), other NUL
 * bytes are an error.  The buffer is not referenced after the call.
 *
 * @param[in]  set     The set to add to.
 * @param[in]  name    Name used in messages and as ms_supp_entry_file()
 *                     (copied); NULL means "<buffer>".
 * @param[in]  buf     The text; may be NULL only if @p len is 0.
 * @param[in]  len     Its length in bytes.
 * @param[out] err     As for ms_supp_load_file(); may be NULL.
 * @param[in]  errlen  Size of @p err.
 * @return 0 on success, -1 on error (set unchanged).
 */
int ms_supp_load_buffer(struct ms_supp_set *set, const char *name,
                        const char *buf, size_t len,
                        char *err, size_t errlen);

/**
 * @brief Number of entries held by the set (valgrind memcheck entries of
 *        any kind plus "leak:" lines; skipped entries are not counted).
 *
 * @param[in]  set  The set; NULL gives 0.
 */
size_t ms_supp_set_count(const struct ms_supp_set *set);

/**
 * @brief Find the first entry, in load order, suppressing a leak.
 *
 * Considers valgrind "Memcheck:Leak" entries whose match-leak-kinds include
 * @p kind (no match-leak-kinds line means all kinds) and LeakSanitizer
 * "leak:" lines.  Does not change any counter: call ms_supp_count() for the
 * leak once it is decided to suppress it.
 *
 * @param[in]  set     The set.
 * @param[in]  kind    The leak kind.
 * @param[in]  frames  The allocation stack, frames[0] being the allocation
 *                     function; only read during the call.
 * @param[in]  n       Number of frames.
 * @return The matching entry (owned by the set), or NULL if none matches,
 *         or if @p set is NULL, @p kind is out of range, @p n <= 0 or
 *         @p frames is NULL.
 */
struct ms_supp_entry *ms_supp_match_leak(struct ms_supp_set *set,
                                         enum ms_leak_kind kind,
                                         const struct ms_supp_frame *frames,
                                         int n);

/**
 * @brief Find the first memcheck entry of a given kind whose frames match.
 *
 * For non-leak errors, e.g. "Free" for an invalid or mismatched free (what
 * valgrind prints as Memcheck:Free).  match-leak-kinds is not consulted
 * (for "Leak" every Memcheck:Leak entry is a candidate); "leak:" lines never
 * match here; the EXTRA line of Param/FishyValue entries is not compared
 * (see ms_supp_match_error_ex()).
 *
 * @param[in]  set     The set.
 * @param[in]  kind    "KIND" or "TOOLS:KIND" (e.g. "Free", "Memcheck:Free";
 *                     TOOLS must then name Memcheck).  "Value0" is taken as
 *                     "Cond", as in valgrind.
 * @param[in]  frames  The error's stack (frames[0] innermost).
 * @param[in]  n       Number of frames.
 * @return The first matching entry, or NULL (also for NULL or unknown
 *         @p kind, @p n <= 0, NULL @p frames or @p set).
 */
struct ms_supp_entry *ms_supp_match_error(struct ms_supp_set *set,
                                          const char *kind,
                                          const struct ms_supp_frame *frames,
                                          int n);

/**
 * @brief Like ms_supp_match_error(), and if @p extra is not NULL the
 *        entry's EXTRA line (syscall parameter of Param, "fn(arg)" of
 *        FishyValue) must equal @p extra exactly.
 *
 * Entries without an EXTRA line never match when @p extra is not NULL.
 */
struct ms_supp_entry *ms_supp_match_error_ex(struct ms_supp_set *set,
                                             const char *kind,
                                             const char *extra,
                                             const struct ms_supp_frame *frames,
                                             int n);

/**
 * @brief The entry's name: the line after '{' for valgrind entries, the
 *        whole line ("leak:PATTERN") for LeakSanitizer lines.
 *
 * @return A string owned by the set; "" for a NULL entry.
 */
const char *ms_supp_entry_name(const struct ms_supp_entry *e);

/**
 * @brief The entry's kind: "Leak", "Free", "Param", ... for valgrind
 *        entries (as written), "leak" for LeakSanitizer lines.
 *
 * @return A string owned by the set; "" for a NULL entry.
 */
const char *ms_supp_entry_kind(const struct ms_supp_entry *e);

/**
 * @brief The file (path given to ms_supp_load_file() or name given to
 *        ms_supp_load_buffer()) the entry comes from.
 *
 * @return A string owned by the set; "" for a NULL entry.
 */
const char *ms_supp_entry_file(const struct ms_supp_entry *e);

/**
 * @brief Line of the entry's name (valgrind entries, as valgrind reports
 *        it in "used_suppression") or of the "leak:" line; 0 for NULL.
 */
int ms_supp_entry_line(const struct ms_supp_entry *e);

/**
 * @brief 1 if the entry is a LeakSanitizer "leak:" line, 0 if it is a
 *        valgrind entry or NULL.
 */
int ms_supp_entry_is_lsan(const struct ms_supp_entry *e);

/**
 * @brief Leak kinds an entry applies to, as a bit mask of
 *        (1u << enum ms_leak_kind): 0xf for "all", for a Leak entry without
 *        match-leak-kinds and for "leak:" lines; 0 for non-leak kinds,
 *        "match-leak-kinds: none" and NULL.
 */
unsigned ms_supp_entry_leak_kinds(const struct ms_supp_entry *e);

/**
 * @brief Record that @p e suppressed one leak record (or error) of
 *        @p blocks blocks totalling @p bytes bytes.
 *
 * Adds 1 to the entry's use count and the amounts to its totals (each
 * saturating at ULONG_MAX).  Matching never counts by itself.
 *
 * @param[in]  e       The entry (as returned by a match function); NULL is
 *                     ignored.
 * @param[in]  bytes   Bytes suppressed (valgrind counts direct + indirect).
 * @param[in]  blocks  Blocks suppressed.
 */
void ms_supp_count(struct ms_supp_entry *e, unsigned long bytes,
                   unsigned long blocks);

/**
 * @brief Read an entry's counters.  Any out pointer may be NULL; with a
 *        NULL entry they are set to 0.
 */
void ms_supp_entry_counts(const struct ms_supp_entry *e, unsigned long *count,
                          unsigned long *bytes, unsigned long *blocks);

/**
 * @brief Set all counters of all entries back to 0 (e.g. before a new leak
 *        search, as valgrind does per search).  NULL is ignored.
 */
void ms_supp_reset_counts(struct ms_supp_set *set);

/**
 * @brief Iterate over all entries in load order.
 *
 * @param[in]  set   The set.
 * @param[in]  prev  NULL to get the first entry, else an entry of @p set.
 * @return The entry after @p prev, or NULL at the end (also if @p set is
 *         NULL or @p prev does not belong to @p set).
 */
struct ms_supp_entry *ms_supp_next(struct ms_supp_set *set,
                                   struct ms_supp_entry *prev);

/**
 * @brief Iterate over the used entries (use count > 0) in load order.
 *
 * @param[in]  set     The set.
 * @param[in]  prev    NULL to start, else the entry returned last.
 * @param[out] count   Receives the use count of the returned entry (may be
 *                     NULL; left untouched when NULL is returned).
 * @param[out] bytes   Receives its suppressed bytes (may be NULL).
 * @param[out] blocks  Receives its suppressed blocks (may be NULL).
 * @return The next used entry after @p prev, or NULL when there is none
 *         (also if @p set is NULL or @p prev does not belong to it).
 */
struct ms_supp_entry *ms_supp_next_used(struct ms_supp_set *set,
                                        struct ms_supp_entry *prev,
                                        unsigned long *count,
                                        unsigned long *bytes,
                                        unsigned long *blocks);

/**
 * @brief Name of a leak kind for match-leak-kinds ("definite", "indirect",
 *        "possible", "reachable"); NULL if out of range.  Static string.
 */
const char *ms_supp_leak_kind_name(enum ms_leak_kind kind);

/**
 * @brief Write a valgrind suppression for a leak, as valgrind's
 *        --gen-suppressions=all prints it:
 * @code
 * {
 *    <insert_a_suppression_name_here>
 *    Memcheck:Leak
 *    match-leak-kinds: definite
 *    fun:malloc
 *    fun:main
 * }
 * @endcode
 * (with a final newline).  One line per frame: "fun:" + fn_mangled when
 * non-empty, else "fun:" + fn when non-empty, else "obj:" + obj when
 * non-empty, else "obj:*".  Names are written so that the text loads back
 * and matches the same stack: '\' is doubled, control characters and
 * trailing blanks become '?', a name too long for one line is cut and ends
 * in '*'.  At most MS_SUPP_MAX_FRAMES frames are written (a prefix still
 * matches).  If @p kind is out of range the match-leak-kinds line is left
 * out (the entry then matches all kinds).
 *
 * @param[out] buf     Destination; may be NULL if @p len is 0.
 * @param[in]  len     Size of @p buf; if the text does not fit it is cut and
 *                     still NUL-terminated (when @p len > 0).
 * @param[in]  kind    The leak kind.
 * @param[in]  frames  The stack, frames[0] the allocation function.
 * @param[in]  n       Number of frames.
 * @return The length of the full text (excluding the NUL), as snprintf does;
 *         -1 if @p n <= 0 or @p frames is NULL (then buf[0] = '\0' when
 *         @p len > 0).
 */
int ms_supp_format_leak(char *buf, size_t len, enum ms_leak_kind kind,
                        const struct ms_supp_frame *frames, int n);

/**
 * @brief Like ms_supp_format_leak() for another memcheck error kind:
 *        "Memcheck:KIND", then @p extra on its own line when not NULL,
 *        then the frames.
 *
 * @param[in]  kind   A memcheck kind name, e.g. "Free", "Addr8", "Param".
 * @param[in]  extra  The EXTRA line: required for "Param" (the system call
 *                    parameter, e.g. "write(buf)"), optional for
 *                    "FishyValue" ("fn(arg)"), must be NULL for other
 *                    kinds.  It must load back unchanged: non-empty, no
 *                    control characters, no leading or trailing blank, not
 *                    starting with '#', '{' or '}', not a frame line.
 * @return As ms_supp_format_leak(); -1 also for an unknown @p kind or a
 *         missing, forbidden or unusable @p extra.
 */
int ms_supp_format_error(char *buf, size_t len, const char *kind,
                         const char *extra,
                         const struct ms_supp_frame *frames, int n);

#ifdef __cplusplus
}
#endif

#endif /* MEMSLEUTH_SUPP_H */
