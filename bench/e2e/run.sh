#!/usr/bin/env bash
# Cold start: sealroot (attested app enclave on a sealed root) vs `ctr run --rm` on containerd,
# same busybox image (`echo hello`), same run. Prints both, the ratio, and peak RSS.
#   bench/e2e/run.sh [BUILD_DIR] [ITERATIONS]      (BUILD_DIR default build/release)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/release}
n=${2:-20}
[[ -x $build/bin/cold_start && -x $build/bin/sealroot-boot ]] || { echo "build $build first (cold_start, sealroot-boot)" >&2; exit 2; }
work=$(mktemp -d /tmp/sealroot-bench-e2e.XXXXXX)
ctd_pid=
cleanup() {
  [[ -n $ctd_pid ]] && kill "$ctd_pid" 2>/dev/null && wait "$ctd_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The same busybox image for containerd: one layer, Cmd ["echo","hello"].
(
  cd "$work"
  umoci init --layout oci && umoci new --image oci:bb
  umoci unpack --rootless --image oci:bb b >/dev/null
  mkdir -p b/rootfs/bin b/rootfs/etc && cp /bin/busybox b/rootfs/bin/
  chroot b/rootfs /bin/busybox --install -s /bin
  umoci repack --image oci:bb b && umoci config --image oci:bb --config.cmd echo --config.cmd hello
  skopeo copy -q oci:oci:bb oci-archive:bb.tar:docker.io/library/bb:latest
) >/dev/null

# A private containerd (root, state and sockets in $work).
mkdir -p "$work/ctd"
cat >"$work/ctd/config.toml" <<TOML
version = 2
root = "$work/ctd/root"
state = "$work/ctd/state"
[grpc]
  address = "$work/ctd/containerd.sock"
[ttrpc]
  address = "$work/ctd/containerd-ttrpc.sock"
TOML
containerd --config "$work/ctd/config.toml" >"$work/ctd/log" 2>&1 &
ctd_pid=$!
for _ in $(seq 100); do [[ -S $work/ctd/containerd.sock ]] && break; sleep 0.1; done
ctr() { command ctr -a "$work/ctd/containerd.sock" "$@"; }
ctr image import "$work/bb.tar" >/dev/null

ctr_ms=()
for i in $(seq "$n"); do
  s=$(date +%s%N)
  out=$(ctr run --rm docker.io/library/bb:latest "bench$i")
  e=$(date +%s%N)
  [[ $out == hello ]] || { echo "ctr run printed '$out'" >&2; exit 1; }
  ctr_ms+=($(( (e - s) / 1000 )))
done
ctr_median=$(printf '%s\n' "${ctr_ms[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int(NR/2)+1]/1000}')
ctr_rss=$(/usr/bin/time -f %M ctr -a "$work/ctd/containerd.sock" run --rm docker.io/library/bb:latest benchrss \
          2>&1 >/dev/null | tail -1)

ours=$(/usr/bin/time -f "host_peak_rss_kb=%M" "$build/bin/cold_start" --boot "$build/bin/sealroot-boot" \
       --iterations "$n" --work "$work/sealroot" 2>&1)
echo "$ours"
total=$(awk '/^total/ {sub("median_ms=", "", $2); print $2}' <<<"$ours")
first=$(awk '/^first_output/ {sub("median_ms=", "", $2); print $2}' <<<"$ours")
echo "ctr_run_rm median_ms=$ctr_median ctr_client_peak_rss_kb=$ctr_rss (containerd and shim not included)"
awk -v t="$total" -v f="$first" -v c="$ctr_median" \
  'BEGIN {printf "ratio total/ctr=%.2f first_output/ctr=%.2f (lower is faster)\n", t / c, f / c}'
