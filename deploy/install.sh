#!/usr/bin/env bash
# deploy/install.sh [--prefix DIR] [--config FILE] [--build DIR] [--no-restart]
# Installs the sealroot runtime into this node's containerd 1.6: the shim, the sealroot tool (the
# sim launcher), enclave-agent and sealroot-boot; a shim config (kept if present); and the runtime
# section of deploy/containerd-config.toml appended to containerd's config.toml (once), then
# restarts containerd. Writing the agent's measured manifest /etc/sealroot/agent-manifest.json
# (trust policy, key broker, the boot and its identity, the workload policy) and signing the
# enclaves with their manifests is the owner's step: design/shim.md "Deploying".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
prefix=/usr/local
config=/etc/containerd/config.toml
build=$here/../build/release
restart=1
while (($#)); do
  case $1 in
    --prefix) prefix=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --no-restart) restart=0; shift ;;
    *) echo "usage: $0 [--prefix DIR] [--config FILE] [--build DIR] [--no-restart]" >&2; exit 2 ;;
  esac
done
for program in containerd-shim-sealroot-v2 sealroot enclave-agent sealroot-boot; do
  [[ -x $build/bin/$program ]] || { echo "install: $build/bin/$program not built (scripts/build release)" >&2; exit 1; }
done
install -D -m 0755 "$build/bin/containerd-shim-sealroot-v2" "$prefix/bin/containerd-shim-sealroot-v2"
install -D -m 0755 "$build/bin/sealroot" "$prefix/bin/sealroot"
install -D -m 0755 "$build/bin/enclave-agent" "$prefix/libexec/sealroot/enclave-agent"
install -D -m 0755 "$build/bin/sealroot-boot" "$prefix/libexec/sealroot/sealroot-boot"
install -d -m 0700 /etc/sealroot /var/lib/sealroot/pods
[[ -e /etc/sealroot/shim.json ]] ||
  sed "s|/usr/local|$prefix|g" "$here/shim.json" >/etc/sealroot/shim.json
mkdir -p "$(dirname "$config")"
touch "$config"
if grep -q 'containerd.runtimes.sealroot\]' "$config"; then
  echo "install: $config already has the sealroot runtime"
else
  grep -q '^version *= *2' "$config" || [[ ! -s $config ]] || {
    echo "install: $config is not a version 2 containerd config; add deploy/containerd-config.toml by hand" >&2
    exit 1
  }
  [[ -s $config ]] || echo "version = 2" >"$config"
  { echo; cat "$here/containerd-config.toml"; } >>"$config"
  echo "install: added the sealroot runtime to $config"
fi
if ((restart)) && command -v systemctl >/dev/null && systemctl is-active -q containerd; then
  systemctl restart containerd
fi
echo "install: done; the shim reads /etc/sealroot/shim.json"
