#!/usr/bin/env python3
"""check_trace.py TRACE [--expect-end] [--tcb] [--allocs] [--roots] - an independent decoder of trace format v1
(docs/trace-format.md) used by the tests: checks the framing (magic, version, chunk
checks), decodes every record, and replays ALLOC/FREE per address: every FREE must
free a live block, no address is allocated twice while live.  Prints one summary
line: records by type, live blocks at the end, END status."""
import ctypes, struct, sys

zstd = ctypes.CDLL("libzstd.so.1")
zstd.ZSTD_decompress.restype = ctypes.c_size_t
zstd.ZSTD_decompress.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t]
zstd.ZSTD_isError.argtypes = [ctypes.c_size_t]

NAMES = {1: "PROCESS", 2: "MODULE", 3: "STACK", 4: "THREAD", 5: "ALLOC", 6: "FREE", 7: "SAMPLE",
         8: "LEAK", 9: "END", 10: "FORK", 11: "EXEC", 12: "INHERITED", 13: "LOST", 14: "SNAPSHOT",
         15: "SNAP_LEAK"}

def varint(b, i):
    v = s = 0
    while True:
        c = b[i]; i += 1
        v |= (c & 0x7f) << s; s += 7
        if c < 0x80:
            return v, i

def svarint(b, i):
    v, i = varint(b, i)
    return (v >> 1) ^ -(v & 1), i

def fnv(b):
    h = 2166136261
    for c in b:
        h = ((h ^ c) * 16777619) & 0xffffffff
    return h

def records(buf, out):
    i, t, a = 0, 0, 0
    while i < len(buf):
        typ, i = varint(buf, i)
        n, i = varint(buf, i)
        p, end = i, i + n
        if typ in (5, 6):
            dt, p = varint(buf, p); t += dt
            da, p = svarint(buf, p); a += da
            if typ == 5:
                size, p = varint(buf, p); stack, p = varint(buf, p); fn, p = varint(buf, p)
                out.append((typ, t, a, size, stack, fn))
            else:
                out.append((typ, t, a))
        elif typ == 9:
            dt, p = varint(buf, p); how, p = varint(buf, p); st, p = varint(buf, p)
            out.append((typ, how, st))
        elif typ == 3:
            sid, p = varint(buf, p); out.append((typ, sid))
        elif typ == 19:  # GRAPH_ROOTS: the group's header
            serial, p = varint(buf, p); kind, p = varint(buf, p); tid, p = varint(buf, p)
            nl, p = varint(buf, p); p += nl
            lo, p = varint(buf, p); hi, p = varint(buf, p); pc, p = varint(buf, p); mod, p = varint(buf, p)
            out.append((typ, kind, lo, hi, mod))
        else:
            out.append((typ,))
        i = end

def main():
    path = sys.argv[1]
    tcb = "--tcb" in sys.argv  # print the sizes of the thread-descriptor root groups (TLS, mod 0)
    data = open(path, "rb").read()
    assert data[:8] == b"MSLTRACE", "bad magic"
    ver, plen = struct.unpack_from("<II", data, 8)
    assert ver == 1, ver
    recs = []
    records(data[16:16 + plen], recs)
    off, chunks, cut = 16 + plen, 0, False
    while off < len(data):
        if off + 16 > len(data):
            cut = True; break
        magic, clen, rlen, chk = struct.unpack_from("<IIII", data, off)
        assert magic == 0x4b43534d, "bad chunk magic at %d" % off
        comp = data[off + 16: off + 16 + clen]
        if len(comp) < clen:
            cut = True; break
        assert fnv(comp) == chk, "chunk check"
        out = ctypes.create_string_buffer(rlen)
        got = zstd.ZSTD_decompress(out, rlen, comp, clen)
        assert not zstd.ZSTD_isError(got) and got == rlen, "zstd"
        records(out.raw, recs)
        off += 16 + clen; chunks += 1
    if "--allocs" in sys.argv:  # every ALLOC record: time address size stack, by time
        for r in sorted((r for r in recs if r[0] == 5), key=lambda r: r[1]):
            print("%d %#x %d %d" % (r[1], r[2], r[3], r[4]))
        return
    if "--roots" in sys.argv:  # every root group of the heap graphs: kind lo hi (hex)
        for r in sorted({r[1:4] for r in recs if r[0] == 19}):
            print("%d %#x %#x" % r)
        return
    if tcb:
        print(" ".join(str(n) for n in sorted({r[3] - r[2] for r in recs if r[0] == 19 and r[1] == 2 and r[4] == 0})))
        return
    counts = {}
    for r in recs:
        name = NAMES.get(r[0], "type%d" % r[0])  # unknown types are skipped, and counted
        counts[name] = counts.get(name, 0) + 1
    # per-address replay: streams are per shard (per address), so order per address holds
    live, bad = {}, 0
    for r in recs:
        if r[0] == 5:
            if r[2] in live: bad += 1
            live[r[2]] = r[3]
        elif r[0] == 6:
            if r[2] not in live: bad += 1
            else: del live[r[2]]
    stacks = {r[1] for r in recs if r[0] == 3}
    unknown = sum(1 for r in recs if r[0] == 5 and r[4] and r[4] not in stacks)
    end = [r for r in recs if r[0] == 9]
    print("chunks=%d %s live_blocks=%d live_bytes=%d inconsistent=%d unknown_stacks=%d end=%s cut=%s" % (
        chunks, " ".join("%s=%d" % kv for kv in sorted(counts.items())), len(live), sum(live.values()),
        bad, unknown, "how=%d,status=%d" % end[-1][1:] if end else "none", cut))
    ok = bad == 0 and unknown == 0 and ("--expect-end" not in sys.argv or end)
    sys.exit(0 if ok else 1)

main()
