#!/usr/bin/env bash
# bench/sealfs-upper/run.sh [BUILD_DIR] — the writable sealed root against gocryptfs and against a
# plain directory (the floor: the backing storage itself), same run, same backing, one after the
# other: untar of /usr/include (then sync), 1 GiB sequential write and rewrite (dd conv=fsync),
# small-file create/stat/unlink rates, and each daemon's peak RSS (/usr/bin/time -f %M, daemons in
# the foreground). Both backings in one run: tmpfs (/dev/shm: the daemons' CPU) and ext4
# (/var/tmp: the disk); BACKINGS="tmpfs" or "ext4" runs one. Needs root (FUSE, allow_other).
# Writes bench/sealfs-upper/RESULTS.md with the load average at the start and the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/release}
sealroot=$PWD/$build/bin/sealroot
[[ -x $sealroot ]] || { echo "no sealroot binary under $build: run scripts/build release first" >&2; exit 1; }
backings=${BACKINGS:-tmpfs ext4}
declare -A backing_dir=([tmpfs]=/dev/shm [ext4]=/var/tmp)
tmp=$(mktemp -d /var/tmp/sealfs-upper-results.XXXXXX)
work=
pids=()
cleanup() {
  if [[ -n $work ]]; then
    for m in "$work"/mnt-*; do mountpoint -q "$m" && umount "$m" || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }
wait_mounted() { for _ in $(seq 200); do mountpoint -q "$1" && return 0; sleep 0.05; done; echo "mount $1 failed" >&2; exit 1; }

tar cf "$tmp/include.tar" -C /usr include
files=$(tar tf "$tmp/include.tar" | wc -l)

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

# workloads DIR: prints "untar write rewrite create stat unlink" (seconds; operations per second).
workloads() {
  local dir=$1 t0 t1 t2 t3
  sync; echo 3 >/proc/sys/vm/drop_caches
  t0=$(now); tar xf "$tmp/include.tar" -C "$dir"; sync -f "$dir"; t1=$(now)
  dd if=/dev/zero of="$dir/big" bs=1M count=1024 conv=fsync status=none; t2=$(now)
  dd if=/dev/zero of="$dir/big" bs=1M count=1024 conv=notrunc,fsync status=none; t3=$(now)
  echo "$(secs "$t0" "$t1") $(secs "$t1" "$t2") $(secs "$t2" "$t3") $(small_files "$dir")"
}

# mounted NAME MOUNT-COMMAND...: mounts in the foreground under /usr/bin/time, runs the workloads,
# prints "NAME untar write rewrite create stat unlink rss_kib".
mounted() {
  local name=$1 mnt=$work/mnt-$1 pid result
  shift
  mkdir -p "$mnt"
  /usr/bin/time -f %M -o "$work/rss-$name" "$@" "$mnt" >"$work/log-$name" 2>&1 &
  pid=$!
  pids+=("$pid")
  wait_mounted "$mnt"
  result=$(workloads "$mnt")
  umount "$mnt"
  wait "$pid" || true
  echo "$name $result $(cat "$work/rss-$name")"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for backing in $backings; do
  work=$(mktemp -d "${backing_dir[$backing]}/sealfs-upper-bench.XXXXXX")
  pids=()
  # The lower: an empty image sealed into a store (the upper takes every write).
  umoci init --layout "$work/oci" >/dev/null
  umoci new --image "$work/oci:empty" >/dev/null
  root=$("$sealroot" unpack "oci:$work/oci:empty" --insecure-policy --seal "$work/store" --key-file "$work/key" | tail -1)
  mkdir "$work/cipher" "$work/plain"
  gocryptfs -init -q -extpass "echo benchpw" "$work/cipher" >/dev/null
  {
    mounted sealfs "$sealroot" mount "$work/store" --root "$root" --key-file "$work/key" --upper "$work/upper" -f
    mounted gocryptfs gocryptfs -fg -q -extpass "echo benchpw" -o allow_other "$work/cipher"
    echo "plain $(workloads "$work/plain") -"
  } | sed "s/^/$backing /" | tee -a "$tmp/rows"
  rm -rf "$work"
  work=
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ratio BACKING COLUMN OF_FS TO_FS: for times (columns 3-5) TO/OF, for rates (6-8) OF/TO: > 1 means
# OF_FS did better.
ratio() {
  awk -v b="$1" -v c="$2" -v of="$3" -v to="$4" '
    $1 == b && $2 == of { x = $c } $1 == b && $2 == to { y = $c }
    END { printf "%.2f", (c <= 5) ? y / x : x / y }' "$tmp/rows"
}
{
  echo "# bench/sealfs-upper results"
  echo
  echo "Produced by \`bench/sealfs-upper/run.sh\` on $(date -u +%Y-%m-%d) ($(nproc) cores). sealroot: \`$sealroot\`."
  echo "**Load average at the start: $load_start; at the end: $load_end.**"
  echo
  echo "A writable sealed root (\`sealroot mount --upper DIR -f\`, an empty sealed image as the lower, so"
  echo "every byte lands in the upper), \`gocryptfs -fg\`, and a plain directory (no FUSE, no"
  echo "encryption: the floor), one after the other on the same backing. Untar: /usr/include ($files"
  echo "entries), then \`sync -f\`; write and rewrite: \`dd bs=1M count=1024 conv=fsync\` (rewrite with"
  echo "\`notrunc\`); then 5000 creates of 100 bytes, 5000 stats, 5000 unlinks. Times in seconds,"
  echo "rates in operations per second, peak RSS of the FUSE daemon in KiB."
  echo
  echo "| backing | fs | untar | 1 GiB write | 1 GiB rewrite | create/s | stat/s | unlink/s | peak RSS (KiB) |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
  awk '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }' "$tmp/rows"
  echo
  echo "sealfs against gocryptfs (> 1: sealfs better) and against the plain directory (the floor; for"
  echo "times, sealfs's time over the plain directory's):"
  echo
  echo "| backing | untar vs gocryptfs | write vs gocryptfs | rewrite vs gocryptfs | create vs gocryptfs | untar vs plain | write vs plain | rewrite vs plain |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for b in $backings; do
    echo "| $b | $(ratio "$b" 3 sealfs gocryptfs)x | $(ratio "$b" 4 sealfs gocryptfs)x | $(ratio "$b" 5 sealfs gocryptfs)x | $(ratio "$b" 6 sealfs gocryptfs)x | $(ratio "$b" 3 plain sealfs)x | $(ratio "$b" 4 plain sealfs)x | $(ratio "$b" 5 plain sealfs)x |"
  done
} >bench/sealfs-upper/RESULTS.md
cat bench/sealfs-upper/RESULTS.md
