#!/usr/bin/env bash
# bench/scaling/run.sh — how sealroot's cost grows with the work: the same measurements on images
# of 3 sizes (about 100 MB, 650 MB, 2 GB of content) and of 3 file counts (1k, 10k, 100k files
# cut from the same 256 MB of content: 2.5 KiB and more, so none is inlined), plus one image of
# 100k files of 2000 bytes (200 MB; files up to 2 KiB are inlined into their directory objects),
# each against the floor, in one run:
#   unpack: igzip -dc LAYER | tar -x (the floor: decompress + write the files), the same then
#           sync -f (the durable floor: a sealed layer commits after a syncfs), umoci raw unpack,
#           sealroot unpack (plain directory), sealroot unpack --seal (wall, CPU, peak RSS each).
#           Before each: the previous output removed, sync, caches dropped, then the layer and
#           the tools read again: each starts with the layer in the page cache, nothing dirty and
#           nothing left of the deleted files (on this ext4 without a journal, creating files soon
#           after deleting as many costs seconds of system time per 100k files: find_inode_bit ->
#           recently_deleted looks up each freed inode's table block in the buffer cache);
#   cold read: `tar cf - . | wc -c` of the whole tree through a read-only `sealroot mount` of the
#           sealed root (a fresh mount), through a writable one as a container's root is (the
#           union, an upper in memory), and of the same tree as a plain directory (sealroot
#           unpack's), caches dropped before each (reader CPU and peak RSS; the FUSE daemon's CPU,
#           from schedstat, and its peak RSS, VmHWM);
#   agent:  `sealroot ctl pull` of the image from a loopback docker-registry through a fresh
#           enclave-agent (plain gzip image, insecureAcceptAnything policy): wall time of the pull,
#           the agent's peak RSS and CPU over its whole life (/usr/bin/time around the daemon).
#   memory per file: 20k files of 100, 1000, 2048 (inlined) and 2049 bytes (not): the peak RSS
#           of sealroot unpack --seal and of the FUSE daemon after a cold tar, and the store's size;
#   history: the floor on the largest count image right after deleting as many files (sync, no
#           cache drop), against the same with the drop: what the drops above avoid.
# For every step also the peak Dirty and Writeback of /proc/meminfo (sampled every 0.1 s) and the
# MB the disk under /var/tmp wrote and read (/sys/class/block/DEV/stat): what explains a knee.
# Once per run: the dirty thresholds (/proc/vmstat) and the disk's sequential write rate (1 GiB,
# dd conv=fdatasync).
# The images are built once (deterministic: bench/scaling/mktar.py says what they contain) and
# cached in /var/tmp/sealroot-scaling-images, with the registry's storage.
# Writes bench/scaling/points.tsv (every point), RESULTS.md (tables, ratios to the floor, the
# linearity and flat-memory verdicts) and the plots (*.png, bench/scaling/plot.gp).
# Environment: SEALROOT_BIN (default build/release/bin), RUNS (default 1: the best of RUNS per
# point), SCALING_SIZES (MB of content, default "100 650 2000"), SCALING_COUNTS (default
# "1000 10000 100000"), SCALING_COUNT_MB (content of the count images, default 256),
# SCALING_INLINE (file counts of the images of 2000-byte files, default "100000"; "" for none),
# SCALING_SWEEP (file sizes of the memory-per-file images, default "100 1000 2048 2049"; "" for
# none), QUICK=1 (sizes "20 60", counts "1000 10000" at 30 MB, inline 10000, sweep "100 2049" of
# 2000 files: a check that all works),
# SCALING_BUILD_ONLY=1 (build the images and push them, measure nothing: run it outside the lock).
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$PWD
bin=${SEALROOT_BIN:-$top/build/release/bin}
runs=${RUNS:-1}
if [[ ${QUICK:-} == 1 ]]; then
  sizes=${SCALING_SIZES:-"20 60"} counts=${SCALING_COUNTS:-"1000 10000"} count_mb=${SCALING_COUNT_MB:-30}
  inline=${SCALING_INLINE-"10000"} sweep=${SCALING_SWEEP-"100 2049"} sweep_files=2000
