# Shared by the bench/*/run.sh drivers (sourced; they set $runs and $work first).

# timed OUT CMD: runs the bash command CMD under /usr/bin/time and writes "WALL USER SYS RSS_KIB"
# (seconds, seconds, seconds, KiB) to OUT; fails as CMD fails. The wall time comes from bash's
# microsecond clock: time's own %e moves in 10 ms steps, a sixth of a 0.06 s cold read.
timed() {
  local out=$1 cmd=$2 start end status=0
  start=$EPOCHREALTIME
  /usr/bin/time -f '%U %S %M' -o "$out" bash -c "$cmd" || status=$?
  end=$EPOCHREALTIME
  ((status == 0)) || return "$status"
  echo "$(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.3f", b - a}') $(<"$out")" >"$out"
}

# fresh "INPUT_DIR..." OUTPUT...: removes the outputs, syncs, drops the caches and reads every
# file under the input directories back: a run starts with its input in the page cache and
# nothing dirty (the previous run's writeback, or the deletion of its files, would otherwise land
# in its time). Input directories that do not exist yet are skipped.
fresh() {
  local inputs=$1 dir
  shift
  rm -rf "$@"
  sync
  echo 3 >/proc/sys/vm/drop_caches
  for dir in $inputs; do
    [[ -d $dir ]] && find "$dir" -type f -exec cat {} + >/dev/null
  done
  return 0
}

# measure NAME PREP CMD: runs PREP then CMD $runs times (timed); keeps the best wall time, the CPU
# time (user+sys) of that run, and the highest peak RSS, and prints one line.
# ratio A B: best_time[A] / best_time[B].
declare -A best_time cpu_time max_rss
measure() {
  local name=$1 prep=$2 cmd=$3 t u s rss
  best_time[$name]=999999
  max_rss[$name]=0
  for _ in $(seq "$runs"); do
    eval "$prep"
    timed "$work/time" "$cmd" >/dev/null 2>"$work/err" ||
      { cat "$work/err" >&2; echo "failed: $cmd" >&2; exit 1; }
    read -r t u s rss <"$work/time"
    if awk -v a="${best_time[$name]}" -v b="$t" 'BEGIN{exit !(b<a)}'; then
      best_time[$name]=$t
      cpu_time[$name]=$(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.2f", u+s}')
    fi
    max_rss[$name]=$((rss > max_rss[$name] ? rss : max_rss[$name]))
  done
  printf '%-44s %8.3f s wall %8.2f s cpu %8d KiB\n' "$name" "${best_time[$name]}" "${cpu_time[$name]}" "${max_rss[$name]}"
}
ratio() { awk -v a="${best_time[$1]}" -v b="${best_time[$2]}" 'BEGIN{printf "%.2f", a/b}'; }

# bench_image [CACHE]: builds the ~650 MB two-layer benchmark image (/usr/include, /usr/bin, gzip)
# once into CACHE (default /var/tmp/sealroot-bench-image) as the OCI layout CACHE/layout:big, and
# leaves it there for the next runs (CACHE/done marks a complete build). bench/image, bench/sealfs
# and bench/agent share it.
bench_image() {
  local cache=${1:-/var/tmp/sealroot-bench-image}
  [[ -f $cache/done ]] && return
  echo "building the benchmark image in $cache (once)"
  rm -rf "$cache" && mkdir -p "$cache"
  umoci init --layout "$cache/layout" && umoci new --image "$cache/layout:big"
  tar -C / -cf "$cache/l1.tar" usr/include && umoci raw add-layer --image "$cache/layout:big" "$cache/l1.tar"
  tar -C / -cf "$cache/l2.tar" usr/bin && umoci raw add-layer --image "$cache/layout:big" "$cache/l2.tar"
  rm -f "$cache/l1.tar" "$cache/l2.tar" && touch "$cache/done"
}
# layers_of LAYOUT [TAG]: the sha256 hex digests of the image's layers, bottom first (the
# manifest that index.json names TAG, else its first manifest).
layers_of() {
  python3 - "$1" "${2:-}" <<'PY'
import json, sys
root, tag = sys.argv[1], sys.argv[2]
ms = json.load(open(root + "/index.json"))["manifests"]
m = next((m for m in ms if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag), ms[0])
man = json.load(open(root + "/blobs/sha256/" + m["digest"].split(":")[1]))
print(" ".join(l["digest"].split(":")[1] for l in man["layers"]))
PY
}
