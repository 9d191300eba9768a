# Step 95: the same confidential container through containerd. A private containerd 1.6 gets the
# sealroot runtime; `ctr run` names step 90's encrypted and signed image by annotation only, so
# containerd never fetches it: containerd-shim-sealroot-v2 launches the pod's stub enclave
# (enclave-agent with step 90's measured manifest and the signature made with it, a unix socket
# of its own), which pulls (the registry credentials from step 90's broker, which trusts that
# MRENCLAVE), verifies, decrypts (the layer key from the same broker) and seals the image and
# starts the container in its sealroot-boot app enclave;
# the output comes back through containerd's FIFOs, the exit code through ctr. A `ctr run` with a
# command of the host's choosing is refused by the owner's workload policy. Removing the
# container leaves no pod state, socket or process behind.
containerd_demo() {
  local bin=$SEALROOT_BIN e2e=$DEMO_WORK/e2e dir=$DEMO_WORK/containerd
  local image=$DEMO_E2E_IMAGE
  mkdir -p "$dir/rootfs" "$dir/s"

  step "containerd: a private containerd 1.6 with the sealroot runtime (shim config: agent, boot, agent manifest)"
  cat >"$dir/shim.json" <<JSON
{"launcher": "$bin/sealroot",
 "agent": {"executable": "$bin/enclave-agent", "sigstruct": "$e2e/agent.sig"},
 "boot": {"executable": "$bin/sealroot-boot", "sigstruct": "$e2e/boot.sig"},
 "manifest": "$e2e/agent-manifest.json",
 "state_root": "$dir/pods", "socket_root": "$dir/s"}
JSON
  cat "$dir/shim.json"
  cat >"$dir/config.toml" <<TOML
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$dir/containerd.sock"
TOML
  containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 &
  local ctd_pid=$!
  echo "kill $ctd_pid 2>/dev/null" >>"$DEMO_WORK/cleanup"
  ctr() { command ctr --address "$dir/containerd.sock" --namespace demo "$@"; }
  for _ in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done
  ctr version >/dev/null || { cat "$dir/containerd.log"; fail "containerd did not come up"; }

  step "containerd: ctr run --runtime io.containerd.sealroot.v2 (image named by annotation, pulled in the enclave)"
  local out status=0
  out=$(ctr run --rm --runtime io.containerd.sealroot.v2 --runtime-config-path "$dir/shim.json" \
    --annotation "io.kubernetes.cri.image-name=$image" --rootfs "$dir/rootfs" demo-ctr) || status=$?
  echo "container output (ctr exit code $status):"
  printf '%s\n' "$out" | sed 's/^/  | /'
  [[ $status == 0 ]] || { tail -20 "$dir/containerd.log"; fail "ctr run exited with $status"; }
  [[ $out == "hello from app (uid 1000) in /home/app on "* ]] || fail "unexpected output"
  [[ -z $(ctr images ls -q) ]] || fail "containerd has an image: it pulled on the host"
  echo "containerd's image store is empty: nothing was pulled on the host"

  step "containerd: ctr run with a command of the host's choosing: refused by the owner's workload policy"
  local refused
  if refused=$(ctr run --rm --runtime io.containerd.sealroot.v2 --runtime-config-path "$dir/shim.json" \
    --annotation "io.kubernetes.cri.image-name=$image" --rootfs "$dir/rootfs" demo-host /bin/tar c / 2>&1); then
    fail "a host-chosen command ran"
  fi
  printf '%s\n' "$refused" | tail -1
  [[ $refused == *process.args* ]] || fail "refused for another reason"
  ctr container rm demo-host >/dev/null 2>&1 || true

  step "containerd: nothing of the pod is left (state, sockets, processes)"
  # The shim exits right after containerd's Shutdown, removing its socket as it goes; containerd's
  # cleanup command may still run.
  pod_files_left() { ls -A "$dir/pods" 2>/dev/null; ls -A "$dir/s"; }
  for _ in $(seq 100); do [[ -z $(pod_files_left) ]] && break; sleep 0.1; done
  [[ -z $(ls -A "$dir/pods" 2>/dev/null) ]] || fail "pod state left in $dir/pods"
  [[ -z $(ls -A "$dir/s") ]] || fail "sockets left in $dir/s: $(ls -A "$dir/s")"
  for _ in $(seq 50); do pgrep -f "$dir/containerd.sock" >/dev/null || break; sleep 0.1; done
  if pgrep -f "$dir/containerd.sock" >/dev/null; then fail "a shim still runs"; fi
  echo "no pod directory, no socket, no shim"
  kill -TERM "$ctd_pid"
  wait "$ctd_pid" 2>/dev/null || true
}
containerd_demo
