#!/usr/bin/env python3
"""vglayout.py MEMSLEUTH_LOG VALGRIND_LOG AGENT_SO - the loss records of the
two reports of the same program (tests/e2e/progs/vgdepth.c, not PIE: the same
addresses under both tools) laid out alike, line for line:

  - the same records, in the same order, with the same header text;
  - as many frame lines in each (--num-callers=N: N lines, the allocation
    function's included);
  - every "by" line the same text: caller addresses printed as valgrind
    prints them (the return address - 1), the same function and file:line;
  - the "at" line names the same allocation function, at an address inside
    memsleuth's own function of that name: the "at" addresses of two records
    differ by what the agent's symbol table says (nm -D).

Prints what differs and exits 1, or prints "same" and exits 0."""
import re
import subprocess
import sys

PFX = re.compile(r"^==\d+== ?")


def records(path):
    recs, cur = [], None
    for line in open(path, errors="replace"):
        line = PFX.sub("", line.rstrip("\n"))
        if " in loss record " in line:
            cur = {"head": line, "frames": []}
            recs.append(cur)
        elif cur is not None and re.match(r"^   (at|by) 0x", line):
            cur["frames"].append(line)
        else:
            cur = None
    return recs


def main():
    ms, vg, so = records(sys.argv[1]), records(sys.argv[2]), sys.argv[3]
    syms = {}
    for line in subprocess.run(["nm", "-D", "--defined-only", so], capture_output=True, text=True).stdout.split("\n"):
        f = line.split()
        if len(f) == 3:
            syms[f[2]] = int(f[0], 16)
    bad = []
    if [r["head"] for r in ms] != [r["head"] for r in vg]:
        bad.append("records differ: %r against valgrind's %r" % ([r["head"] for r in ms], [r["head"] for r in vg]))
    at = []
    for m, v in zip(ms, vg):
        if len(m["frames"]) != len(v["frames"]):
            bad.append("%s: %d frame lines, valgrind %d:\n  %s\n  valgrind:\n  %s" % (
                m["head"], len(m["frames"]), len(v["frames"]), "\n  ".join(m["frames"]), "\n  ".join(v["frames"])))
            continue
        for a, b in zip(m["frames"][1:], v["frames"][1:]):
            if a != b:
                bad.append("%s: %r, valgrind %r" % (m["head"], a, b))
        fa = re.match(r"^   at 0x([0-9A-F]+): (\S+) \(in .*libmemsleuth_agent\.so\)$", m["frames"][0])
        fb = re.match(r"^   at 0x[0-9A-F]+: (\S+) \(in .*vgpreload_memcheck.*\.so\)$", v["frames"][0])
        if not fa or not fb or fa.group(2) != fb.group(1):
            bad.append("%s: first line %r, valgrind %r" % (m["head"], m["frames"][0], v["frames"][0]))
        else:
            at.append((int(fa.group(1), 16), fa.group(2)))
    names = sorted(set(n for _, n in at))
    if len(names) < 2 or any(n not in syms for n in names):
        bad.append("the 'at' lines name %s: two allocation functions of the agent expected" % names)
    else:
        base = at[0][0] - syms[at[0][1]]
        for addr, n in at:
            if addr - base != syms[n]:
                bad.append("'at 0x%X: %s' is not the agent's %s (%#x + %#x)" % (addr, n, n, base, syms[n]))
    if bad or not ms:
        print("\n".join(bad) if bad else "no records")
        return 1
    print("same")
    return 0


sys.exit(main())
