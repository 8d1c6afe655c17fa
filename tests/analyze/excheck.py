#!/usr/bin/env python3
"""excheck.py - independent readers for the tests of the export formats (run_exports.sh).

  excheck.py pprof FILE        decode the gzip'd profile.proto with a protobuf reader of our
                               own; print JSON: sample types, sums of each value, leaf
                               functions, mappings, default type, problems found
  excheck.py xml FILE          parse valgrind XML with xml.etree; print JSON: the errors
                               (kind, bytes, blocks, direct, first fn/file/line), pid, argv
  excheck.py png FILE          PNG size and number of distinct colours (PIL if present,
                               else a small decoder of our own)
"""
import gzip
import json
import re
import struct
import sys
import zlib


# ------------------------------------------------------------------ protobuf
def fields(buf):
    """yield (field number, wire type, value) of a protobuf message"""
    i, n = 0, len(buf)

    def varint():
        nonlocal i
        v, s = 0, 0
        while True:
            if i >= n:
                raise ValueError("truncated varint")
            b = buf[i]
            i += 1
            v |= (b & 0x7F) << s
            s += 7
            if not b & 0x80:
                return v

    while i < n:
        k = varint()
        f, w = k >> 3, k & 7
        if w == 0:
            yield f, w, varint()
        elif w == 2:
            ln = varint()
            if i + ln > n:
                raise ValueError("truncated bytes")
            yield f, w, buf[i:i + ln]
            i += ln
        elif w == 1:
            yield f, w, struct.unpack_from("<Q", buf, i)[0]
            i += 8
        elif w == 5:
            yield f, w, struct.unpack_from("<I", buf, i)[0]
            i += 4
        else:
            raise ValueError("wire type %d" % w)


def packed(w, v):
    if w == 0:
        return [v]
    out, i = [], 0
    while i < len(v):
        x, s = 0, 0
        while True:
            b = v[i]
            i += 1
            x |= (b & 0x7F) << s
            s += 7
            if not b & 0x80:
                break
        out.append(x)
    return out


def msg(buf):
    d = {}
    for f, w, v in fields(buf):
        d.setdefault(f, []).append((w, v))
    return d


def one(d, f, default=0):
    return d[f][-1][1] if f in d else default


def pprof(path):
    raw = open(path, "rb").read()
    problems = []
    if raw[:2] != b"\x1f\x8b":
        problems.append("not gzip")
    p = msg(gzip.decompress(raw))
    strings = [v.decode("utf-8") for _, v in p.get(6, [])]
    if not strings or strings[0] != "":
        problems.append("string_table[0] is not empty")
    S = lambda i: strings[i] if 0 <= i < len(strings) else problems.append("bad string %d" % i)
    types = []
    for _, v in p.get(1, []):
        t = msg(v)
        types.append("%s/%s" % (S(one(t, 1)), S(one(t, 2))))
    funcs = {}
    for _, v in p.get(5, []):
        f = msg(v)
        funcs[one(f, 1)] = (S(one(f, 2)), S(one(f, 4)))
    maps = {}
    for _, v in p.get(3, []):
        m = msg(v)
        maps[one(m, 1)] = {"file": S(one(m, 5)), "build_id": S(one(m, 6)), "start": one(m, 2),
                           "limit": one(m, 3)}
    locs = {}
    for _, v in p.get(4, []):
        L = msg(v)
        lines = []
        for _, lv in L.get(4, []):
            ln = msg(lv)
            fid = one(ln, 1)
            if fid not in funcs:
                problems.append("location %d: unknown function %d" % (one(L, 1), fid))
                continue
            lines.append((funcs[fid][0], funcs[fid][1], one(ln, 2)))
        mid = one(L, 2)
        if mid and mid not in maps:
            problems.append("location %d: unknown mapping %d" % (one(L, 1), mid))
        locs[one(L, 1)] = {"lines": lines, "mapping": mid, "address": one(L, 3)}
    sums = [0] * len(types)
    leaves = {}
    pids = set()
    nsamples = 0
    for _, v in p.get(2, []):
        s = msg(v)
        nsamples += 1
        ids = [x for w, b in s.get(1, []) for x in packed(w, b)]
        vals = [x for w, b in s.get(2, []) for x in packed(w, b)]
        if len(vals) != len(types):
            problems.append("sample with %d values, %d types" % (len(vals), len(types)))
            continue
        for i, x in enumerate(vals):
            sums[i] += x
        for lid in ids:
            if lid not in locs:
                problems.append("sample: unknown location %d" % lid)
        if ids and ids[0] in locs and locs[ids[0]]["lines"]:
            leaf = locs[ids[0]]["lines"][0][0]
            leaves[leaf] = [a + b for a, b in zip(leaves.get(leaf, [0] * len(types)), vals)]
        for _, lb in s.get(3, []):
            lab = msg(lb)
            if S(one(lab, 1)) == "pid":
                pids.add(one(lab, 3))
    inlined = sum(1 for L in locs.values() if len(L["lines"]) > 1)
    return {"types": types, "sums": dict(zip(types, sums)), "samples": nsamples,
            "leaves": leaves, "mappings": list(maps.values()), "locations": len(locs),
            "inlined_locations": inlined, "functions": len(funcs), "pids": sorted(pids),
            "default": S(one(p, 14)), "period": one(p, 12), "problems": problems}


