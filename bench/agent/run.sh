#!/usr/bin/env bash
# bench/agent/run.sh — the enclave-agent against its peers, in one run:
#   PullImage of the ~650 MB image, JWE-encrypted, from a loopback registry, through the agent
#   (sealroot ctl pull over ttrpc)  vs  igzip -dc of its layers (the decoder's floor: ISA-L, the
#   decoder the agent uses)  vs  igzip -dc | tar -x of its layers, then sync (the floor of landing
#   the files on this disk)  vs  gzip -dc of its layers  vs  sealroot unpack --seal (CLI);
#   the agent's peak RSS over the whole pull (/usr/bin/time -f %M around the daemon);
#   grpc.Health/Check round trips over ttrpc and gRPC (median, p99).
# The two-layer image (/usr/include, /usr/bin) is shared with bench/image (cached under /var/tmp,
# built by bench_image in bench/lib.sh if missing). The layers are read once before, so the
# decoders start with them in the page cache; every pull starts with nothing dirty and only the
# registry's blobs cached (fresh, bench/lib.sh), as a previous pull's writeback would otherwise
# land in this one's syncfs.
# Writes bench/agent/RESULTS.md. Environment: SEALROOT_BIN (default build/release/bin), BENCH_BIN
# (where agent_health_latency is; default SEALROOT_BIN), RUNS (default 3).
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$PWD
bin=${SEALROOT_BIN:-$top/build/release/bin}
bench_bin=${BENCH_BIN:-$bin}
runs=${RUNS:-3}
cache=/var/tmp/sealroot-bench-image
work=$(mktemp -d /var/tmp/sealroot-bench-agent.XXXXXX)
registry_pid=
agent_pid=
cleanup() {
  [[ -n $agent_pid ]] && kill "$(pgrep -P "$agent_pid")" 2>/dev/null
  [[ -n $registry_pid ]] && kill "$registry_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
for p in enclave-agent sealroot; do [[ -x $bin/$p ]] || { echo "no $bin/$p: build first" >&2; exit 1; }; done

source "$top/bench/lib.sh"  # bench_image, layers_of (its measure is replaced below)
bench_image "$cache"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

openssl genrsa -out "$work/priv.pem" 2048 2>/dev/null
openssl rsa -in "$work/priv.pem" -pubout -out "$work/pub.pem" 2>/dev/null
echo '{"default": [{"type": "insecureAcceptAnything"}]}' >"$work/policy.json"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\n' \
  "$work/registry" "$port" >"$work/registry.yml"
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.2; done
ref=docker://127.0.0.1:$port/bench/enc:latest
skopeo --insecure-policy copy --quiet --dest-tls-verify=false --encryption-key "jwe:$work/pub.pem" \
  "oci:$cache/layout:big" "$ref"
image_size=$(du -sb "$work/registry" | cut -f1)

declare -A best_time max_rss
record() {  # NAME SECONDS RSS_KIB
  local name=$1
  best_time[$name]=$(awk -v a="${best_time[$name]:-999999}" -v b="$2" 'BEGIN{print (b<a)?b:a}')
  max_rss[$name]=$(( $3 > ${max_rss[$name]:-0} ? $3 : ${max_rss[$name]:-0} ))
}
measure() {  # NAME PREP CMD
  local t rss
  for _ in $(seq "$runs"); do
    eval "$2"
    timed "$work/time" "$3" >/dev/null 2>"$work/err" ||
      { cat "$work/err" >&2; echo "failed: $3" >&2; exit 1; }
    read -r t _ _ rss <"$work/time"
    record "$1" "$t" "$rss"
  done
  printf '%-40s %8.3f s  %8d KiB\n' "$1" "${best_time[$1]}" "${max_rss[$1]}"
}
ratio() { awk -v a="${best_time[$1]}" -v b="${best_time[$2]}" 'BEGIN{printf "%.2f", a/b}'; }

echo "== PullImage of a $((image_size / 1000000)) MB JWE-encrypted image from a loopback registry"
layers=$(layers_of "$cache/layout" big)
for l in $layers; do cat "$cache/layout/blobs/sha256/$l" >/dev/null; done
measure "igzip -dc of its layers" ":" "for l in $layers; do igzip -dc $cache/layout/blobs/sha256/\$l >/dev/null; done"
measure "gzip -dc of its layers" ":" "for l in $layers; do gzip -dc $cache/layout/blobs/sha256/\$l >/dev/null; done"
measure "igzip -dc | tar -x of its layers, sync" \
  "fresh '$work/registry $cache/layout/blobs' $work/tree; mkdir $work/tree" \
  "for l in $layers; do igzip -dc $cache/layout/blobs/sha256/\$l | tar -x -C $work/tree; done; sync -f $work/tree"
measure "sealroot unpack --seal (CLI)" "fresh $work/registry $work/cli-store $work/cli.key" \
  "$bin/sealroot unpack $ref --seal $work/cli-store --key-file $work/cli.key --policy $work/policy.json --decryption-key $work/priv.pem --tls-verify=false --no-blob-cache"

cat >"$work/agent.json" <<JSON
{"ttrpc": ["unix://$work/agent.sock"], "grpc": ["unix://$work/agent-grpc.sock"],
 "state_dir": "$work/state", "store_dir": "$work/store",
 "trust": {"policy": "$work/policy.json", "decryption_keys": ["$work/priv.pem"]},
 "registry": {"tls_verify": false}, "state_sealing": {"source": "file"}}
JSON
start_agent() {
  /usr/bin/time -f '%M' -o "$work/agent.rss" "$bin/enclave-agent" --config "$work/agent.json" --log-level warning \
    2>"$work/agent.log" &
  agent_pid=$!
  for _ in $(seq 100); do "$bin/sealroot" ctl health --address "unix://$work/agent.sock" >/dev/null 2>&1 && return; sleep 0.1; done
  cat "$work/agent.log" >&2; exit 1
}
# $agent_pid is /usr/bin/time; the agent is its only child, which gets the SIGTERM.
stop_agent() { kill -TERM "$(pgrep -P "$agent_pid")"; wait "$agent_pid" || true; agent_pid=; }
for _ in $(seq "$runs"); do
  fresh "$work/registry" "$work/state" "$work/store"
  start_agent
  timed "$work/time" "$bin/sealroot ctl pull $ref --container-id bench --address unix://$work/agent.sock" >/dev/null
  read -r t _ <"$work/time"
  stop_agent
  record "enclave-agent PullImage (ttrpc)" "$t" "$(cat "$work/agent.rss")"
done
printf '%-40s %8.3f s  %8d KiB (agent peak RSS)\n' "enclave-agent PullImage (ttrpc)" \
  "${best_time[enclave-agent PullImage (ttrpc)]}" "${max_rss[enclave-agent PullImage (ttrpc)]}"

echo "== grpc.Health/Check round trips"
start_agent
latency=$("$bench_bin/agent_health_latency" "unix://$work/agent.sock" "$work/agent-grpc.sock" 5000)
stop_agent
echo "$latency"
field() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("%.0f" % d[sys.argv[2]][sys.argv[3]])' "$latency" "$1" "$2"; }

{
  echo "# bench/agent results"
  echo
  echo "Produced by \`bench/agent/run.sh\` on $(date -u +%F) ($(nproc) cores, $runs runs each, best time, highest peak RSS)."
  echo "Image: /usr/include + /usr/bin as two gzip layers, JWE-encrypted by skopeo, $((image_size / 1000000)) MB in the registry."
  echo "Load average at the start: $load_start; when the run ended: $(cut -d' ' -f1-3 /proc/loadavg) (other jobs share the machine: compare ratios, not seconds)."
  echo
  floor="igzip -dc | tar -x of its layers, sync"
  echo "| what | time | peak RSS | ratio to igzip -dc | ratio to igzip -dc \\| tar -x | ratio to gzip -dc |"
  echo "|---|---:|---:|---:|---:|---:|"
  for n in "igzip -dc of its layers" "$floor" "gzip -dc of its layers" "sealroot unpack --seal (CLI)" "enclave-agent PullImage (ttrpc)"; do
    echo "| ${n//|/\\|} | ${best_time[$n]} s | ${max_rss[$n]} KiB | $(ratio "$n" "igzip -dc of its layers")× |" \
      "$(ratio "$n" "$floor")× | $(ratio "$n" "gzip -dc of its layers")× |"
  done
  echo
  pull="enclave-agent PullImage (ttrpc)"
  echo "Targets: PullImage / igzip -dc **$(ratio "$pull" "igzip -dc of its layers")×**, / igzip -dc | tar -x" \
    "**$(ratio "$pull" "$floor")×** (target ≤ 1.5×); agent peak RSS during the pull" \
    "**$((max_rss[$pull] / 1024)) MiB** (target ≤ 64 MiB)."
  echo
  echo "| health check (5000 sequential calls) | median | p99 |"
  echo "|---|---:|---:|"
  echo "| ttrpc (unix socket) | $(field ttrpc median_us) µs | $(field ttrpc p99_us) µs |"
  echo "| gRPC (unix socket) | $(field grpc median_us) µs | $(field grpc p99_us) µs |"
} >bench/agent/RESULTS.md
cat bench/agent/RESULTS.md
