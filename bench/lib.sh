# Shared by the bench/*/run.sh drivers (sourced; they set $runs and $work first).
# measure NAME PREP CMD: runs PREP then CMD $runs times under /usr/bin/time; keeps the best wall
# time, the CPU time (user+sys) of that run, and the highest peak RSS, and prints one line.
# ratio A B: best_time[A] / best_time[B].
declare -A best_time cpu_time max_rss
measure() {
  local name=$1 prep=$2 cmd=$3 t u s rss
  best_time[$name]=999999
  max_rss[$name]=0
  for _ in $(seq "$runs"); do
    eval "$prep"
    /usr/bin/time -f '%e %U %S %M' -o "$work/time" bash -c "$cmd" >/dev/null 2>"$work/err" ||
      { cat "$work/err" >&2; echo "failed: $cmd" >&2; exit 1; }
    read -r t u s rss <"$work/time"
    if awk -v a="${best_time[$name]}" -v b="$t" 'BEGIN{exit !(b<a)}'; then
      best_time[$name]=$t
      cpu_time[$name]=$(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.2f", u+s}')
    fi
    max_rss[$name]=$((rss > max_rss[$name] ? rss : max_rss[$name]))
  done
  printf '%-44s %8.2f s wall %8.2f s cpu %8d KiB\n' "$name" "${best_time[$name]}" "${cpu_time[$name]}" "${max_rss[$name]}"
}
ratio() { awk -v a="${best_time[$1]}" -v b="${best_time[$2]}" 'BEGIN{printf "%.2f", a/b}'; }
