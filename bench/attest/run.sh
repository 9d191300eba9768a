#!/usr/bin/env bash
# Attestation benchmarks on the release build; prints the figures bench/attest/RESULTS.md records.
#   bench/attest/run.sh [BUILD_DIR]   (default build/release)
# 1. handshake + key release latency on sim (target: median <= 1 ms);
# 2. MRENCLAVE throughput on a large executable (a real ELF padded to 512 MiB), with sha256sum
#    over the same bytes in the same run as the peer, and peak RSS of both.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/release}
bench=$build/bin/attest_bench
[[ -x $bench ]] || { echo "build $bench first (cmake --build $build --target attest_bench)" >&2; exit 1; }
work=$(mktemp -d /tmp/sealroot-attest-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "== handshake + release (sim, sockets to the simulated CPUs, 2000 runs)"
"$bench" handshake 2000

echo "== measurement of a large executable"
big=$work/big-exe
cp "$bench" "$big"
truncate -s 512M "$big"         # sparse tail: bytes the measurement must still hash
head -c 64M /dev/urandom | dd of="$big" bs=1M seek=16 conv=notrunc status=none
cat "$big" >/dev/null           # warm the page cache for both contenders
for i in 1 2 3; do
  /usr/bin/time -f "sealroot_rss_kb=%M" "$bench" measure "$big" 2>&1
  /usr/bin/time -f "sha256sum_seconds=%e sha256sum_rss_kb=%M" sha256sum "$big" 2>&1 >/dev/null
done
