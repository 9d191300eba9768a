#!/usr/bin/env bash
# bench/sealfs/run.sh — the sealed store against its peers, in one run, on the same input (the
# ~650 MB two-layer image of bench/image/run.sh, built once under /var/tmp by bench_image in
# bench/lib.sh if missing):
#   seal:  sealroot unpack --seal STORE   vs  igzip -dc LAYER | tar -x, each layer in order into
#                                             one fresh directory (the floor: decompress + write)
#                                         vs  umoci raw unpack
#                                         vs  umoci unpack into a gocryptfs mount
#                                         vs  sealroot unpack to a plain directory
#          (before each: the previous output removed, sync, caches dropped — on ext4, creating
#          files right after deleting as many costs seconds of system time otherwise — and the
#          layers read again, so every unpack starts with them in the page cache, nothing dirty)
#   cold reads (caches dropped, and a fresh mount, before each), read-only sealed mount vs the
#          same tree on gocryptfs vs the same tree as a plain directory (sealroot unpack's):
#          whole tree `tar cf - . | wc -c`, and a sequential read of the largest file (and, the disk's
#          floor for it, of its store object: the same bytes encrypted).
# Best wall time over RUNS runs (default 1: the gocryptfs unpack alone takes about a minute),
# CPU time of that run (user+sys of the command; for reads through FUSE the daemon's CPU is
# listed apart), peak RSS (/usr/bin/time; for the FUSE daemons, VmHWM after the reads).
# Writes bench/sealfs/RESULTS.md with the load average at the start and the end.
# Environment: SEALROOT_BIN (default build/release/bin), RUNS.
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$PWD
bin=${SEALROOT_BIN:-$top/build/release/bin}
runs=${RUNS:-1}
cache=/var/tmp/sealroot-bench-image
work=$(mktemp -d /var/tmp/sealroot-sealfs-bench.XXXXXX)
cleanup() {
  for m in "$work/sealed" "$work/gmnt"; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done
  rm -rf "$work"
}
trap cleanup EXIT
[[ -x $bin/sealroot ]] || { echo "no $bin/sealroot: run scripts/build release first" >&2; exit 1; }
source "$top/bench/lib.sh"
bench_image "$cache"
image="oci:$cache/layout:big"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

key=$work/key
head -c 32 /dev/urandom >"$key" && chmod 600 "$key"  # sealroot refuses a key others can read
mkdir -p "$work/sealed" "$work/gmnt"
gocryptfs_mount() {
  mountpoint -q "$work/gmnt" && umount "$work/gmnt"
  gocryptfs -q -nosyslog -allow_other -passfile "$work/pass" "$work/gcipher" "$work/gmnt"
}
# The daemon of a gocryptfs mount of ours (by its cipher directory: other gocryptfs may run).
gocryptfs_pid() { pgrep -n -f "gocryptfs.*$work/gcipher"; }
# On-CPU time of all a process's threads, in seconds (schedstat, ns).
cpu_of() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.2f", s / 1e9}'; }
layers=$(layers_of "$cache/layout" big)
for l in $layers; do cat "$cache/layout/blobs/sha256/$l" >/dev/null; done
echo "== sealing the image ($(du -sb "$cache/layout/blobs" | cut -f1) bytes compressed)"
blobs=$cache/layout/blobs  # read back before each unpack (fresh, bench/lib.sh)
igzip_cmd="set -o pipefail; for l in $layers; do igzip -dc $cache/layout/blobs/sha256/\$l | tar -x -C $work/igz || exit 1; done"
measure "igzip -dc | tar -x" "fresh $blobs $work/igz; mkdir $work/igz" "$igzip_cmd"
rm -rf "$work/igz"
measure "umoci raw unpack" "fresh $blobs $work/umoci" "umoci raw unpack --image $cache/layout:big $work/umoci"
rm -rf "$work/umoci"
measure "sealroot unpack (plain directory)" "fresh $blobs $work/plain" \
  "$bin/sealroot unpack --insecure-policy $image $work/plain"
measure "sealroot unpack --seal" "fresh $blobs $work/store" \
  "$bin/sealroot unpack --insecure-policy $image --seal $work/store --key-file $key --json > $work/seal.json"
echo pass >"$work/pass"
measure "umoci unpack into gocryptfs" \
  "mountpoint -q $work/gmnt && umount $work/gmnt; rm -rf $work/gcipher; mkdir $work/gcipher; gocryptfs -q -init -passfile $work/pass $work/gcipher >/dev/null; gocryptfs_mount; sync" \
  "umoci unpack --image $cache/layout:big $work/gmnt/bundle"
root=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["root_hash"])' "$work/seal.json")
store_bytes=$(du -sb "$work/store" | cut -f1)
plain_bytes=$(du -sb "$work/plain" | cut -f1)

