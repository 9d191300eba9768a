#!/usr/bin/env bash
# The containerd shim against runc, same busybox image (`echo hello`), one private containerd:
#  * new container in a running pod: `ctr run --rm` of an app container into a pod whose stub
#    enclave already runs (CreateContainer -> first output; image already sealed) vs `ctr run --rm`
#    with runc (image already unpacked);
#  * new pod, with its breakdown: the sandbox (stub enclave launch: measure, verify, agent up),
#    the first container (pull, verify, seal, boot);
#  * `ctr run --rm` of the image both ways (sealroot: a pod of its own every time).
#   bench/shim/run.sh [BUILD_DIR] [ITERATIONS]      (BUILD_DIR default build/release)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$(cd "${1:-build/release}" && pwd)
n=${2:-10}
for p in sealroot enclave-agent sealroot-boot containerd-shim-sealroot-v2; do
  [[ -x $build/bin/$p ]] || { echo "build $build first ($p)" >&2; exit 2; }
done
work=$(mktemp -d /tmp/sealroot-bench-shim.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# The image, for containerd (oci-archive, imported) and in a loopback registry (for the agent).
(
  cd "$work"
  umoci init --layout oci && umoci new --image oci:bb
  umoci unpack --rootless --image oci:bb b >/dev/null
  mkdir -p b/rootfs/bin b/rootfs/etc && cp /bin/busybox b/rootfs/bin/
  chroot b/rootfs /bin/busybox --install -s /bin
  umoci repack --image oci:bb b && umoci config --image oci:bb --config.cmd echo --config.cmd hello
  skopeo copy -q oci:oci:bb oci-archive:bb.tar:docker.io/library/bb:latest
) >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
  "$work/registry" "$port" >"$work/registry.yml"
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
skopeo --insecure-policy copy -q --dest-tls-verify=false oci:"$work/oci":bb "docker://127.0.0.1:$port/bench/bb:1"
image=127.0.0.1:$port/bench/bb:1

# The enclaves and their measured manifests (the boot accepts keys from this signer's product 1;
# the agent's manifest is its whole configuration, the image's own command only), the shim's
# configuration.
s=$build/bin/sealroot
$s enclave keygen "$work/signer.pem" >/dev/null
signer=$($s enclave sign "$build/bin/sealroot-boot" --key "$work/signer.pem" --out "$work/unused.sig" --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["mrsigner"])')
echo "{\"stub\": {\"mrsigner\": \"$signer\", \"isv_prod_id\": 1, \"min_isv_svn\": 1}}" >"$work/boot-manifest.json"
$s enclave sign "$build/bin/sealroot-boot" --manifest "$work/boot-manifest.json" --key "$work/signer.pem" \
  --out "$work/boot.sig" --isv-prod-id 2 --isv-svn 1 >/dev/null
boot_mr=$($s enclave measure "$build/bin/sealroot-boot" --manifest "$work/boot-manifest.json")
cat >"$work/agent-manifest.json" <<JSON
{"registry": {"tls_verify": false}, "trust": {"policy": {"default": [{"type": "insecureAcceptAnything"}]}},
 "app_enclaves": [{"mrenclave": "$boot_mr"}],
 "boot": {"executable": "$build/bin/sealroot-boot", "sigstruct": "$work/boot.sig",
          "manifest": "$work/boot-manifest.json"}}
JSON
$s enclave sign "$build/bin/enclave-agent" --manifest "$work/agent-manifest.json" --key "$work/signer.pem" \
  --out "$work/agent.sig" --isv-prod-id 1 --isv-svn 1 >/dev/null
mkdir -p "$work/s" "$work/rootfs"
cat >"$work/shim.json" <<JSON
{"launcher": "$s", "agent": {"executable": "$build/bin/enclave-agent", "sigstruct": "$work/agent.sig"},
 "manifest": "$work/agent-manifest.json", "state_root": "$work/pods", "socket_root": "$work/s"}
JSON

# A private containerd with the shim on its PATH.
cat >"$work/config.toml" <<TOML
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/containerd.sock"
TOML
PATH=$build/bin:$PATH containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
pids+=($!)
ctr() { command ctr --address "$work/containerd.sock" --namespace bench "$@"; }
for _ in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done
ctr image import "$work/bb.tar" >/dev/null

sealroot_keep=(run --runtime io.containerd.sealroot.v2 --runtime-config-path "$work/shim.json"
               --annotation "io.kubernetes.cri.image-name=$image")
sealroot_run=("${sealroot_keep[@]}" --rm)
root=(--rootfs "$work/rootfs")  # last: ctr takes flags only before the rootfs path
# median_ms CMD...: runs CMD $n times (each must print "hello"), prints the median in ms.
median_ms() {
  local ms=() i s e out
  for i in $(seq "$n"); do
    s=$(date +%s%N)
    out=$("$@" "b$RANDOM$i")
    e=$(date +%s%N)
    [[ $out == hello ]] || { echo "printed '$out': $*" >&2; tail -20 "$work/containerd.log" >&2; exit 1; }
    ms+=($(((e - s) / 1000000)))
  done
  printf '%s\n' "${ms[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
elapsed_ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(((e - s) / 1000000)); }

runc_rm=$(median_ms ctr run --rm docker.io/library/bb:latest)
ours_rm=$(median_ms ctr "${sealroot_run[@]}" "${root[@]}")

# A pod: its sandbox (pause + stub enclave), then containers in it.
pod=(--annotation io.kubernetes.cri.container-type=container --annotation io.kubernetes.cri.sandbox-id=benchpod)
sandbox_ms=$(elapsed_ms ctr run -d --runtime io.containerd.sealroot.v2 --runtime-config-path "$work/shim.json" \
  --annotation io.kubernetes.cri.container-type=sandbox --rootfs "$work/rootfs" benchpod)
# The first container's task stays (detached, exited, not deleted): it holds the sealed image,
# so later containers of the pod reuse it (the agent removes an image with its last container).
first_ms=$(elapsed_ms ctr "${sealroot_keep[@]}" -d "${pod[@]}" "${root[@]}" first)
in_pod=$(median_ms ctr "${sealroot_run[@]}" "${pod[@]}" "${root[@]}")
ctr task rm first >/dev/null && ctr container rm first >/dev/null
ctr task kill --signal SIGKILL benchpod >/dev/null
for _ in $(seq 100); do [[ $(ctr task ls | awk '$1=="benchpod" {print $3}') == STOPPED ]] && break; sleep 0.1; done
ctr task rm benchpod >/dev/null && ctr container rm benchpod >/dev/null

echo "iterations: $n (medians), build: $build"
printf '%-58s %8s ms\n' "runc: ctr run --rm (image unpacked)" "$runc_rm"
printf '%-58s %8s ms\n' "sealroot: new container in a running pod (ctr run --rm)" "$in_pod"
printf '%-58s %8s ms\n' "sealroot: new pod: sandbox (stub enclave launch, agent up)" "$sandbox_ms"
printf '%-58s %8s ms\n' "sealroot: new pod: first container (pull, seal, attested start)" "$first_ms"
printf '%-58s %8s ms\n' "sealroot: ctr run --rm (a pod of its own each time)" "$ours_rm"
awk -v a="$in_pod" -v b="$runc_rm" -v c="$ours_rm" \
  'BEGIN {printf "ratio in-pod/runc=%.2f  ctr-run-rm sealroot/runc=%.2f (lower is faster)\n", a / b, c / b}'
