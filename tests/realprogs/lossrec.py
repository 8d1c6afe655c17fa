#!/usr/bin/env python3
"""lossrec.py - read the loss records of a valgrind-style leak report (valgrind
memcheck's own, or memsleuth's, which uses the same layout) and compare them.

  lossrec.py summary LOG                    the LEAK SUMMARY figures, one line per kind
  lossrec.py show LOG [KINDS]               the records, one per line, frames as keys
  lossrec.py same MEMSLEUTH_LOG VALGRIND_LOG KINDS [FRAMES]
        exit 0 when both logs hold the same loss records of KINDS (comma list of
        definite,indirect,possible,reachable): the same kind, bytes, blocks and
        the same first FRAMES frames (default: all shown) for every record, as a
        multiset; otherwise print the records only one side has, and exit 1
  lossrec.py has LOG KIND BYTES[/DIRECT] BLOCKS FRAME...
        exit 0 when LOG holds a record of KIND with exactly BYTES (of which DIRECT
        in the block itself, the rest indirectly lost behind it) in BLOCKS whose
        stack shows every FRAME (a frame key, see below), in this order

A frame's key is what both tools can agree on: the function name with its
file:line when the report has them, else with its module's file name; for a
frame without a name (???), the module's file name, and for a program (not a
library) the offset within it: valgrind maps a non-PIE program at its link
address and a PIE one at 0x108000, so its address gives the offset, and
memsleuth prints [module+off].  valgrind prints the address of a caller frame
as return address - 1 and so does memsleuth's [module+off].  The allocator's
own frame (malloc, calloc, realloc, operator new ...) is kept by name only:
the two tools interpose it from different libraries.  Stacks end where
valgrind ends them (normalize()), and a frame valgrind could not place at all
("???" alone: a library unloaded before exit) matches any frame (compare()).
"""
import collections
import os
import re
import sys

KINDS = {"definitely": "definite", "indirectly": "indirect", "possibly": "possible",
         "still": "reachable"}
HEAD = re.compile(r"^==\d+== ([\d,]+)(?: \(([\d,]+) direct, ([\d,]+) indirect\))? bytes in ([\d,]+) blocks"
                  r" are (definitely|indirectly|possibly|still) (?:lost|reachable) in loss record")
FRAME = re.compile(r"^==\d+==\s+(?:at|by) 0x([0-9A-Fa-f]+): (.*)$")
SUMMARY = re.compile(r"^==\d+==\s+(definitely lost|indirectly lost|possibly lost|still reachable|suppressed):"
                     r" ([\d,]+) bytes in ([\d,]+) blocks")

_etype = {}


def is_exec(path):
    """True for an ET_EXEC ELF file (loaded at its link address)."""
    if path not in _etype:
        try:
            with open(path, "rb") as f:
                h = f.read(18)
            _etype[path] = len(h) == 18 and h[:4] == b"\x7fELF" and h[16] == 2
        except OSError:
            _etype[path] = False
    return _etype[path]


VG_PIE_BASE = 0x108000     # valgrind 3.x, amd64: where a PIE main program is mapped
VG_LIB_BASE = 0x4000000    # and where the dynamic linker and the libraries start


def is_program(path):
    """An executable, not a library: valgrind's address of a frame in it gives
    the offset (see VG_PIE_BASE); for a library it does not."""
    return is_exec(path) or (".so" not in os.path.basename(path) and os.access(path, os.X_OK))


def frame_key(addr, rest, first):
    """The comparable key of one frame line's text after 'at/by 0xADDR: '."""
    m = re.match(r"^(.*?) \[(.+)\+0x([0-9a-f]+)\] \(in (.+)\)$", rest)   # memsleuth, no name
    if m:
        fn, mod, off = m.group(1), m.group(4), int(m.group(3), 16)
    else:
        m = re.match(r"^(.*) \(in (.+)\)$", rest)
        if m:
            fn, mod, off = m.group(1), m.group(2), None
            if fn == "???" and addr < VG_LIB_BASE:
                # valgrind maps the main program below its libraries: a non-PIE
                # one at its link address, a PIE one at 0x108000
                off = addr if is_exec(mod) else addr - VG_PIE_BASE
        else:
            m = re.match(r"^(.*) \((.+:\d+)\)$", rest)
            if m:
                return "%s (%s)" % (m.group(1), m.group(2))
            return rest
    if first:
        # valgrind reports realloc(NULL, n) as malloc (its realloc calls its malloc)
        return "malloc" if fn == "realloc" else fn
    if fn != "???":
        return "%s in %s" % (fn, os.path.basename(mod))
    if off is not None and is_program(mod):
        return "??? in %s+0x%x" % (os.path.basename(mod), off)
    return "??? in %s" % os.path.basename(mod)


def records(path):
    """[(kind, bytes, direct bytes, blocks, (frame keys...))] in the order of the log."""
    out = []
    cur = None
    with open(path, errors="replace") as f:
        for line in f:
            m = HEAD.match(line)
            if m:
                total = int(m.group(1).replace(",", ""))
                direct = int(m.group(2).replace(",", "")) if m.group(2) else total
                cur = [KINDS[m.group(5)], total, direct, int(m.group(4).replace(",", "")), []]
                out.append(cur)
                continue
            if cur is not None:
                m = FRAME.match(line)
                if m:
                    cur[4].append(frame_key(int(m.group(1), 16), m.group(2).strip(), not cur[4]))
                    continue
                if not line.strip().strip("=0123456789"):   # the blank line ending a record
                    cur = None
    return [(k, b, d, n, normalize(fr)) for k, b, d, n, fr in out]


