#!/usr/bin/env python3
"""mem_search.py PID HEX... - whether any of the byte strings (hex) occurs in the readable
memory of process PID (root: /proc/PID/mem). Prints what it found; exit 0 if none, 1 if
any, 2 on error, 3 when a mapping too large to read was skipped (a sanitizer's reserved
address space). For test_tls_reload.sh: the worker must not hold the TLS private key."""
import sys


def main():
    pid, needles = sys.argv[1], [bytes.fromhex(h) for h in sys.argv[2:]]
    found = set()
    skipped = False
    with open("/proc/%s/maps" % pid) as maps, open("/proc/%s/mem" % pid, "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if "r" not in fields[1] or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]")):
                continue
            if hi - lo > (1 << 32):
                skipped = True
                continue
            step, overlap = 16 << 20, 256
            for at in range(lo, hi, step):
                try:
                    mem.seek(at)
                    chunk = mem.read(min(step + overlap, hi - at))
                except (OSError, OverflowError, ValueError):
                    continue
                for i, n in enumerate(needles):
                    if n in chunk:
                        found.add(i)
    for i in sorted(found):
        print("found needle %d in %s" % (i, pid))
    return 1 if found else 3 if skipped else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except OSError as e:
        print("mem_search: %s" % e)
        sys.exit(2)