largest=$(cd "$work/plain/rootfs" && find . -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
echo "== cold reads (largest file: $largest)"
sealed_pid=
sealed_mount() {
  mountpoint -q "$work/sealed" && umount "$work/sealed"
  [[ -n $sealed_pid ]] && wait "$sealed_pid" 2>/dev/null || true
  "$bin/sealroot" mount "$work/store" "$work/sealed" --root "$root" --key-file "$key" -f &
  sealed_pid=$!
  for _ in $(seq 100); do mountpoint -q "$work/sealed" && break; sleep 0.1; done
}
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
declare -A daemon_cpu
measure "tar of the tree: sealed mount" "sealed_mount; drop" "cd $work/sealed && tar cf - . | wc -c"
sealed_rss=$(awk '/VmHWM/{print $2}' /proc/$sealed_pid/status)
daemon_cpu["tar of the tree: sealed mount"]=$(cpu_of "$sealed_pid")
measure "tar of the tree: gocryptfs" "gocryptfs_mount; drop" "cd $work/gmnt/bundle/rootfs && tar cf - . | wc -c"
gocryptfs_rss=$(awk '/VmHWM/{print $2}' /proc/"$(gocryptfs_pid)"/status)
daemon_cpu["tar of the tree: gocryptfs"]=$(cpu_of "$(gocryptfs_pid)")
measure "tar of the tree: plain directory" "drop" "cd $work/plain/rootfs && tar cf - . | wc -c"
measure "largest file: sealed mount" "sealed_mount; drop" "dd if=$work/sealed/$largest of=/dev/null bs=1M"
daemon_cpu["largest file: sealed mount"]=$(cpu_of "$sealed_pid")
measure "largest file: gocryptfs" "gocryptfs_mount; drop" "dd if=$work/gmnt/bundle/rootfs/$largest of=/dev/null bs=1M"
daemon_cpu["largest file: gocryptfs"]=$(cpu_of "$(gocryptfs_pid)")
measure "largest file: plain directory" "drop" "dd if=$work/plain/rootfs/$largest of=/dev/null bs=1M"
# The disk's floor for the sealed read: the file's ciphertext, its store object (the largest).
largest_object=$(find "$work/store/objects" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2)
measure "largest file: its store object" "drop" "dd if=$largest_object of=/dev/null bs=1M"
umount "$work/sealed"
wait "$sealed_pid" || true
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

rows=("igzip -dc | tar -x" "umoci raw unpack" "sealroot unpack (plain directory)" "sealroot unpack --seal"
  "umoci unpack into gocryptfs" "tar of the tree: sealed mount" "tar of the tree: gocryptfs"
  "tar of the tree: plain directory" "largest file: sealed mount" "largest file: gocryptfs"
  "largest file: plain directory" "largest file: its store object")
cat >bench/sealfs/RESULTS.md <<MD
# sealfs benchmark results

Produced by \`bench/sealfs/run.sh\` on $(date -u +%Y-%m-%d) ($(nproc) cores, shared machine; best of $runs).
Load average at the start: $load_start; at the end: $load_end.
Input: the ~650 MB two-layer image of bench/image (/usr/include, /usr/bin), OCI layout, gzip.
Unpacks start with the previous output removed, caches dropped, the layers read again and nothing
dirty; reads are cold (caches dropped, a fresh mount). cpu = user+sys of the command (the reader,
for reads); daemon cpu = the FUSE daemon's, over its mount (last run).

| measurement | wall (s) | cpu (s) | daemon cpu (s) | peak RSS (KiB) |
|---|---:|---:|---:|---:|
$(for n in "${rows[@]}"; do
  echo "| ${n//|/\\|} | ${best_time[$n]} | ${cpu_time[$n]} | ${daemon_cpu[$n]:-} | ${max_rss[$n]} |"; done)

Ratios (wall time):
- \`sealroot unpack --seal\` / \`igzip -dc | tar -x\` (the floor): **$(ratio "sealroot unpack --seal" "igzip -dc | tar -x")x** the time (target <= 1.0x);
  beside it \`umoci raw unpack\` / floor: $(ratio "umoci raw unpack" "igzip -dc | tar -x")x, \`sealroot unpack\` (plain) / floor: $(ratio "sealroot unpack (plain directory)" "igzip -dc | tar -x")x
- sealing vs \`umoci raw unpack\`: **$(ratio "umoci raw unpack" "sealroot unpack --seal")x** faster
- sealing vs umoci into gocryptfs: **$(ratio "umoci unpack into gocryptfs" "sealroot unpack --seal")x** faster (target >= 10x)
- sealing overhead vs plain \`sealroot unpack\`: **$(ratio "sealroot unpack --seal" "sealroot unpack (plain directory)")x** the time (target <= 1.25x)
- cold whole-tree tar, sealed: **$(ratio "tar of the tree: gocryptfs" "tar of the tree: sealed mount")x** faster than gocryptfs (target >= 2x),
  **$(ratio "tar of the tree: sealed mount" "tar of the tree: plain directory")x** the time of the plain tree (target <= 1.5x)
- cold largest file ($largest), sealed: **$(ratio "largest file: gocryptfs" "largest file: sealed mount")x** faster than gocryptfs (target >= 2x),
  **$(ratio "largest file: sealed mount" "largest file: plain directory")x** the time of the plain tree (target <= 1.5x),
  $(ratio "largest file: sealed mount" "largest file: its store object")x the time of reading its store object (the same bytes encrypted)

FUSE daemon peak RSS after the tree read: sealroot ${sealed_rss} KiB, gocryptfs ${gocryptfs_rss} KiB.
Store size: ${store_bytes} bytes sealed vs ${plain_bytes} bytes unpacked (4 KiB padding, tags, metadata).
MD
cat bench/sealfs/RESULTS.md