BELOW = re.compile(r"^(\(below main\)|__libc_start_call_main|__libc_start_main(@@GLIBC_[\d.]+)?)( |$)")
ALLOC = re.compile(r"^(malloc|calloc|realloc|reallocarray|memalign|aligned_alloc|posix_memalign|valloc|"
                   r"operator new|operator new\[\])(\(.*\))?( in .*)?$")


def normalize(frames):
    """What valgrind shows of a stack, in memsleuth's terms too:
    - valgrind stops at main (--show-below-main=no); when main has no name it
      calls the first frame below main "(below main)"; memsleuth shows glibc's
      __libc_start_call_main, __libc_start_main and _start;
    - valgrind replaces operator new wherever it is defined (also in a program
      that links libstdc++ statically), memsleuth sees the malloc it calls:
      the allocator frames on top collapse into the outermost one, by name."""
    frames = list(frames)
    while len(frames) > 1 and ALLOC.match(frames[1]):
        frames = [ALLOC.match(frames[1]).group(1) + (ALLOC.match(frames[1]).group(2) or "")] + frames[2:]
    out = []
    for fr in frames:
        if BELOW.match(fr):
            out.append("(below main)")
            break
        out.append(fr)
        if fr == "main" or fr.startswith("main in ") or fr.startswith("main ("):
            break
    return tuple(out)


WILD = "???"   # valgrind: a frame in a library unloaded before exit, no name, no module


def frames_match(ms, vg):
    return len(ms) == len(vg) and all(v == WILD or m == v for m, v in zip(ms, vg))


def compare(ms_recs, vg_recs):
    """Pair the records: exact first, then those of valgrind holding frames it
    could not name (any frame of memsleuth's may stand there).  Returns the
    unpaired records of each side."""
    a = collections.Counter(ms_recs)
    b = collections.Counter(vg_recs)
    common = a & b
    a, b = a - common, b - common
    left_a = list(a.elements())
    left_b = []
    for r in b.elements():
        for i, m in enumerate(left_a):
            if m[:4] == r[:4] and frames_match(m[4], r[4]):
                del left_a[i]
                break
        else:
            left_b.append(r)
    return sum(common.values()) + (len(list(b.elements())) - len(left_b)), left_a, left_b


def summary(path):
    s = {}
    with open(path, errors="replace") as f:
        for line in f:
            m = SUMMARY.match(line)
            if m:
                s[m.group(1)] = (int(m.group(2).replace(",", "")), int(m.group(3).replace(",", "")))
    return s


def fmt(r):
    size = "%d" % r[1] if r[1] == r[2] else "%d (%d direct)" % (r[1], r[2])
    return "%s %s bytes in %d blocks: %s" % (r[0], size, r[3], " / ".join(r[4]))


def main(argv):
    if len(argv) >= 2 and argv[0] == "summary":
        for k, (b, n) in summary(argv[1]).items():
            print("%s: %d bytes in %d blocks" % (k, b, n))
        return 0
    if len(argv) >= 2 and argv[0] == "show":
        kinds = set(argv[2].split(",")) if len(argv) > 2 else set(KINDS.values())
        for r in records(argv[1]):
            if r[0] in kinds:
                print(fmt(r))
        return 0
    if len(argv) >= 4 and argv[0] == "same":
        kinds = set(argv[3].split(","))
        depth = int(argv[4]) if len(argv) > 4 else None
        cut = lambda rs: [(k, b, d, n, fr[:depth]) for k, b, d, n, fr in rs if k in kinds]
        a, b = cut(records(argv[1])), cut(records(argv[2]))
        same, only_a, only_b = compare(a, b)
        if not only_a and not only_b:
            print("same %d records (%d bytes in %d blocks) of %s" % (same, sum(r[2] for r in a),
                                                                 sum(r[3] for r in a), argv[3]))
            return 0
        print("%d records the same; %d only memsleuth's, %d only valgrind's" % (same, len(only_a), len(only_b)))
        for r in sorted(only_a):
            print("memsleuth only: " + fmt(r))
        for r in sorted(only_b):
            print("valgrind only:  " + fmt(r))
        return 1
    if len(argv) >= 5 and argv[0] == "has":
        kind, size, nblocks, want = argv[2], argv[3].split("/"), int(argv[4]), argv[5:]
        nbytes = int(size[0])
        direct = int(size[1]) if len(size) > 1 else None
        for r in records(argv[1]):
            if r[0] != kind or r[1] != nbytes or r[3] != nblocks or (direct is not None and r[2] != direct):
                continue
            i = 0
            for fr in r[4]:
                if i < len(want) and fr == want[i]:
                    i += 1
            if i == len(want):
                print("named: " + fmt(r))
                return 0
        print("no %s record of %s bytes in %d blocks with the frames %s in %s; its %s records:"
              % (kind, argv[3], nblocks, " / ".join(want), argv[1], kind))
        for r in records(argv[1]):
            if r[0] == kind:
                print("  " + fmt(r))
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
