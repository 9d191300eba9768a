#!/usr/bin/env bash
# deploy/install.sh [--prefix DIR] [--config FILE] [--build DIR] [--no-restart]
# Installs the sealroot runtime into this node's containerd 1.6: the shim, the sealroot tool (the
# sim launcher), enclave-agent and sealroot-boot; sealroot-snapshotter and its systemd service;
# the shim's and the snapshotter's configs (kept if present); and deploy/containerd-config.toml
# merged into containerd's config.toml (once: the runtime and the proxy snapshotter appended, the
# CRI's snapshotter keys set in its existing containerd table or appended with it), then starts
# the snapshotter and restarts containerd. Writing the agent's measured manifest /etc/sealroot/agent-manifest.json
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
for program in containerd-shim-sealroot-v2 sealroot enclave-agent sealroot-boot sealroot-snapshotter; do
  [[ -x $build/bin/$program ]] || { echo "install: $build/bin/$program not built (scripts/build release)" >&2; exit 1; }
done
install -D -m 0755 "$build/bin/containerd-shim-sealroot-v2" "$prefix/bin/containerd-shim-sealroot-v2"
install -D -m 0755 "$build/bin/sealroot" "$prefix/bin/sealroot"
install -D -m 0755 "$build/bin/sealroot-snapshotter" "$prefix/bin/sealroot-snapshotter"
install -D -m 0755 "$build/bin/enclave-agent" "$prefix/libexec/sealroot/enclave-agent"
install -D -m 0755 "$build/bin/sealroot-boot" "$prefix/libexec/sealroot/sealroot-boot"
install -d -m 0700 /etc/sealroot /var/lib/sealroot/pods
[[ -e /etc/sealroot/shim.json ]] ||
  sed "s|/usr/local|$prefix|g" "$here/shim.json" >/etc/sealroot/shim.json
[[ -e /etc/sealroot/snapshotter.json ]] || install -m 0600 "$here/snapshotter.json" /etc/sealroot/snapshotter.json
if [[ -d /etc/systemd/system ]]; then
  sed "s|/usr/local|$prefix|g" "$here/sealroot-snapshotter.service" >/etc/systemd/system/sealroot-snapshotter.service
fi
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
  cri_table='[plugins."io.containerd.grpc.v1.cri".containerd]'
  if awk -v t="$cri_table" '{ sub(/^[ \t]+/, "") } $0 == t { found = 1 } END { exit !found }' "$config"; then
    # The CRI's containerd table exists (a second one is a TOML error): set the two keys in it
    # and append the rest of the snippet, which ends with that table.
    awk -v t="$cri_table" '
      { line = $0; sub(/^[ \t]+/, "", line) }
      line == t { print; print "  snapshotter = \"sealroot\""; print "  disable_snapshot_annotations = false"; inside = 1; next }
      line ~ /^\[/ { inside = 0 }
      inside && line ~ /^(snapshotter|disable_snapshot_annotations)[ \t]*=/ { next }
      { print }' "$config" >"$config.sealroot-new"
    mv "$config.sealroot-new" "$config"
    { echo; awk -v t="$cri_table" '$0 == t { exit } { print }' "$here/containerd-config.toml"; } >>"$config"
  else
    { echo; cat "$here/containerd-config.toml"; } >>"$config"
  fi
  echo "install: added the sealroot runtime and snapshotter to $config"
fi
if ((restart)) && command -v systemctl >/dev/null; then
  systemctl daemon-reload
  systemctl enable --now sealroot-snapshotter
  if systemctl is-active -q containerd; then systemctl restart containerd; fi
fi
echo "install: done; the shim reads /etc/sealroot/shim.json, the snapshotter /etc/sealroot/snapshotter.json"
