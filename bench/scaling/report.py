#!/usr/bin/env python3
"""bench/scaling/report.py POINTS.TSV SIZES < META: bench/scaling's RESULTS.md on stdout.

POINTS.TSV: run.sh's points (one row per image and tool); SIZES: "image store_bytes plain_bytes dirs"
lines; META: key=value lines (date, load, thresholds, ...)."""
import sys

TOOLS = [  # id, label, what RSS means
    ("floor", "igzip -dc \\| tar -x (floor)"),
    ("floor-sync", "igzip -dc \\| tar -x; sync (durable floor)"),
    ("umoci", "umoci raw unpack"),
    ("unpack", "sealroot unpack (plain)"),
    ("seal", "sealroot unpack --seal"),
    ("agent-pull", "enclave-agent PullImage (ctl pull)"),
    ("tar-sealed", "cold tar, sealed mount"),
    ("tar-union", "cold tar, a container's union"),
    ("tar-plain", "cold tar, plain tree"),
]
LABEL = dict(TOOLS)
UNPACKS = ["floor", "umoci", "unpack", "seal", "agent-pull"]
# The FUSE daemons' rows: each the daemon of a cold tar.
DAEMONS = [("fuse", "tar-sealed", "sealroot mount daemon"), ("fuse-union", "tar-union", "sealroot mount daemon, union")]
DAEMON_TAR = {d: t for d, t, _ in DAEMONS}


def load(path):
    rows = []
    with open(path) as f:
        head = f.readline().lstrip("#").rstrip("\n").split("\t")
        for line in f:
            r = dict(zip(head, line.rstrip("\n").split("\t")))
            for k in ("x", "content_bytes", "files", "rss_kib", "daemon_rss_kib", "dirty_peak_kib",
                      "writeback_peak_kib", "disk_write_mb", "disk_read_mb", "compressed_bytes"):
                r[k] = int(r[k])
            for k in ("wall_s", "cpu_s", "sys_s"):
                r[k] = float(r[k])
            r["daemon_cpu_s"] = float(r["daemon_cpu_s"]) if r["daemon_cpu_s"] != "-" else 0.0
            rows.append(r)
    return rows


