/*
 * memsleuth - symbolize.h
 *
 * Turn code addresses of a running (or exited) process into source frames:
 * function name (demangled), raw/mangled symbol name, source file and line,
 * inlined call chain, module path and module offset.
 *
 * The caller describes every module explicitly (path + load bias + address
 * span); this module never consults /proc/self/maps or dl_iterate_phdr, so it
 * works both inside the traced process at exit (including for modules that
 * were dlclose'd before exit, as long as the file is still on disk) and in an
 * offline analyzer.
 *
 * Implementation: elfutils libdwfl/libdw (link with -ldw -lelf -ldl).
 * Debug info is taken from the module itself when it has DWARF, else from
 * /usr/lib/debug/.build-id/xx/yyyy.debug (build-id), else through
 * .gnu_debuglink along the debuginfo path (default ":.debug:/usr/lib/debug":
 * the module's directory, its .debug/ subdirectory, /usr/lib/debug/<dir>),
 * a candidate being accepted only if its build-id (or, without build-id,
 * its CRC) matches.  debuginfod is never consulted, and libdebuginfod is
 * never loaded, unless ms_sym_set_debuginfod(s, 1) is called.
 *
 * Not thread-safe: one struct ms_sym must be used by one thread at a time.
 * Never prints anything.  Uses malloc/free.
 */
#ifndef MEMSLEUTH_SYMBOLIZE_H
#define MEMSLEUTH_SYMBOLIZE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque symbolizer state: the module list, the opened ELF/DWARF data of the
   modules that were needed so far, the per-pc cache and a string pool. */
struct ms_sym;

/* One source-level frame.  All strings point into the ms_sym string pool and
   stay valid until ms_sym_free(). */
struct ms_sym_frame {
    const char *function;   /* demangled C++ name or C name; NULL if unknown */
    const char *mangled;    /* raw symbol name as in the symbol table / DWARF
                               linkage name (for valgrind-style suppressions
                               "fun:_Znwm"); NULL if unknown */
    const char *file;       /* base name of the source file (e.g.
                               "leak_one.c"), NULL if no line info */
    const char *dir_file;   /* full path of the source file when known, else
                               NULL */
    int line;               /* 0 if unknown */
    const char *module;     /* path of the module (as given to
                               ms_sym_add_module); NULL if pc in no module */
    unsigned long module_offset; /* pc - bias (0 if pc is in no module) */
    int inlined;            /* 1 if this frame is an inlined call inside the
                               next frame (out[i + 1]) */
};

/* Upper bound on the number of frames (inlined chain + the real function)
   ms_sym_resolve can return for one pc; for deeper inline chains the
   outermost inlined frames are dropped (the real function is always the
   last frame). */
#define MS_SYM_MAX_FRAMES 32

/* Create an empty symbolizer.  Returns NULL only if out of memory. */
struct ms_sym *ms_sym_new(void);

/* Release everything owned by `s` (ELF/DWARF handles, file descriptors,
   cache, strings).  All strings previously returned become invalid.
   NULL is accepted and ignored. */
void ms_sym_free(struct ms_sym *s);

/* Register a module (executable or shared object) whose file is `path`,
   mapped with load bias `bias` (runtime address = bias + ELF p_vaddr; 0 for
   a non-PIE ET_EXEC executable, dl_phdr_info.dlpi_addr / link_map.l_addr in
   general), whose loaded segments span the runtime range [lo, hi).
   Modules added later win when ranges overlap (a library loaded where an
   unloaded one was).  The path is copied; the file is opened lazily, at the
   first ms_sym_resolve that lands in the module, so a missing, unreadable,
   non-ELF or stripped file is not an error here.  Adding a module drops the
   per-pc cache (earlier returned strings stay valid).
   Returns 0 on success, -1 on bad arguments (NULL path, hi <= lo) or out of
   memory. */
int ms_sym_add_module(struct ms_sym *s, const char *path, unsigned long bias,
                      unsigned long lo, unsigned long hi);

