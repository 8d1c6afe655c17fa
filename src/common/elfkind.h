/* elfkind.h - is a file a statically linked ELF executable?  Used by the
 * launcher (for the program it starts) and by the agent (for a program the
 * traced one execs): LD_PRELOAD cannot reach a program without an
 * interpreter, so memsleuth says it cannot be traced.  No allocation and
 * raw system calls (the agent's own open and close hooks stay out of it):
 * the agent calls it in execve, possibly in a vfork child. */
#ifndef MS_ELFKIND_H
#define MS_ELFKIND_H

#include <elf.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* 1 when PATH is a 64-bit ELF file with neither PT_INTERP nor PT_DYNAMIC */
static inline int ms_elf_is_static(const char *path)
{
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    Elf64_Ehdr eh;
    int st = 0;
    if (syscall(SYS_pread64, fd, &eh, sizeof eh, (off_t)0) == (long)sizeof eh && !memcmp(eh.e_ident, ELFMAG, SELFMAG) &&
        eh.e_ident[EI_CLASS] == ELFCLASS64) {
        st = 1;
        for (int i = 0; i < eh.e_phnum && i < 256; i++) {
            Elf64_Phdr ph;
            if (syscall(SYS_pread64, fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (Elf64_Off)i * eh.e_phentsize)) !=
                (long)sizeof ph)
                break;
            if (ph.p_type == PT_INTERP || ph.p_type == PT_DYNAMIC)
                st = 0;
        }
    }
    syscall(SYS_close, fd);
    return st;
}

#endif