def main():
    rows = load(sys.argv[1])
    sizes = {}
    with open(sys.argv[2]) as f:
        for line in f:
            n, s, p, d = line.split()
            sizes[n] = (int(s), int(p), int(d))
    meta = dict(l.rstrip("\n").split("=", 1) for l in sys.stdin if "=" in l)
    pt = {(r["image"], r["tool"]): r for r in rows}
    out = []
    w = out.append

    def images(series):
        return sorted({r["image"]: r["x"] for r in rows if r["series"] == series}.items(), key=lambda kv: kv[1])

    def rss(r):  # the process the row is about: the agent for a pull, else the command
        return r["daemon_rss_kib"] if r["tool"] == "agent-pull" else r["rss_kib"]

    def cpu(r):  # everything the step cost: reader + FUSE daemon; the agent (not the ctl client)
        return r["daemon_cpu_s"] if r["tool"] == "agent-pull" else r["cpu_s"] + r["daemon_cpu_s"]

    w("# bench/scaling results\n")
    w(f"Produced by `bench/scaling/run.sh` on {meta['date']} ({meta['cores']} cores, {meta['kernel']}, "
      f"{int(meta['mem_total_kib']) >> 20} GiB RAM); best of {meta['runs']} per point; the run took "
      f"{int(meta['elapsed_s']) // 60} min {int(meta['elapsed_s']) % 60} s. sealroot: `{meta['bin']}`.")
    w(f"**Load average at the start: {meta['load_start']}; at the end: {meta['load_end']}** (a shared machine;"
      " the load of each point is in points.tsv).\n")
    if meta.get("mismatch", "").strip():
        w(f"**Tree mismatch between the sealed mount and the plain tree:** {meta['mismatch']}\n")
    w("Every step starts with the compressed layer in the page cache and nothing dirty (sync); "
      "reads are cold (caches dropped; a fresh read-only mount). cpu = user+sys of the command, plus "
      "the FUSE daemon's for the sealed reads; for the agent's pull, the agent's whole life (start, "
      "pull, exit) — the pull's time is the `sealroot ctl pull` call. Peak RSS: the command's "
      "(/usr/bin/time), the agent's for the pull, the FUSE daemon's (VmHWM) in its own column.\n")

    w("## The images\n")
    w("| image | content | files | directories | compressed layer | sealed store | what |")
    w("|---|---:|---:|---:|---:|---:|---|")
    for series in ("size", "count", "inline"):
        for im, x in images(series):
            r = pt.get((im, "floor")) or next(r for r in rows if r["image"] == im)
            store, _, dirs = sizes.get(im, (0, 0, 0))
            what = ("real files of /usr (bin, sbin, lib, libexec, include, share), whole runs of one "
                    "directory's files in a fixed random order (bench/scaling/mktar.py)") if series == "size" else \
                (f"{x} files of {r['content_bytes'] // x} bytes cut from the same real content, 100 per directory"
                 + (" (all inlined: up to 2 KiB)" if series == "inline" else ""))
            w(f"| {im} | {r['content_bytes'] / 1e6:.0f} MB | {r['files']} | {dirs} | "
              f"{r['compressed_bytes'] / 1e6:.0f} MB | {store / 1e6:.0f} MB | {what} |")
    w("")

    def ratio(r, floor, plain_tar, durable_floor):
        if r["tool"] in ("tar-sealed", "tar-union"):
            return f"**{r['wall_s'] / plain_tar['wall_s']:.2f}×**"
        cell = f"**{r['wall_s'] / floor['wall_s']:.2f}×**"
        if durable_floor and r["tool"] in ("seal", "agent-pull"):
            cell += f" ({r['wall_s'] / durable_floor['wall_s']:.2f}×)"
        return cell

    def table(series, unit):
        ims = images(series)
        if not ims:
            return
        head = "| tool | " + " | ".join(im for im, _ in ims) + " |\n|---|" + "---:|" * len(ims)
        for title, cell in (
                (f"wall time (s) and {'throughput of content' if unit == 'MB' else 'files per second'}",
                 lambda r, f, p, d: f"{r['wall_s']:.2f} ({r['content_bytes'] / 1e6 / r['wall_s']:.0f} MB/s)"
                 if unit == "MB" else f"{r['wall_s']:.2f} ({r['files'] / r['wall_s']:.0f} files/s)"),
                ("wall time / the floor's (the sealed tar: / the plain tree's tar; in brackets, for the "
                 "steps that make their output durable — a sealed layer commits after a syncfs — / the "
                 "durable floor's)", ratio),
                ("CPU time, user+sys (s)", lambda r, f, p, d: f"{cpu(r):.2f}")):
            w(f"{title}:\n")
            w(head)
            for tool, label in TOOLS:
                cells = []
                for im, _ in ims:
                    r = pt.get((im, tool))
                    cells.append(cell(r, pt[(im, "floor")], pt.get((im, "tar-plain")), pt.get((im, "floor-sync")))
                                 if r else "-")
                w(f"| {label} | " + " | ".join(cells) + " |")
            w("")

    w("## Time vs content size\n")
    table("size", "MB")
    w("![time vs size](time-vs-size.png)\n")
    w("## Time vs file count\n")
    table("count", "files")
    w("![time vs file count](time-vs-files.png)\n")

    inl = images("inline")
    cnt = dict((x, im) for im, x in images("count"))
    if inl:
        w("## Tiny files (inlined into their directory objects)\n")
        w("Files up to 2 KiB are stored inside their directory's object (design/sealfs.md). The same "
          "number of files as a count image, 2000 bytes each (inlined) against its 2.5 KiB ones (not):\n")
        w("| tool | " + " | ".join(f"{cnt[x]} wall / cpu / peak RSS" if x in cnt else "" for _, x in inl)
          + " | " + " | ".join(f"{im} wall / cpu / peak RSS" for im, _ in inl) + " |")
        w("|---|" + "---:|" * (2 * len(inl)))
        for tool, label in TOOLS + [("fuse", "sealroot mount daemon (cold tar)")]:
            cells = []
            for im in [cnt.get(x) for _, x in inl] + [im for im, _ in inl]:
                r = pt.get((im, "tar-sealed" if tool == "fuse" else tool)) if im else None
                if not r:
                    cells.append("-")
                elif tool == "fuse":
                    cells.append(f"- / {r['daemon_cpu_s']:.2f} s / {r['daemon_rss_kib'] / 1024:.0f} MiB")
                else:
                    cells.append(f"{r['wall_s']:.2f} s / {cpu(r):.2f} s / {rss(r) / 1024:.0f} MiB")
            w(f"| {label} | " + " | ".join(cells) + " |")
        w("")
        for im, x in inl:
            if x in cnt and im in sizes and cnt[x] in sizes:
                w(f"Sealed store: {sizes[im][0] / 1e6:.0f} MB for {im} ({pt[(im, 'floor')]['content_bytes'] / 1e6:.0f} MB "
                  f"of content), {sizes[cnt[x]][0] / 1e6:.0f} MB for {cnt[x]} "
                  f"({pt[(cnt[x], 'floor')]['content_bytes'] / 1e6:.0f} MB).\n")

    w("## Peak RSS\n")
    for series, title in (("size", "content size"), ("count", "file count")):
        ims = images(series)
        if not ims:
            continue
        w(f"vs {title} (MiB):\n")
        w("| process | " + " | ".join(im for im, _ in ims) + " |")
        w("|---|" + "---:|" * len(ims))
        for tool, label in [("agent-pull", "enclave-agent (whole pull)"), ("seal", "sealroot unpack --seal"),
                            ("unpack", "sealroot unpack (plain)"), ("fuse", "sealroot mount daemon (cold tar)"),
                            ("fuse-union", "sealroot mount daemon, union (cold tar)"),
                            ("floor", "igzip \\| tar (largest of the two)"), ("umoci", "umoci raw unpack")]:
            cells = []
            for im, _ in ims:
                r = pt.get((im, DAEMON_TAR.get(tool, tool)))
                v = (r["daemon_rss_kib"] if tool in DAEMON_TAR else rss(r)) if r else 0
                cells.append(f"{v / 1024:.1f}" if r else "-")
            w(f"| {label} | " + " | ".join(cells) + " |")
        w("")
    w("![peak RSS vs size](rss-vs-size.png) ![peak RSS vs file count](rss-vs-files.png)\n")

    w("## Does cost grow linearly, does memory stay flat? (computed from the points)\n")
    w("Marginal cost between consecutive points: seconds per extra GB of content (size images) or per "
      "extra 10k files (count images, same bytes). Linear: the last marginal cost within 0.75-1.33× the "
      "first, or the last point within 0.5 s or 10% of the line through the first two (noise on this "
      "shared machine); flat memory: peak RSS at the largest point within 1.25× (or 8 MiB of) the smallest.\n")
    for series, unit, scale in (("size", "s/GB", 1e9), ("count", "s/10k files", 1e4)):
        ims = images(series)
        if len(ims) < 2:
            continue
        w(f"| tool ({series}) | marginal cost ({unit}) | time | peak RSS (MiB) | memory |")
        w("|---|---|---|---|---|")
        for tool, label in TOOLS + [(d, label) for d, _, label in DAEMONS]:
            pts = [pt.get((im, DAEMON_TAR.get(tool, tool))) for im, _ in ims]
            if any(p is None for p in pts):
                continue
            xs = [p["content_bytes"] if series == "size" else p["files"] for p in pts]
            m = [(pts[i + 1]["wall_s"] - pts[i]["wall_s"]) / (xs[i + 1] - xs[i]) * scale for i in range(len(pts) - 1)]
            q = m[-1] / m[0] if m[0] > 0 else float("inf")
            # the last point against the line through the first two: beyond noise only if the
            # difference is at least 0.5 s and 10% of the last time
            t_lin = pts[-2]["wall_s"] + m[0] / scale * (xs[-1] - xs[-2])
            excess = pts[-1]["wall_s"] - t_lin
            big = abs(excess) >= max(0.5, 0.1 * pts[-1]["wall_s"])
            verdict = "linear" if 0.75 <= q <= 1.33 or not big else (
                f"**grows faster (knee)**: +{excess:.1f} s over the line" if q > 1.33 else
                f"sub-linear: {excess:.1f} s under the line")
            if len(m) < 2:
                verdict = "(two points)"
            if tool in DAEMON_TAR:
                verdict = "-"
                m = []
            mem = [(p["daemon_rss_kib"] if tool in DAEMON_TAR else rss(p)) / 1024 for p in pts]
            flat = "flat" if mem[-1] <= max(1.25 * mem[0], mem[0] + 8) else "**grows**"
            w(f"| {label} | {' → '.join(f'{v:.2f}' for v in m) or '-'} | {verdict} | "
              f"{' → '.join(f'{v:.1f}' for v in mem)} | {flat} |")
        w("")

    sw = images("sweep")
    if sw:
        w("## Memory per file (inlined or not)\n")
        n = pt.get((sw[0][0], "seal"))["files"]
        w(f"{n} files of one size each (cut from the same content, 100 a directory). Files up to 2 KiB "
          "are inlined into their directory's object. Growth: MiB above the first image's, per MB of "
          "inlined content.\n")
        w("| file size | content | sealroot unpack --seal peak RSS | FUSE daemon after the cold tar | sealed store |")
        w("|---:|---:|---:|---:|---:|")
        base = pt[(sw[0][0], "seal")]
        fbase = pt[(sw[0][0], "tar-sealed")]
        for im, x in sw:
            r, f = pt[(im, "seal")], pt[(im, "tar-sealed")]
            grow = lambda v, b: (f" (+{(v - b) / 1024:.0f} MiB, {(v - b) / 1024 / (r['content_bytes'] - base['content_bytes']) * 1e6:.1f}×)"
                                 if r["content_bytes"] > base["content_bytes"] and x <= 2048 else "")
            w(f"| {x} B | {r['content_bytes'] / 1e6:.1f} MB | {rss(r) / 1024:.0f} MiB{grow(rss(r), rss(base))} | "
              f"{f['daemon_rss_kib'] / 1024:.0f} MiB{grow(f['daemon_rss_kib'], fbase['daemon_rss_kib'])} | "
              f"{sizes.get(im, (0, 0, 0))[0] / 1e6:.0f} MB |")
        w("")

    after = [r for r in rows if r["tool"] == "floor-after-rm"]
    for r in after:
        f = pt[(r["image"], "floor")]
        w("## History: creating files soon after deleting as many\n")
        w(f"The floor on {r['image']} ({r['files']} files) right after deleting the {r['files']} files of "
          f"its previous run (sync, caches kept): **{r['wall_s']:.2f} s** wall, {r['sys_s']:.2f} s system; "
          f"with the caches dropped first, as every unpack step above: {f['wall_s']:.2f} s wall, "
          f"{f['sys_s']:.2f} s system.\n")

    w("## What each step did to the page cache and the disk\n")
    w(f"Dirty thresholds at the start (/proc/vmstat): background writeback from "
      f"{int(meta['dirty_background_threshold_kib']) >> 10} MiB dirty, writers throttled from "
      f"{int(meta['dirty_threshold_kib']) >> 10} MiB; dirty pages older than "
      f"{int(meta['dirty_expire_cs']) / 100:.0f} s are written back whatever the amount. The disk "
      f"({meta['disk']}) writes {meta['disk_rate']} sequentially (1 GiB, dd conv=fdatasync). "
      "Disk figures count the whole machine's I/O during the step; cpu and system time are the "
      "command's (for the pull, the ctl client's; for the sealed tar, the reader's).\n")
    w("| image | tool | wall (s) | cpu (s) | of which system (s) | peak Dirty (MiB) | peak Writeback (MiB) | disk written (MB) | disk read (MB) |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for series in ("size", "count", "inline"):
        for im, _ in images(series):
            for tool, label in TOOLS + [("floor-after-rm", "floor, right after deleting as many files")]:
                r = pt.get((im, tool))
                if r:
                    w(f"| {im} | {label} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['sys_s']:.2f} | {r['dirty_peak_kib'] >> 10} | "
                      f"{r['writeback_peak_kib'] >> 10} | {r['disk_write_mb']} | {r['disk_read_mb']} |")
    w("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
