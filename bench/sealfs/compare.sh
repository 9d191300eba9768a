#!/usr/bin/env bash
# bench/sealfs/compare.sh OLD_BIN NEW_BIN — two sealroot builds against each other and gocryptfs,
# in one run, on the same input, measuring CPU time (user+sys of the reader and of the FUSE
# daemon) besides wall time, so that a loaded machine still gives comparable figures:
#   cold reads (caches dropped, fresh read-only mount): sequential read of a 100 MiB file, and a
#   whole-tree tar (a copy of /usr/include, ~10k files);
#   fsync of one small file in a persistent upper holding 10 or 3000 other files: bytes the
#   upper's state grows by (state + journal) and daemon CPU per fsync.
# Input: an OCI layout built once with umoci under /var/tmp. Prints a table; RUNS (default 3)
# repeats each cold read and keeps the lowest CPU time.
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
hz=$(getconf CLK_TCK)

if [[ ! -f $cache/done ]]; then
  rm -rf "$cache" && mkdir -p "$cache"
  umoci init --layout "$cache/layout" && umoci new --image "$cache/layout:t"
  umoci unpack --image "$cache/layout:t" "$cache/bundle" >/dev/null
  head -c $((100 << 20)) /dev/urandom >"$cache/bundle/rootfs/big"
  cp -a /usr/include "$cache/bundle/rootfs/tree"
  umoci repack --image "$cache/layout:t" "$cache/bundle" >/dev/null
  rm -rf "$cache/bundle" && touch "$cache/done"
fi

cpu_of() { awk -v hz="$hz" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat"; }
# serve NAME CMD...: starts a FUSE daemon in the foreground (in the background here), waits for
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
# cold NAME MNT CMD...: drops caches, runs the reader, prints wall, reader cpu, daemon cpu.
declare -A best
cold() {
  local name=$1 mnt=$2 start t u s d0 d1 total
  shift 2
  sync
  echo 3 >/proc/sys/vm/drop_caches
  d0=$(cpu_of "$daemon")
  /usr/bin/time -f '%e %U %S' -o "$work/time" bash -c "$*" >/dev/null
  d1=$(cpu_of "$daemon")
  read -r t u s <"$work/time"
  total=$(awk -v u="$u" -v s="$s" -v a="$d0" -v b="$d1" 'BEGIN{printf "%.2f", u + s + b - a}')
  printf '%-40s wall %6.2f s  reader cpu %5.2f s  daemon cpu %5.2f s  total cpu %5.2f s\n' "$name" "$t" \
    "$(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.2f", u+s}')" "$(awk -v a="$d0" -v b="$d1" 'BEGIN{printf "%.2f", b-a}')" "$total"
}

echo "== load average: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
head -c 32 /dev/urandom >"$work/key"
"$new/sealroot" unpack --insecure-policy "oci:$cache/layout:t" --seal "$work/store" --key-file "$work/key" \
  --json >"$work/seal.json"
root=$(grep -o '"root_hash":"[0-9a-f]*"' "$work/seal.json" | grep -o '[0-9a-f]\{64\}')
mkdir -p "$work/mnt-old" "$work/mnt-new" "$work/mnt-g" "$work/gcipher"

for r in $(seq "$runs"); do
  for which in old new; do
    bin=${!which}
    mnt=$work/mnt-$which
    serve "$mnt" "$bin/sealroot" mount "$work/store" "$mnt" --root "$root" --key-file "$work/key" --read-only -f
    cold "sealed ($which) 100 MiB file #$r" "$mnt" "cat $mnt/big > /dev/null"
    stop "$mnt"
    serve "$mnt" "$bin/sealroot" mount "$work/store" "$mnt" --root "$root" --key-file "$work/key" --read-only -f
    cold "sealed ($which) tar of the tree #$r" "$mnt" "cd $mnt/tree && tar cf - . | wc -c"
    stop "$mnt"
  done
  if [[ $r == 1 ]]; then  # gocryptfs gets the same tree, copied from the sealed mount
    head -c 32 /dev/urandom | base64 >"$work/pass"
    gocryptfs -q -init -passfile "$work/pass" "$work/gcipher" >/dev/null
    serve "$work/mnt-new" "$new/sealroot" mount "$work/store" "$work/mnt-new" --root "$root" --key-file "$work/key" \
      --read-only -f
    sealed=$daemon
    serve "$work/mnt-g" gocryptfs -f -q -allow_other -passfile "$work/pass" "$work/gcipher" "$work/mnt-g"
    cp "$work/mnt-new/big" "$work/mnt-g/" && cp -a "$work/mnt-new/tree" "$work/mnt-g/"
    stop "$work/mnt-g"
    daemon=$sealed
    stop "$work/mnt-new"
  fi
  serve "$work/mnt-g" gocryptfs -f -q -allow_other -passfile "$work/pass" "$work/gcipher" "$work/mnt-g"
  cold "gocryptfs 100 MiB file #$r" "$work/mnt-g" "cat $work/mnt-g/big > /dev/null"
  stop "$work/mnt-g"
  serve "$work/mnt-g" gocryptfs -f -q -allow_other -passfile "$work/pass" "$work/gcipher" "$work/mnt-g"
  cold "gocryptfs tar of the tree #$r" "$work/mnt-g" "cd $work/mnt-g/tree && tar cf - . | wc -c"
  stop "$work/mnt-g"
done

# fsync in a persistent upper with FILES other files: 20 fsyncs of one small file.
for files in 10 3000; do
  for which in old new; do
    bin=${!which}
    mnt=$work/mnt-$which
    upper=$work/upper-$which-$files
    serve "$mnt" "$bin/sealroot" mount "$work/store" "$mnt" --root "$root" --key-file "$work/key" --upper "$upper" -f
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
