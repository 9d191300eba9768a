#!/usr/bin/env bash
# bench/image/run.sh — the image path against its peers, in one run, on the same input:
#   sealroot unpack (OCI layout)   vs  umoci raw unpack, umoci unpack
#   sealroot pull (registry)       vs  skopeo copy (registry -> OCI layout)
#   sealroot unpack (registry)     (pull + verify + unpack in one pass)
#   gzip decoders (zlib vs ISA-L) on the image's biggest layer
# The ~650 MB two-layer image (/usr/include, /usr/bin) is built once and cached under /var/tmp.
# Each command runs RUNS times (default 3); the table shows the best wall time, the CPU time
# (user+sys) of that run and the highest peak RSS (/usr/bin/time). Before each run: the previous
# output removed, sync, caches dropped and the image's blobs read again, so every run starts with
# its input in the page cache and nothing dirty (the previous run's writeback, or the deletion of
# its 650 MB of files, would otherwise land in the next run's time).
# Writes bench/image/RESULTS.md with the load average at the start and the end.
# Environment: SEALROOT_BIN (default build/release/bin), BENCH_BIN (default: same as SEALROOT_BIN),
# RUNS.
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$PWD
bin=${SEALROOT_BIN:-$top/build/release/bin}
bench_bin=${BENCH_BIN:-$bin}
runs=${RUNS:-3}
cache=/var/tmp/sealroot-bench-image
work=$(mktemp -d /var/tmp/sealroot-bench.XXXXXX)
registry_pid=
cleanup() {
  [[ -n $registry_pid ]] && kill "$registry_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

[[ -x $bin/sealroot ]] || { echo "no $bin/sealroot: run scripts/build release first" >&2; exit 1; }

source "$top/bench/lib.sh"
bench_image "$cache"
image_size=$(du -sb "$cache/layout/blobs" | cut -f1)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
inputs="$cache/layout/blobs $work/registry"

# measure NAME PREP_CMD CMD (bench/lib.sh): best time and max RSS over $runs runs; PREP_CMD runs untimed first.
cpu_ratio() { awk -v a="${cpu_time[$1]}" -v b="${cpu_time[$2]}" 'BEGIN{printf "%.2f", a/b}'; }

out=$work/out
echo "== unpack from an OCI layout ($((image_size / 1000000)) MB compressed)"
measure "umoci raw unpack" "fresh '$inputs' $out" "umoci raw unpack --image $cache/layout:big $out"
measure "umoci unpack" "fresh '$inputs' $out" "umoci unpack --image $cache/layout:big $out"
measure "sealroot unpack (oci:)" "fresh '$inputs' $out" "$bin/sealroot unpack --insecure-policy oci:$cache/layout:big $out"

echo "== registry (loopback docker-registry)"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\n' \
  "$work/registry" "$port" >"$work/registry.yml"
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.2; done
skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci:$cache/layout:big" "docker://127.0.0.1:$port/bench/big:latest"
ref=docker://127.0.0.1:$port/bench/big:latest
measure "skopeo copy (to oci:)" "fresh '$inputs' $out" "skopeo --insecure-policy copy --quiet --src-tls-verify=false $ref oci:$out:big"
measure "sealroot pull (to oci:)" "fresh '$inputs' $out" "$bin/sealroot pull --insecure-policy --tls-verify=false $ref oci:$out:big"
measure "sealroot unpack (registry)" "fresh '$inputs' $out" "$bin/sealroot unpack --insecure-policy --tls-verify=false $ref $out"

echo "== gzip decoders on the biggest layer"
layer=$(ls -S "$cache/layout/blobs/sha256" | head -1)
gunzip_out=$("$bench_bin/image_gunzip_bench" "$cache/layout/blobs/sha256/$layer")
echo "$gunzip_out"

cat >bench/image/RESULTS.md <<MD
# Image path benchmark results

Produced by \`bench/image/run.sh\` on $(date -u +%Y-%m-%d) ($(nproc) vCPU, $(uname -r)); best of $runs runs,
peak RSS the highest of the runs. Image: two gzip layers (\`/usr/include\`, \`/usr/bin\`),
$((image_size / 1000000)) MB compressed. sealroot binary: \`$bin/sealroot\`.

Load average at the start: $load_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg).
Every run starts with the previous output removed, nothing dirty and the image in the page cache.

| command | wall time | CPU time (user+sys) | peak RSS |
|---|---:|---:|---:|
$(for k in "umoci raw unpack" "umoci unpack" "sealroot unpack (oci:)" "skopeo copy (to oci:)" "sealroot pull (to oci:)" "sealroot unpack (registry)"; do
  printf '| %s | %s s | %s s | %s MiB |\n' "$k" "${best_time[$k]}" "${cpu_time[$k]}" "$(( max_rss[$k] / 1024 ))"; done)

Ratios (peer / sealroot; above 1 means sealroot is faster), wall time and CPU time:

- \`umoci raw unpack\` / \`sealroot unpack (oci:)\`: **$(ratio "umoci raw unpack" "sealroot unpack (oci:)")×** wall, **$(cpu_ratio "umoci raw unpack" "sealroot unpack (oci:)")×** CPU (target ≥ 3×)
- \`umoci unpack\` / \`sealroot unpack (oci:)\`: **$(ratio "umoci unpack" "sealroot unpack (oci:)")×** wall, **$(cpu_ratio "umoci unpack" "sealroot unpack (oci:)")×** CPU
- \`skopeo copy\` / \`sealroot pull\`: **$(ratio "skopeo copy (to oci:)" "sealroot pull (to oci:)")×** wall, **$(cpu_ratio "skopeo copy (to oci:)" "sealroot pull (to oci:)")×** CPU
- \`skopeo copy\` + \`umoci unpack\` / \`sealroot unpack (registry)\`: **$(awk -v a="${best_time["skopeo copy (to oci:)"]}" -v b="${best_time["umoci unpack"]}" -v c="${best_time["sealroot unpack (registry)"]}" 'BEGIN{printf "%.2f", (a+b)/c}')×**

gzip decoders (\`image_gunzip_bench\`, the pipeline's own decompression stage, on the biggest layer):

\`\`\`
$gunzip_out
\`\`\`
MD
echo "wrote bench/image/RESULTS.md"
