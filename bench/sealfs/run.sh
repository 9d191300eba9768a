#!/usr/bin/env bash
# bench/sealfs/run.sh — the sealed store against its peers, in one run, on the same input (the
# ~650 MB two-layer image of bench/image/run.sh, built once under /var/tmp):
#   seal:  sealroot unpack --seal STORE   vs  umoci unpack into a gocryptfs mount
#                                         vs  sealroot unpack to a plain directory
#   cold reads (fresh mount, caches dropped), read-only sealed mount vs the same tree on gocryptfs:
#          whole tree `tar cf - . | wc -c`, and a sequential read of the largest file.
# Best wall time over RUNS runs (default 1: the gocryptfs unpack alone takes about a minute),
# CPU time of that run, peak RSS (/usr/bin/time; for the FUSE daemons, VmHWM after the reads).
# Writes bench/sealfs/RESULTS.md. Environment: SEALROOT_BIN (default build/release/bin), RUNS.
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
[[ -f $cache/done ]] || { echo "build the image first: bench/image/run.sh (caches it in $cache)" >&2; exit 1; }
image="oci:$cache/layout:big"

source "$top/bench/lib.sh"

key=$work/key
head -c 32 /dev/urandom >"$key"
mkdir -p "$work/sealed" "$work/gmnt"
gocryptfs_mount() {
  mountpoint -q "$work/gmnt" && umount "$work/gmnt"
  gocryptfs -q -allow_other -passfile "$work/pass" "$work/gcipher" "$work/gmnt"
}
echo "== sealing the image ($(du -sb "$cache/layout/blobs" | cut -f1) bytes compressed)"
measure "sealroot unpack (plain directory)" "rm -rf $work/plain" \
  "$bin/sealroot unpack --insecure-policy $image $work/plain"
measure "sealroot unpack --seal" "rm -rf $work/store" \
  "$bin/sealroot unpack --insecure-policy $image --seal $work/store --key-file $key --json > $work/seal.json"
echo pass >"$work/pass"
measure "umoci unpack into gocryptfs" \
  "mountpoint -q $work/gmnt && umount $work/gmnt; rm -rf $work/gcipher; mkdir $work/gcipher; gocryptfs -q -init -passfile $work/pass $work/gcipher >/dev/null; gocryptfs_mount" \
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
measure "tar of the tree: sealed mount" "sealed_mount; drop" "cd $work/sealed && tar cf - . | wc -c"
sealed_rss=$(awk '/VmHWM/{print $2}' /proc/$sealed_pid/status)
measure "tar of the tree: gocryptfs" "gocryptfs_mount; drop" "cd $work/gmnt/bundle/rootfs && tar cf - . | wc -c"
gocryptfs_rss=$(awk '/VmHWM/{print $2}' /proc/$(pgrep -n -x gocryptfs)/status)
measure "largest file: sealed mount" "sealed_mount; drop" "dd if=$work/sealed/$largest of=/dev/null bs=1M"
measure "largest file: gocryptfs" "gocryptfs_mount; drop" "dd if=$work/gmnt/bundle/rootfs/$largest of=/dev/null bs=1M"
umount "$work/sealed"
wait "$sealed_pid" || true

cat >bench/sealfs/RESULTS.md <<MD
# sealfs benchmark results

Produced by \`bench/sealfs/run.sh\` on $(date -u +%Y-%m-%d) ($(nproc) cores, shared machine; best of $runs).
Input: the ~650 MB two-layer image of bench/image (/usr/include, /usr/bin), OCI layout, gzip.

| measurement | wall (s) | cpu (s) | peak RSS (KiB) |
|---|---:|---:|---:|
$(for n in "sealroot unpack (plain directory)" "sealroot unpack --seal" "umoci unpack into gocryptfs" \
  "tar of the tree: sealed mount" "tar of the tree: gocryptfs" "largest file: sealed mount" "largest file: gocryptfs"; do
  echo "| $n | ${best_time[$n]} | ${cpu_time[$n]} | ${max_rss[$n]} |"; done)

Ratios (higher is better for sealroot):
- sealing vs umoci into gocryptfs: **$(ratio "umoci unpack into gocryptfs" "sealroot unpack --seal")x** faster (target >= 10x)
- sealing overhead vs plain \`sealroot unpack\`: **$(ratio "sealroot unpack --seal" "sealroot unpack (plain directory)")x** the time (target <= 1.25x)
- cold whole-tree tar, sealed vs gocryptfs: **$(ratio "tar of the tree: gocryptfs" "tar of the tree: sealed mount")x** (target >= 2x)
- cold largest file ($largest), sealed vs gocryptfs: **$(ratio "largest file: gocryptfs" "largest file: sealed mount")x** (target >= 2x)

FUSE daemon peak RSS after the tree read: sealroot ${sealed_rss} KiB, gocryptfs ${gocryptfs_rss} KiB.
Store size: ${store_bytes} bytes sealed vs ${plain_bytes} bytes unpacked (4 KiB padding, tags, metadata).
MD
cat bench/sealfs/RESULTS.md
