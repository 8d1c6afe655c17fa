#!/usr/bin/env python3
"""gen_html_page.py - make src/analyze/html_page.h from src/analyze/html_page.html.

The page template is cut at its two markers, @@TITLE@@ and @@DATA@@, into three parts;
each becomes a NULL-terminated array of C string literals, one per line (html.c writes
part 0, the escaped title, part 1, the data, part 2).  Run it after editing the template:
    python3 scripts/gen_html_page.py            (rewrites the header)
    python3 scripts/gen_html_page.py --check    (exit 1 if the header is out of date)
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src/analyze/html_page.html")
DST = os.path.join(ROOT, "src/analyze/html_page.h")


def c_lit(s):
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "?":
            out.append("\\?")  # no trigraphs
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def generate():
    text = open(SRC, encoding="utf-8").read()
    a, rest = text.split("@@TITLE@@", 1)
    b, c = rest.split("@@DATA@@", 1)
    assert "@@TITLE@@" not in c and "@@DATA@@" not in c and "@@DATA@@" not in a
    lines = ["/* html_page.h - made from html_page.html by scripts/gen_html_page.py: do not edit */",
             "#ifndef MS_HTML_PAGE_H", "#define MS_HTML_PAGE_H", ""]
    for i, part in enumerate((a, b, c)):
        lines.append("static const char *const ms_html_page_%d[] = {" % i)
        for ln in part.splitlines(keepends=True):
            lines.append("    " + c_lit(ln) + ",")
        lines.append("    0};")
        lines.append("")
    lines.append("static const char *const *const ms_html_page[3] = { ms_html_page_0, ms_html_page_1,")
    lines.append("                                                     ms_html_page_2 };")
    lines.append("")
    lines.append("#endif /* MS_HTML_PAGE_H */")
    return "\n".join(lines) + "\n"


def main():
    new = generate()
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        old = open(DST, encoding="utf-8").read() if os.path.exists(DST) else ""
        if old != new:
            print("src/analyze/html_page.h is out of date: run python3 scripts/gen_html_page.py")
            return 1
        return 0
    open(DST, "w", encoding="utf-8").write(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
