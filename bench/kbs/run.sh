#!/usr/bin/env bash
# KBS benchmarks; prints the figures bench/kbs/RESULTS.md records.
#   bench/kbs/run.sh [BUILD_DIR]   (default build/release)
# kbs_bench is the attester (the sim TEE in-process: quote, P-256 tee key, JWE): attestation + the
# first resource (auth, quote, attest, GET), and each further resource in the same session;
# 200 sessions x 10 further resources, over loopback HTTP. The broker is the kbs library in the
# bench process, and, when the build has it, the `sealroot keyprovider --kbs` binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/release}
bench=$build/bin/kbs_bench
[[ -x $bench ]] || { echo "build $bench first (cmake --build $build --target kbs_bench)" >&2; exit 1; }
work=$(mktemp -d /tmp/sealroot-kbs-bench.XXXXXX)
broker_pid=
trap '[[ -n $broker_pid ]] && kill "$broker_pid" 2>/dev/null; rm -rf "$work"' EXIT
mr=$(printf '11%.0s' $(seq 32))
mkdir -p "$work/res/default/key"
head -c 32 /dev/urandom >"$work/res/default/key/layer"

echo "== broker in process, loopback HTTP: 200 sessions x 10 further resources"
KBS_BENCH_RESOURCES=$work/res "$bench" serve "$mr" 200 10 kbs:///default/key/layer

if [[ -x $build/bin/sealroot ]]; then
  echo "{\"trusted\":[{\"mrenclave\":\"$mr\"}]}" >"$work/policy.json"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$build/bin/sealroot" keyprovider --kbs --sim-root --listen "127.0.0.1:$port" --policy "$work/policy.json" \
    --resources "$work/res" --log-level error >"$work/broker.log" 2>&1 &
  broker_pid=$!
  for _ in $(seq 100); do grep -q listening "$work/broker.log" && break; sleep 0.05; done
  echo "== sealroot keyprovider --kbs: 200 sessions x 10 further resources"
  "$bench" "http://127.0.0.1:$port" "$mr" 200 10 kbs:///default/key/layer
fi
