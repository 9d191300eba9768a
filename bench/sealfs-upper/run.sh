#!/usr/bin/env bash
# bench/sealfs-upper/run.sh [BUILD_DIR] — the writable sealed root against gocryptfs, same run,
# same disk: untar of /usr/include, 1 GiB sequential write and rewrite, small-file
# create/stat/unlink rates, and each daemon's peak RSS (/usr/bin/time -f %M, daemons in the
# foreground). Needs root (FUSE, allow_other). Results: bench/sealfs-upper/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/release}
sealroot=$PWD/$build/agent/sealroot
[[ -x $sealroot ]] || sealroot=$PWD/$build/bin/sealroot
[[ -x $sealroot ]] || { echo "no sealroot binary under $build" >&2; exit 1; }
# Backing storage for both: tmpfs by default (CPU-bound, as the facts were measured); set
# SEALFS_BENCH_DIR=/var/tmp for disk.
work=$(mktemp -d "${SEALFS_BENCH_DIR:-/dev/shm}/sealfs-upper-bench.XXXXXX")
pids=()
cleanup() {
  for m in "$work"/mnt-*; do mountpoint -q "$m" && umount "$m" || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }
wait_mounted() { for _ in $(seq 200); do mountpoint -q "$1" && return 0; sleep 0.05; done; echo "mount $1 failed" >&2; exit 1; }

# The lower: an empty image sealed into a store (the upper takes every write).
umoci init --layout "$work/oci" >/dev/null
umoci new --image "$work/oci:empty" >/dev/null
root=$("$sealroot" unpack "oci:$work/oci:empty" --insecure-policy --seal "$work/store" --key-file "$work/key" | tail -1)
tar cf "$work/include.tar" -C /usr include
files=$(tar tf "$work/include.tar" | wc -l)

# Small files: N creates (100 bytes each), N stats, N unlinks; prints three rates (ops/s).
small_files() {
  python3 - "$1" <<'PY'
import os, sys, time
d = os.path.join(sys.argv[1], "small"); os.mkdir(d); n = 5000; data = b"x" * 100
t = time.perf_counter()
for i in range(n):
    with open(f"{d}/{i}", "wb") as f: f.write(data)
c = time.perf_counter(); [os.stat(f"{d}/{i}") for i in range(n)]; s = time.perf_counter()
for i in range(n): os.unlink(f"{d}/{i}")
u = time.perf_counter()
print(f"{n/(c-t):.0f} {n/(s-c):.0f} {n/(u-s):.0f}")
PY
}

# run NAME MOUNT-COMMAND...: mounts in the foreground under /usr/bin/time, runs the workloads.
run() {
  local name=$1; shift
  local mnt=$work/mnt-$name
  mkdir -p "$mnt"
  /usr/bin/time -f %M -o "$work/rss-$name" "$@" "$mnt" >"$work/log-$name" 2>&1 &
  pids+=($!)
  local pid=$!
  wait_mounted "$mnt"
  sync; echo 3 >/proc/sys/vm/drop_caches
  local t0=$(now); tar xf "$work/include.tar" -C "$mnt"; sync -f "$mnt"; local t1=$(now)
  dd if=/dev/zero of="$mnt/big" bs=1M count=1024 conv=fsync status=none; local t2=$(now)
  dd if=/dev/zero of="$mnt/big" bs=1M count=1024 conv=notrunc,fsync status=none; local t3=$(now)
  local rates; rates=$(small_files "$mnt")
  umount "$mnt"
  wait "$pid" || true
  echo "$name $(secs "$t0" "$t1") $(secs "$t1" "$t2") $(secs "$t2" "$t3") $rates $(cat "$work/rss-$name")"
}

mkdir "$work/cipher"
gocryptfs -init -q -extpass "echo benchpw" "$work/cipher" >/dev/null
echo "# untar of /usr/include ($files entries), 1 GiB write, 1 GiB rewrite (s); create/stat/unlink per s; peak RSS KiB"
echo "# name untar write rewrite create stat unlink rss_kib"
run sealfs "$sealroot" mount "$work/store" --root "$root" --key-file "$work/key" --upper "$work/upper" -f
run gocryptfs gocryptfs -fg -q -extpass "echo benchpw" -o allow_other "$work/cipher"