else
  sizes=${SCALING_SIZES:-"100 650 2000"} counts=${SCALING_COUNTS:-"1000 10000 100000"} count_mb=${SCALING_COUNT_MB:-256}
  inline=${SCALING_INLINE-"100000"} sweep=${SCALING_SWEEP-"100 1000 2048 2049"} sweep_files=20000
fi
cache=/var/tmp/sealroot-scaling-images
outdir=$top/bench/scaling
for p in sealroot enclave-agent; do [[ -x $bin/$p ]] || { echo "no $bin/$p: run scripts/build release first" >&2; exit 1; }; done
work=$(mktemp -d /var/tmp/scaling-run.XXXXXX)
registry_pid= agent_pid= sealed_pid=
cleanup() {
  mountpoint -q "$work/mnt" 2>/dev/null && umount "$work/mnt"
  [[ -n $sealed_pid ]] && wait "$sealed_pid" 2>/dev/null
  [[ -n $agent_pid ]] && kill "$(pgrep -P "$agent_pid")" 2>/dev/null
  [[ -n $registry_pid ]] && kill "$registry_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "run.sh: line $LINENO: exit status $?" >&2' ERR
t_start=$(date +%s)

# ---- the images (built once, cached) ----
# build NAME MKTAR_ARGS...: the OCI layout $cache/NAME/layout:img, one gzip layer (umoci raw
# add-layer of mktar.py's tar), fixed timestamps; $cache/NAME/info: "files dirs content_bytes".
build() {
  local name=$1 d=$cache/$1
  shift
  [[ -f $d/done ]] && return
  echo "building $name in $d (once)"
  rm -rf "$d" && mkdir -p "$d"
  python3 "$outdir/mktar.py" "$@" "$d/layer.tar" >"$d/info"
  umoci init --layout "$d/layout" && umoci new --image "$d/layout:img"
  umoci raw add-layer --image "$d/layout:img" --history.created 2023-11-14T22:13:20Z \
    --history.created_by "bench/scaling/mktar.py $*" "$d/layer.tar"
  umoci config --image "$d/layout:img" --no-history --created 2023-11-14T22:13:20Z
  umoci gc --layout "$d/layout"
  rm "$d/layer.tar" && touch "$d/done"
}
images=()
declare -A series xval
for mb in $sizes; do
  n=size-${mb}mb
  build "$n" size $((mb * 1000000))
  images+=("$n") series[$n]=size xval[$n]=$mb
done
for c in $counts; do
  n=files-$c-${count_mb}mb
  build "$n" count "$c" $((count_mb * 1000000))
  images+=("$n") series[$n]=count xval[$n]=$c
done
for c in $inline; do
  n=files-$c-$((c * 2000 / 1000000))mb
  build "$n" count "$c" $((c * 2000))
  images+=("$n") series[$n]=inline xval[$n]=$c
done
sweep_images=()
for b in $sweep; do
  n=tiny-$sweep_files-${b}b
  build "$n" count "$sweep_files" $((sweep_files * b))
  sweep_images+=("$n") series[$n]=sweep xval[$n]=$b
done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$cache/registry"
printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\n' \
  "$cache/registry" "$port" >"$work/registry.yml"
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.2; done
for n in "${images[@]}"; do  # blobs the registry has are skipped
  skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci:$cache/$n/layout:img" \
    "docker://127.0.0.1:$port/scaling/$n:latest"
done
[[ ${SCALING_BUILD_ONLY:-} == 1 ]] && { echo "images built and pushed"; exit 0; }

# ---- measuring ----
source "$top/bench/lib.sh"  # layers_of
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
dev=$(basename "$(findmnt -no SOURCE --target /var/tmp)")
# disk_mb: "MB written MB read" so far by the disk under /var/tmp ("0 0" if it is no block device).
disk_mb() {
  if [[ -r /sys/class/block/$dev/stat ]]; then awk '{printf "%d %d", $7 * 512 / 1e6, $3 * 512 / 1e6}' "/sys/class/block/$dev/stat"
  else echo "0 0"; fi
}
cpu_of() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.2f", s / 1e9}'; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# fresh FILE...: nothing dirty, no cache of what earlier steps wrote or deleted, then FILE... and
# the tools (binaries and libraries) in the page cache again.
fresh() {
  drop
  cat "$@" >/dev/null
  { igzip --version; tar --version; umoci --version; "$bin/sealroot" --help; "$bin/enclave-agent" --help; } >/dev/null 2>&1 || true
}
tsv=$work/points.tsv
printf '#image\tseries\tx\tcontent_bytes\tfiles\ttool\twall_s\tcpu_s\trss_kib\tdaemon_cpu_s\tdaemon_rss_kib\tdirty_peak_kib\twriteback_peak_kib\tdisk_write_mb\tdisk_read_mb\tcompressed_bytes\tload1\tsys_s\n' >"$tsv"

# point IMAGE TOOL PREP CMD [POST]: PREP (untimed), CMD under /usr/bin/time with the meminfo
# sampler and the disk counters around it, POST (untimed; may set aux_cpu and aux_rss, the
# daemon's), RUNS times; one TSV row: the best wall time with that run's CPU, sampler and disk
# figures, the highest peak RSS. CMD's stdout is kept in $work/stdout.
point() {
  local image=$1 tool=$2 prep=$3 cmd=$4 post=${5:-} t u s rss w0 r0 w1 r1 dirty wb sp sys
  local best=999999 row= maxrss=0 maxaux=0
  for _ in $(seq "$runs"); do
    aux_cpu= aux_rss=0
    eval "$prep"
    read -r w0 r0 <<<"$(disk_mb)"
    rm -f "$work/sample.ready"
    python3 -c '
import signal, sys, time
m = {"Dirty": 0, "Writeback": 0}
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
open(sys.argv[1], "w").close()
while not stop:
    for line in open("/proc/meminfo"):
        k, v = line.split(":")
        if k in m:
            m[k] = max(m[k], int(v.split()[0]))
    time.sleep(0.1)
print(m["Dirty"], m["Writeback"])' "$work/sample.ready" >"$work/sample" &
    sp=$!
    until [[ -e $work/sample.ready ]]; do sleep 0.01; done
    timed "$work/time" "set -o pipefail; $cmd" >"$work/stdout" 2>"$work/err" ||
      { cat "$work/err" >&2; echo "failed: $cmd" >&2; exit 1; }
    kill -TERM "$sp" && { wait "$sp" || true; }
    read -r w1 r1 <<<"$(disk_mb)"
    read -r dirty wb <"$work/sample"
    eval "$post"
    read -r t u s rss <"$work/time"
    maxrss=$((rss > maxrss ? rss : maxrss)) maxaux=$((aux_rss > maxaux ? aux_rss : maxaux))
    if awk -v a="$best" -v b="$t" 'BEGIN{exit !(b<a)}'; then
      best=$t
      row="$t	$(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.2f", u+s}')	RSS	${aux_cpu:--}	AUX	$dirty	$wb	$((w1 - w0))	$((r1 - r0))"
      sys=$s
    fi
  done
  row=${row/RSS/$maxrss} row=${row/AUX/$maxaux}
  local info
  read -r -a info <"$cache/$image/info"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$image" "${series[$image]}" "${xval[$image]}" "${info[2]}" "${info[0]}" \
    "$tool" "$row" "$(du -sb "$cache/$image/layout/blobs" | cut -f1)" "$(cut -d' ' -f1 /proc/loadavg)" "$sys" >>"$tsv"
  printf '%-24s %-12s %8.2f s  %s\n' "$image" "$tool" "$best" "$(tail -1 "$tsv" | cut -f8-15 | tr '\t' ' ')"
}