# ------------------------------------------------------------------ valgrind XML
def xml(path):
    import xml.etree.ElementTree as ET
    root = ET.parse(path).getroot()
    assert root.tag == "valgrindoutput", root.tag
    out = {"protocolversion": root.findtext("protocolversion"),
           "tool": root.findtext("protocoltool"), "pid": root.findtext("pid"),
           "exe": root.findtext("args/argv/exe"),
           "args": [a.text or "" for a in root.findall("args/argv/arg")], "errors": []}
    for e in root.findall("error"):
        text = e.findtext("xwhat/text")
        m = re.match(r"(\d+) \((\d+) direct, (\d+) indirect\) bytes", text or "")
        frames = [{"ip": f.findtext("ip"), "obj": f.findtext("obj"), "fn": f.findtext("fn"),
                   "file": f.findtext("file"), "line": f.findtext("line")}
                  for f in e.findall("stack/frame")]
        out["errors"].append({
            "unique": e.findtext("unique"), "kind": e.findtext("kind"), "text": text,
            "bytes": int(e.findtext("xwhat/leakedbytes")),
            "blocks": int(e.findtext("xwhat/leakedblocks")),
            "direct": int(m.group(2)) if m else int(e.findtext("xwhat/leakedbytes")),
            "frames": frames})
    return out


# ------------------------------------------------------------------ PNG
def png(path):
    try:
        from PIL import Image  # python3-pil
        im = Image.open(path).convert("RGB")
        w, h = im.size
        cols = im.getcolors(maxcolors=1 << 24)
        return {"width": w, "height": h, "colours": len(cols),
                "top_share": max(c for c, _ in cols) / (w * h), "decoder": "PIL"}
    except ImportError:
        pass
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    i, idat, w = 8, b"", 0
    while i < len(data):
        ln, typ = struct.unpack(">I4s", data[i:i + 8])
        body = data[i + 8:i + 8 + ln]
        if typ == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), (depth, ctype)
            bpp = 3 if ctype == 2 else 4
        elif typ == b"IDAT":
            idat += body
        i += 12 + ln
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    colours, counts = set(), {}
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + ((a + b) >> 1)) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, bpp):
            px = bytes(line[x:x + 3])
            colours.add(px)
            counts[px] = counts.get(px, 0) + 1
        prev = line
    return {"width": w, "height": h, "colours": len(colours),
            "top_share": max(counts.values()) / (w * h), "decoder": "own"}


if __name__ == "__main__":
    what, path = sys.argv[1], sys.argv[2]
    print(json.dumps({"pprof": pprof, "xml": xml, "png": png}[what](path)))
