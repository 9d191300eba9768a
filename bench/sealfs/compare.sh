#!/usr/bin/env bash
# bench/sealfs/compare.sh OLD_BIN NEW_BIN — two sealroot builds against each other, gocryptfs and
# the plain tree, in one run, on the same input and disk, measuring CPU time (user+sys of the
# reader and of the FUSE daemon) besides wall time, so that a loaded machine still gives
# comparable figures:
#   cold reads (caches dropped, a fresh mount for every read): a sequential read of a 100 MiB
#   file (and of its store object, the disk's floor for it), and a whole-tree tar (a copy of
#   /usr/include, ~10k files); sealroot read-only ("ro") and as a container gets it, a union with
#   an in-memory upper ("union");
#   fsync of one small file in a persistent upper holding 10 or 3000 other files: bytes the
#   upper's state grows by (state + journal) and daemon CPU per fsync.
# Per read: wall, reader CPU, daemon CPU, the daemon's peak RSS, and its read(2)-family calls
# (FUSE requests plus its reads of the store: a request count that load does not change).
# Input: an OCI layout built once with umoci under /var/tmp. RUNS (default 3) repeats each cold
# read; the summary keeps each row's lowest wall, reader and daemon CPU, and prints the load average.
set -euo pipefail
old=${1:?old bin dir}
new=${2:?new bin dir}
runs=${RUNS:-3}
work=$(mktemp -d /var/tmp/sealroot-compare.XXXXXX)
cache=/var/tmp/sealroot-compare-image
pids=()
cleanup() {
  for m in "$work"/mnt-*; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"  # timed

if [[ ! -f $cache/done ]]; then
  rm -rf "$cache" && mkdir -p "$cache"
  umoci init --layout "$cache/layout" && umoci new --image "$cache/layout:t"
  umoci unpack --image "$cache/layout:t" "$cache/bundle" >/dev/null
  head -c $((100 << 20)) /dev/urandom >"$cache/bundle/rootfs/big"
  cp -a /usr/include "$cache/bundle/rootfs/tree"
  umoci repack --image "$cache/layout:t" "$cache/bundle" >/dev/null
  rm -rf "$cache/bundle" && touch "$cache/done"
fi

# On-CPU time of all the process's threads, in seconds (schedstat: nanoseconds, where
# /proc/PID/stat counts 10 ms ticks).
cpu_of() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.3f", s / 1e9}'; }
reads_of() { awk '/^syscr/{print $2}' "/proc/$1/io"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# serve MNT CMD...: starts a FUSE daemon in the foreground (in the background here), waits for
# its mount; sets $daemon.
serve() {
  local mnt=$1
  shift
  "$@" >"$work/daemon.log" 2>&1 &
  daemon=$!
  pids+=("$daemon")
  for _ in $(seq 200); do mountpoint -q "$mnt" && return 0; sleep 0.05; done
  cat "$work/daemon.log" >&2
  return 1
}
stop() {
  umount "$1"
  wait "$daemon" 2>/dev/null || true
}
# cold NAME CMD...: drops caches, runs the reader; prints and records wall, reader CPU and (when
# $daemon is set) the daemon's CPU, peak RSS and read calls.
declare -A best_wall best_cpu best_reader rss calls
rows=()
cold() {
  local name=$1 t u s d0=0 d1=0 r0=0 r1=0 hwm=0 reader daemon_cpu
  shift
  sync
  echo 3 >/proc/sys/vm/drop_caches
  if [[ -n $daemon ]]; then d0=$(cpu_of "$daemon") && r0=$(reads_of "$daemon"); fi
  timed "$work/time" "$*" >/dev/null
  if [[ -n $daemon ]]; then
    d1=$(cpu_of "$daemon") && r1=$(reads_of "$daemon")
    hwm=$(awk '/VmHWM/{print $2}' "/proc/$daemon/status")
  fi
  read -r t u s _ <"$work/time"
  reader=$(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.2f", u + s}')
  daemon_cpu=$(awk -v a="$d0" -v b="$d1" 'BEGIN{printf "%.3f", b - a}')
  printf '%-34s wall %6.3f s  reader cpu %5.2f s  daemon cpu %5.3f s  daemon rss %6d KiB  daemon reads %6d  (load %s)\n' \
    "$name" "$t" "$reader" "$daemon_cpu" "$hwm" $((r1 - r0)) "$(load)"
  if [[ -z ${best_wall[$name]:-} ]]; then
    rows+=("$name")
    best_wall[$name]=$t best_cpu[$name]=$daemon_cpu best_reader[$name]=$reader
  fi
  best_wall[$name]=$(awk -v a="${best_wall[$name]}" -v b="$t" 'BEGIN{print (b < a ? b : a)}')
  best_cpu[$name]=$(awk -v a="${best_cpu[$name]}" -v b="$daemon_cpu" 'BEGIN{print (b < a ? b : a)}')
  best_reader[$name]=$(awk -v a="${best_reader[$name]}" -v b="$reader" 'BEGIN{print (b < a ? b : a)}')
  rss[$name]=$hwm calls[$name]=$((r1 - r0))
}

load_start=$(load)
echo "== load average: $load_start ($(nproc) cores)"
head -c 32 /dev/urandom >"$work/key"
chmod 600 "$work/key"
# Each build reads a store it sealed itself (their store formats may differ).
declare -A root
for which in old new; do
  bin=${!which}
  "$bin/sealroot" unpack --insecure-policy "oci:$cache/layout:t" --seal "$work/store-$which" --key-file "$work/key" \
    --json >"$work/seal.json"
  root[$which]=$(grep -o '"root_hash":"[0-9a-f]*"' "$work/seal.json" | grep -o '[0-9a-f]\{64\}')
done
# The disk's floor for the sealed read of the 100 MiB file: its ciphertext, the largest object.
big_object=$(find "$work/store-new/objects" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2)
# The plain tree: the same image unpacked to a directory on the same disk.
"$new/sealroot" unpack --insecure-policy "oci:$cache/layout:t" "$work/plain" >/dev/null
plain=$work/plain
[[ -d $plain/rootfs ]] && plain=$plain/rootfs
mkdir -p "$work/mnt-old" "$work/mnt-new" "$work/mnt-g" "$work/gcipher"

for r in $(seq "$runs"); do
  for which in old new; do
    bin=${!which}
    mnt=$work/mnt-$which
    for kind in ro union; do
      mode=()
      [[ $kind == ro ]] && mode=(--read-only)
      serve "$mnt" "$bin/sealroot" mount "$work/store-$which" "$mnt" --root "${root[$which]}" --key-file "$work/key" \
        "${mode[@]}" -f
      cold "100 MiB file: sealed $which $kind" "cat $mnt/big > /dev/null"
      stop "$mnt"
      serve "$mnt" "$bin/sealroot" mount "$work/store-$which" "$mnt" --root "${root[$which]}" --key-file "$work/key" \
        "${mode[@]}" -f
      cold "tar of the tree: sealed $which $kind" "cd $mnt/tree && tar cf - . | wc -c"
      stop "$mnt"
    done
  done
  if [[ $r == 1 ]]; then  # gocryptfs gets the same tree, copied from the sealed mount
    head -c 32 /dev/urandom | base64 >"$work/pass"
    gocryptfs -q -init -passfile "$work/pass" "$work/gcipher" >/dev/null
    serve "$work/mnt-new" "$new/sealroot" mount "$work/store-new" "$work/mnt-new" --root "${root[new]}" \
      --key-file "$work/key" --read-only -f
    sealed=$daemon
    serve "$work/mnt-g" gocryptfs -f -q -nosyslog -allow_other -passfile "$work/pass" "$work/gcipher" "$work/mnt-g"
    cp "$work/mnt-new/big" "$work/mnt-g/" && cp -a "$work/mnt-new/tree" "$work/mnt-g/"
    stop "$work/mnt-g"
    daemon=$sealed
    stop "$work/mnt-new"
  fi
  serve "$work/mnt-g" gocryptfs -f -q -nosyslog -allow_other -passfile "$work/pass" "$work/gcipher" "$work/mnt-g"
  cold "100 MiB file: gocryptfs" "cat $work/mnt-g/big > /dev/null"
  stop "$work/mnt-g"
  serve "$work/mnt-g" gocryptfs -f -q -nosyslog -allow_other -passfile "$work/pass" "$work/gcipher" "$work/mnt-g"
  cold "tar of the tree: gocryptfs" "cd $work/mnt-g/tree && tar cf - . | wc -c"
  stop "$work/mnt-g"
  daemon=
  cold "100 MiB file: plain tree" "cat $plain/big > /dev/null"
  cold "100 MiB file: its store object" "cat $big_object > /dev/null"
  cold "tar of the tree: plain tree" "cd $plain/tree && tar cf - . | wc -c"
done
load_reads=$(load)

echo
echo "== cold reads, best of $runs runs; load average $load_start at the start, $load_reads after the reads ($(nproc) cores)"
echo "| read (cold) | wall (s) | reader cpu (s) | daemon cpu (s) | daemon peak RSS (KiB) | daemon read calls | wall vs gocryptfs | wall vs plain |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for name in "${rows[@]}"; do
  what=${name%%:*}
  g=${best_wall["$what: gocryptfs"]} p=${best_wall["$what: plain tree"]} w=${best_wall[$name]}
  printf '| %s | %.3f | %.2f | %.3f | %s | %s | %s | %s |\n' "$name" "$w" "${best_reader[$name]}" "${best_cpu[$name]}" "${rss[$name]}" "${calls[$name]}" \
    "$(awk -v g="$g" -v w="$w" 'BEGIN{printf "%.2fx faster", g / w}')" \
    "$(awk -v p="$p" -v w="$w" 'BEGIN{printf "%.2fx the time", w / p}')"
done
echo

# fsync in a persistent upper with FILES other files: 20 fsyncs of one small file.
for files in 10 3000; do
  for which in old new; do
    bin=${!which}
    mnt=$work/mnt-$which
    upper=$work/upper-$which-$files
    serve "$mnt" "$bin/sealroot" mount "$work/store-$which" "$mnt" --root "${root[$which]}" --key-file "$work/key" \
      --upper "$upper" -f
    mkdir "$mnt/many"
    (cd "$mnt/many" && for i in $(seq "$files"); do echo x >"f$i"; done)
    python3 -c "import os; fd=os.open('$mnt/note', os.O_CREAT|os.O_WRONLY); os.write(fd, b'0'); os.fsync(fd)"
    size0=$( (cat "$upper"/state "$upper"/journal 2>/dev/null || true) | wc -c)
    written0=$(awk '/^wchar/{print $2}' "/proc/$daemon/io")
    d0=$(cpu_of "$daemon")
    python3 -c "
import os
for i in range(20):
    fd = os.open('$mnt/note', os.O_WRONLY | os.O_TRUNC)
    os.write(fd, b'round %d' % i)
    os.fsync(fd)
    os.close(fd)"
    d1=$(cpu_of "$daemon")
    written1=$(awk '/^wchar/{print $2}' "/proc/$daemon/io")
    size1=$( (cat "$upper"/state "$upper"/journal 2>/dev/null || true) | wc -c)
    printf '%-40s bytes written by the daemon per fsync %8d  daemon cpu per fsync %6.2f ms  state+journal %8d bytes\n' \
      "fsync, upper of $files files ($which)" $(((written1 - written0) / 20)) \
      "$(awk -v a="$d0" -v b="$d1" 'BEGIN{printf "%.2f", (b-a)*1000/20}')" "$size1"
    stop "$mnt"
  done
done
echo "== load average at the end: $(load)"