key=$work/key
head -c 32 /dev/urandom >"$key" && chmod 600 "$key"
mkdir -p "$work/mnt"
sealed_mount() {  # [union]: a fresh mount of the sealed root $root at $work/mnt, read-only or a union
  local mode=--read-only
  [[ ${1:-} == union ]] && mode=
  mountpoint -q "$work/mnt" && umount "$work/mnt"
  [[ -n $sealed_pid ]] && { wait "$sealed_pid" 2>/dev/null || true; }
  # shellcheck disable=SC2086 # $mode: one flag or none
  "$bin/sealroot" mount "$work/store" "$work/mnt" --root "$root" --key-file "$key" $mode -f 2>"$work/mount.log" &
  sealed_pid=$!
  for _ in $(seq 100); do mountpoint -q "$work/mnt" && return; sleep 0.1; done
  cat "$work/mount.log" >&2; exit 1
}
daemon_stats() { aux_cpu=$(cpu_of "$sealed_pid") aux_rss=$(awk '/VmHWM/{print $2}' "/proc/$sealed_pid/status"); }
echo '{"default": [{"type": "insecureAcceptAnything"}]}' >"$work/policy.json"
cat >"$work/agent.json" <<JSON
{"ttrpc": ["unix://$work/agent.sock"], "grpc": ["unix://$work/agent-grpc.sock"],
 "state_dir": "$work/state", "store_dir": "$work/astore",
 "trust": {"policy": "$work/policy.json"},
 "registry": {"tls_verify": false}, "state_sealing": {"source": "file"}}
