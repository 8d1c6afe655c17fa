#!/usr/bin/env python3
"""jcheck.py JSON EXPECT EXPR... - assertions on a memsleuth report/diff JSON.

Each EXPR is a Python expression that must be true; in scope:
  d        the JSON document
  P        d["processes"][0] when there is one
  PS       d["processes"]
  E(k)     the integer after key k in the EXPECT file written by mktrace ("-" for none)
  ES(k)    the rest of that line as a string
  LINE(f)  the source line mktrace recorded for site function f
  fn(x)    the function of the first frame of an entry's stack
  fns(l)   [fn(x) for x in l]
  site(l, f)  the entry of list l whose first frame is function f
Prints each failed expression; exit status 1 if any failed.
"""
import json
import sys


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        d = json.load(f)
    exp = {}
    if sys.argv[2] != "-":
        with open(sys.argv[2], encoding="utf-8") as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition(" ")
                if k == "line" or k == "max_live":
                    name, _, val = v.partition(" ")
                    exp[k + ":" + name] = val
                else:
                    exp[k] = v

    def E(k):
        return int(exp[k])

    def ES(k):
        return exp[k]

    def LINE(f):
        return int(exp["line:" + f])

    def fn(x):
        return x["stack"][0]["function"] if x.get("stack") else None

    def fns(lst):
        return [fn(x) for x in lst]

    def site(lst, f):
        for x in lst:
            if fn(x) == f:
                return x
        raise KeyError("no entry for " + f)

    env = {"d": d, "E": E, "ES": ES, "LINE": LINE, "fn": fn, "fns": fns, "site": site}
    if isinstance(d, dict) and d.get("processes"):
        env["P"] = d["processes"][0]
        env["PS"] = d["processes"]
    bad = 0
    for expr in sys.argv[3:]:
        try:
            ok = eval(expr, env)  # noqa: S307 - test expressions written in run_tests.sh
        except Exception as e:  # pylint: disable=broad-except
            print("error in %s: %r" % (expr, e))
            bad += 1
            continue
        if not ok:
            print("false: " + expr)
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
