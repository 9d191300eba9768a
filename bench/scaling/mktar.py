#!/usr/bin/env python3
"""bench/scaling/mktar.py — the layer tars of bench/scaling's images, from real files of /usr.

  mktar.py size BYTES OUT.tar    real files, about BYTES of content
  mktar.py count N BYTES OUT.tar N files cut from about BYTES of real content

The pool: the regular files under /usr/{bin,sbin,lib,libexec,include,share} (one file system;
not /usr/share/package-lists; no file over 16 MiB, so that no single file dominates the small
images), in path order, grouped into units of consecutive files of one directory (up to 64 files,
closed once they reach 4 MiB: siblings stay together, as in a real image), the units in a fixed pseudo-random order (seed 20261205). Every
image takes units from the start of that order, so the three size images have the same mix of
file sizes, kinds and compressibility, and the bigger contain the smaller.

size: the units until BYTES, each file at its own path (usr/lib/...), with its directories.
count: the same bytes, in the same order, concatenated and cut into N files of BYTES // N bytes
each (d0000/f000000, 100 files a directory): only the file count changes between count images.

The tar is deterministic for a given /usr: entries sorted by path, GNU format, mtime 2023-11-14,
owner 0:0, the files' own permission bits (directories 0755). Prints "files dirs content_bytes".
"""
import os
import random
import stat
import sys
import tarfile

ROOTS = ["usr/bin", "usr/sbin", "usr/lib", "usr/libexec", "usr/include", "usr/share"]
EXCLUDE = ["usr/share/package-lists"]
MAX_FILE = 16 << 20
UNIT = 64
UNIT_BYTES = 4 << 20
SEED = 20261205
MTIME = 1700000000
PER_DIR = 100


def pool():
    dev = os.stat("/usr").st_dev
    files = []
    for root in ROOTS:
        for d, dirs, names in os.walk("/" + root):
            rel = d[1:]
            if any(rel == e or rel.startswith(e + "/") for e in EXCLUDE):
                dirs[:] = []
                continue
            dirs[:] = [x for x in dirs if os.lstat(os.path.join(d, x)).st_dev == dev]
            for n in names:
                p = os.path.join(d, n)
                st = os.lstat(p)
                if stat.S_ISREG(st.st_mode) and 0 < st.st_size <= MAX_FILE:
                    files.append((p[1:], st.st_size, stat.S_IMODE(st.st_mode)))
    files.sort()
    units, cur, cur_bytes = [], [], 0
    for f in files:
        if cur and (os.path.dirname(cur[0][0]) != os.path.dirname(f[0]) or len(cur) == UNIT or
                    cur_bytes >= UNIT_BYTES):
            units.append(cur)
            cur, cur_bytes = [], 0
        cur.append(f)
        cur_bytes += f[1]
    if cur:
        units.append(cur)
    random.Random(SEED).shuffle(units)
    return units


def take(units, target):
    out, total = [], 0
    for u in units:
        if total >= target:
            break
        out.extend(u)
        total += sum(f[1] for f in u)
    return out, total


def info(name, kind, size=0, mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.type, ti.size, ti.mode, ti.mtime = kind, size, mode, MTIME
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    return ti


def write_size(target, out):
    files, total = take(pool(), target)
    dirs = set()
    for p, _, _ in files:
        d = os.path.dirname(p)
        while d and d not in dirs:
            dirs.add(d)
            d = os.path.dirname(d)
    entries = sorted([(d, None) for d in dirs] + [(p, (s, m)) for p, s, m in files])
    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
        for p, f in entries:
            if f is None:
                tar.addfile(info(p, tarfile.DIRTYPE, mode=0o755))
                continue
            with open("/" + p, "rb") as src:
                tar.addfile(info(p, tarfile.REGTYPE, f[0], f[1]), src)
    return len(files), len(dirs), total


class Stream:
    """The pool's files, concatenated in order."""

    def __init__(self, files):
        self.files, self.i, self.cur = files, 0, None

    def read(self, n):
        parts = []
        while n > 0:
            if self.cur is None:
                self.cur = open("/" + self.files[self.i][0], "rb")
                self.i += 1
            b = self.cur.read(n)
            if not b:
                self.cur.close()
                self.cur = None
                continue
            parts.append(b)
            n -= len(b)
        return b"".join(parts)


def write_count(count, target, out):
    files, _ = take(pool(), target)
    piece = target // count
    src = Stream(files)
    ndirs = (count + PER_DIR - 1) // PER_DIR
    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
        for d in range(ndirs):
            tar.addfile(info("d%04d" % d, tarfile.DIRTYPE, mode=0o755))
            for i in range(d * PER_DIR, min(count, (d + 1) * PER_DIR)):
                data = src.read(piece)
                tar.addfile(info("d%04d/f%06d" % (d, i), tarfile.REGTYPE, len(data)), _Bytes(data))
    return count, ndirs, piece * count


class _Bytes:
    def __init__(self, b):
        self.b, self.o = b, 0

    def read(self, n=-1):
        if n < 0:
            n = len(self.b) - self.o
        r = self.b[self.o:self.o + n]
        self.o += len(r)
        return r


def main():
    if sys.argv[1] == "size":
        r = write_size(int(sys.argv[2]), sys.argv[3])
    elif sys.argv[1] == "count":
        r = write_count(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(__doc__)
    print(*r)


if __name__ == "__main__":
    main()