/* Same as ms_sym_add_module, plus the GNU build-id of the image that was
   actually mapped (NT_GNU_BUILD_ID note, e.g. read from the PT_NOTE
   segment in memory; the bytes are copied).  The file at `path` is then
   used only if its build-id matches (so a library rebuilt or replaced on
   disk during the run gives no symbols rather than wrong ones); when it is
   missing or does not match, the separate debug file
   <root>/.build-id/xx/yyyy.debug (root: each absolute directory of the
   debuginfo path, default /usr/lib/debug) is used in its place if it
   exists.  build_id may be NULL only with build_id_len 0 (same as
   ms_sym_add_module).  Returns 0, or -1 like ms_sym_add_module. */
int ms_sym_add_module_build_id(struct ms_sym *s, const char *path,
                               unsigned long bias, unsigned long lo,
                               unsigned long hi, const void *build_id,
                               size_t build_id_len);

/* Resolve one code address.  `pc` is looked up as is (callers pass
   return_address - 1 for return addresses).  Fills up to `max` frames,
   innermost first: with inlining, out[0] is the innermost inlined function
   at pc with its file:line from the line table, out[1] its caller with the
   DW_AT_call_file/DW_AT_call_line of the inlined subroutine, etc., the last
   one being the real (out-of-line) function (inlined == 0).  If `max` is
   smaller than the chain, only the `max` innermost frames are filled.
   Returns the number of frames filled: >= 1 whenever out != NULL and
   max >= 1 (an address in no module gives one frame with module == NULL and
   function == NULL; an address in a module whose file cannot be read gives
   one frame with module and module_offset set and function == NULL).
   Returns 0 only if out == NULL, max < 1, s == NULL, or out of memory.
   Results are cached per pc; returned strings stay valid until
   ms_sym_free. */
int ms_sym_resolve(struct ms_sym *s, unsigned long pc,
                   struct ms_sym_frame *out, int max);

/* Optional: set the elfutils debuginfo search path used by debug-info
   lookups made after this call (they happen lazily, at the first resolve
   in a module) (same syntax as eu-addr2line --debuginfo-path, e.g.
   "+:.debug:/usr/lib/debug"; the default, used when never called or when
   `path` is NULL, is ":.debug:/usr/lib/debug").  The string is copied.
   Returns 0, or -1 if out of memory. */
int ms_sym_set_debuginfo_path(struct ms_sym *s, const char *path);

/* Optional: allow (enable != 0) or forbid (default) debuginfod lookups
   (governed by $DEBUGINFOD_URLS) when no local debug info is found, for
   lookups made after this call.  When allowed, elfutils' own
   dwfl_standard_find_debuginfo is used, which dlopen()s libdebuginfod
   (and libcurl & co.) and may block on the network: meant for the offline
   analyzer, not for use inside the traced process. */
void ms_sym_set_debuginfod(struct ms_sym *s, int enable);

/* One data symbol (ms_sym_data, ms_sym_tls).  Strings live in the pool. */
struct ms_sym_data {
    const char *name;        /* demangled symbol name, NULL if none covers it */
    unsigned long start;     /* runtime address of the symbol (ms_sym_tls: its
                                offset in the module's TLS block); without a
                                symbol, of the section */
    unsigned long size;      /* size of the symbol (or section) */
    const char *section;     /* ".bss", ".data", ... NULL if unknown */
    const char *module;      /* path of the module */
};

/* The data object (STT_OBJECT, sized) covering `addr` (a global: .data,
   .bss, ...); without one, the section.  Returns 1 when addr is in a module
   (out->module set; name/section NULL when the file is unreadable or has no
   symbols), 0 when it is in no module.  Scans the symbol table (meant for a
   few lookups: cache by [start, start + size)). */
int ms_sym_data(struct ms_sym *s, unsigned long addr, struct ms_sym_data *out);

/* The thread-local variable (STT_TLS) at `offset` in the TLS block of the
   module that holds address `module_addr`.  Returns like ms_sym_data. */
int ms_sym_tls(struct ms_sym *s, unsigned long module_addr, unsigned long offset,
               struct ms_sym_data *out);

#ifdef __cplusplus
}
#endif

#endif /* MEMSLEUTH_SYMBOLIZE_H */