JSON
start_agent() {
  /usr/bin/time -f '%M %U %S' -o "$work/agent.time" "$bin/enclave-agent" --config "$work/agent.json" \
    --log-level warning 2>"$work/agent.log" &
  agent_pid=$!
  for _ in $(seq 100); do "$bin/sealroot" ctl health --address "unix://$work/agent.sock" >/dev/null 2>&1 && return; sleep 0.1; done
  cat "$work/agent.log" >&2; exit 1
}
# $agent_pid is /usr/bin/time; the agent is its only child, which gets the SIGTERM.
stop_agent() {
  kill -TERM "$(pgrep -P "$agent_pid")"; wait "$agent_pid" || true; agent_pid=
  read -r aux_rss u s <"$work/agent.time"
  aux_cpu=$(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.2f", u+s}')
}

read -r dirty_thresh bg_thresh < <(awk '/^nr_dirty_threshold/{a=$2} /^nr_dirty_background_threshold/{b=$2} END{print a*4, b*4}' /proc/vmstat)
mem_total=$(awk '/^MemTotal/{print $2}' /proc/meminfo)
for n in "${images[@]}"; do
  layout=$cache/$n/layout
  layer=$cache/$n/layout/blobs/sha256/$(layers_of "$layout" img)
  echo "== $n ($(cat "$cache/$n/info") files dirs content bytes; $(du -sb "$layer" | cut -f1) bytes compressed)"
  point "$n" floor "rm -rf $work/out; mkdir $work/out; fresh $layer" "igzip -dc $layer | tar -x -C $work/out"
  point "$n" floor-sync "rm -rf $work/out; mkdir $work/out; fresh $layer" \
    "igzip -dc $layer | tar -x -C $work/out && sync -f $work/out"
  point "$n" umoci "rm -rf $work/out; fresh $layer" "umoci raw unpack --image $layout:img $work/out"
  point "$n" unpack "rm -rf $work/out $work/plain; fresh $layer" "$bin/sealroot unpack --insecure-policy --quiet oci:$layout:img $work/plain"
  point "$n" seal "rm -rf $work/store; fresh $layer" \
    "$bin/sealroot unpack --insecure-policy --quiet oci:$layout:img --seal $work/store --key-file $key --json"
  root=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["root_hash"])' "$work/stdout")
  point "$n" tar-sealed "sealed_mount; drop" "cd $work/mnt && tar cf - . | wc -c" daemon_stats
  sealed_bytes=$(cat "$work/stdout")
  point "$n" tar-union "sealed_mount union; drop" "cd $work/mnt && tar cf - . | wc -c" daemon_stats
  union_bytes=$(cat "$work/stdout")
  point "$n" tar-plain "drop" "cd $work/plain/rootfs && tar cf - . | wc -c"
  [[ $sealed_bytes == "$(cat "$work/stdout")" && $union_bytes == "$(cat "$work/stdout")" ]] ||
    echo "MISMATCH: $n: tar of the sealed mount $sealed_bytes bytes, of the union $union_bytes, of the plain tree $(cat "$work/stdout")" | tee -a "$work/mismatch"
  umount "$work/mnt" && { wait "$sealed_pid" || true; } && sealed_pid=
  echo "$n $(du -sb "$work/store" | cut -f1) $(du -sb "$work/plain/rootfs" | cut -f1) $(cut -d' ' -f2 "$cache/$n/info")" >>"$work/sizes"
  rm -rf "$work/plain" "$work/store"
  # the registry's copy of the layer in the page cache, as the floor's was
  d=${layer##*/}
  point "$n" agent-pull "rm -rf $work/state $work/astore; fresh $cache/registry/docker/registry/v2/blobs/sha256/${d:0:2}/$d/data $(command -v docker-registry); start_agent" \
    "$bin/sealroot ctl pull docker://127.0.0.1:$port/scaling/$n:latest --container-id bench --address unix://$work/agent.sock" stop_agent
done
rm -rf "$work/state" "$work/astore" "$work/out"

for n in "${sweep_images[@]}"; do
  layout=$cache/$n/layout
  layer=$cache/$n/layout/blobs/sha256/$(layers_of "$layout" img)
  echo "== $n ($(cat "$cache/$n/info") files dirs content bytes): memory per file"
  point "$n" seal "rm -rf $work/store; fresh $layer" \
    "$bin/sealroot unpack --insecure-policy --quiet oci:$layout:img --seal $work/store --key-file $key --json"
  root=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["root_hash"])' "$work/stdout")
  point "$n" tar-sealed "sealed_mount; drop" "cd $work/mnt && tar cf - . | wc -c" daemon_stats
  umount "$work/mnt" && { wait "$sealed_pid" || true; } && sealed_pid=
  echo "$n $(du -sb "$work/store" | cut -f1) 0 $(cut -d' ' -f2 "$cache/$n/info")" >>"$work/sizes"
  rm -rf "$work/store"
done

if [[ -n $counts ]]; then
  n=files-${counts##* }-${count_mb}mb
  layer=$cache/$n/layout/blobs/sha256/$(layers_of "$cache/$n/layout" img)
  echo "== $n: the floor right after deleting as many files (sync, caches kept)"
  point "$n" floor-after-rm \
    "rm -rf $work/out; mkdir $work/out; fresh $layer; igzip -dc $layer | tar -x -C $work/out; rm -rf $work/out; mkdir $work/out; sync" \
    "igzip -dc $layer | tar -x -C $work/out"
  rm -rf "$work/out"
fi
echo "== the disk: 1 GiB sequential write, dd conv=fdatasync"
disk_rate=$(dd if=/dev/zero of="$work/dd" bs=1M count=1024 conv=fdatasync 2>&1 | awk '/copied/{print $(NF-1), $NF}')
rm -f "$work/dd"
echo "$disk_rate"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(($(date +%s) - t_start))

# ---- the report ----
{ head -1 "$tsv"; tail -n +2 "$tsv" | sort -t$'\t' -k2,2 -k6,6 -k3,3n; } >"$outdir/points.tsv"
gnuplot -e "tsv='$outdir/points.tsv'; outdir='$outdir'" "$outdir/plot.gp"
python3 "$outdir/report.py" "$outdir/points.tsv" "$work/sizes" >"$outdir/RESULTS.md" <<EOF
date=$(date -u +%F)
cores=$(nproc)
kernel=$(uname -r)
mem_total_kib=$mem_total
runs=$runs
load_start=$load_start
load_end=$load_end
elapsed_s=$elapsed
dirty_threshold_kib=$dirty_thresh
dirty_background_threshold_kib=$bg_thresh
dirty_expire_cs=$(cat /proc/sys/vm/dirty_expire_centisecs)
disk=$dev
disk_rate=$disk_rate
bin=$bin
mismatch=$(cat "$work/mismatch" 2>/dev/null | tr '\n' ' ')
EOF
echo "wrote $outdir/RESULTS.md, points.tsv and the plots in ${elapsed}s"
