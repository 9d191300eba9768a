# Step 90: the whole flow through the API. A busybox image (non-root image user) is encrypted for
# the owner's key broker (the layer key at kbs:///default/key/e2e, as CoCo encrypts) and signed
# with step 15's gpg key into a loopback registry that asks for credentials (htpasswd); the broker
# (`sealroot keyprovider --kbs` over HTTPS, sim quote root) trusts only the agent's MRENCLAVE and
# holds the layer key, the registry credentials, the signature policy and the workload policy;
# enclave-agent runs as a sim stub enclave whose only source of all four is the broker (it
# attests with an SGX quote first; the host has none of them); then with `sealroot ctl`: pull
# (verified, decrypted, sealed) -> create -> start (sealroot-boot launched as the container's app
# enclave, attested, given the key and root hash, booted from the sealed root) -> wait; the
# container's output; rm. The agent's configuration (broker and its CA, app enclave) is its
# measured manifest; a host-chosen command is refused next to the one the owner allowed. The
# store holds no plaintext; nothing of the container is left.
e2e_demo() {
  local bin=$SEALROOT_BIN dir=$DEMO_WORK/e2e marker="demo-plaintext-$RANDOM$RANDOM"
  mkdir -p "$dir"

  step "e2e: build a busybox image whose entrypoint runs as the non-root image user 'app'"
  (
    cd "$dir" || exit 1
    umoci init --layout oci && umoci new --image oci:busybox &&
      umoci unpack --rootless --image oci:busybox b >/dev/null &&
      mkdir -p b/rootfs/bin b/rootfs/etc b/rootfs/home/app && cp /bin/busybox b/rootfs/bin/ &&
      chroot b/rootfs /bin/busybox --install -s /bin &&
      printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n' >b/rootfs/etc/passwd &&
      printf 'root:x:0:\napp:x:1000:\n' >b/rootfs/etc/group &&
      echo "$marker" >b/rootfs/etc/motd &&
      umoci repack --image oci:busybox b &&
      umoci config --image oci:busybox --config.user app --config.workingdir /home/app \
        --config.env GREETING=hello --config.entrypoint sh --config.entrypoint -c \
        --config.cmd 'echo "$GREETING from $(id -un) (uid $(id -u)) in $(pwd) on $(hostname)"; cat /etc/motd'
  ) >"$dir/build.log" 2>&1 || { cat "$dir/build.log"; fail "building the image"; }

  step "e2e: a loopback registry that asks for credentials (htpasswd): only the owner's broker will hold them"
  local reg_port registry_password
  reg_port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  registry_password=$(openssl rand -hex 12)
  htpasswd -Bbn owner "$registry_password" >"$dir/htpasswd" 2>/dev/null || fail "htpasswd"
  cat >"$dir/registry.yml" <<YAML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $dir/registry-data}}
http: {addr: 127.0.0.1:$reg_port}
auth: {htpasswd: {realm: sealroot-demo, path: $dir/htpasswd}}
YAML
  docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
  echo "kill $! 2>/dev/null" >>"$DEMO_WORK/cleanup"
  for _ in $(seq 50); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$reg_port/v2/") == 401 ]] && break
    sleep 0.2
  done
  echo "registry 127.0.0.1:$reg_port: GET /v2/ without credentials -> HTTP $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$reg_port/v2/")"

  step "e2e: encrypt (skopeo, then the layer keys wrapped for the key broker) and sign (gpg) it into the registry"
  local image=docker://127.0.0.1:$reg_port/demo/e2e:latest
  export DEMO_E2E_IMAGE=${image#docker://}  # step 95 runs it through containerd
  (
    set -e
    export GNUPGHOME=$trust_dir/gnupg
    skopeo --insecure-policy copy --quiet --encryption-key "jwe:$trust_dir/layer.pub" \
      "oci:$dir/oci:busybox" "oci:$dir/enc:busybox"
    # Each layer's options sealed under a key-encryption key that only the broker holds.
    python3 tests/kbs/coco_wrap.py "$dir/enc" busybox "$trust_dir/keys/layer.pem" "$dir/kbs" default/key/e2e
    # The signature's lookaside store is keyed by registry: step 15's registries.d covers this one too.
    sed "s|$DEMO_REGISTRY|127.0.0.1:$reg_port|g" "$trust_dir/registries.d/"*.yaml >"$dir/registries.d.yaml"
    mkdir -p "$dir/registries.d" && mv "$dir/registries.d.yaml" "$dir/registries.d/sealroot.yaml"
    skopeo --insecure-policy --registries.d "$dir/registries.d" copy --quiet --dest-tls-verify=false \
      --dest-creds "owner:$registry_password" --sign-by "$fpr" "oci:$dir/enc:busybox" "$image"
  ) >"$dir/push.log" 2>&1 || { cat "$dir/push.log"; fail "encrypting, signing and pushing"; }
  echo "$image: encrypted for the key broker, signed by $fpr"

  step "e2e: sealroot-boot (ISVPRODID 2) with its manifest: it accepts keys only from this signer's product 1"
  sealroot enclave keygen "$dir/signer.pem" >/dev/null || fail "keygen"
  local signer boot_mr
  signer=$(sealroot enclave sign "$bin/sealroot-boot" --key "$dir/signer.pem" --out "$dir/unused.sig" --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["mrsigner"])') || fail "signer"
  echo "{\"stub\": {\"mrsigner\": \"$signer\", \"isv_prod_id\": 1, \"min_isv_svn\": 1}}" >"$dir/boot-manifest.json"
  cat "$dir/boot-manifest.json"
  sealroot enclave sign "$bin/sealroot-boot" --manifest "$dir/boot-manifest.json" --key "$dir/signer.pem" \
    --out "$dir/boot.sig" --isv-prod-id 2 --isv-svn 1 >/dev/null || fail "sign boot"
  boot_mr=$(sealroot enclave measure "$bin/sealroot-boot" --manifest "$dir/boot-manifest.json") || fail "measure boot"
  echo "sealroot-boot MRENCLAVE (with its manifest) $boot_mr"

  step "e2e: the owner's key broker holds the layer key, the registry credentials, the signature policy (the gpg key inlined) and the workload policy"
  local kbs_port direct
  kbs_port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$dir/kbs/default/policy" "$dir/kbs/default/credential"
  chmod 700 "$dir/kbs"
  python3 - "$trust_dir/policy.json" "$DEMO_REGISTRY" "127.0.0.1:$reg_port" >"$dir/kbs/default/policy/signature" <<'PY' || fail "writing the broker's policy"
import base64, json, sys
policy = json.load(open(sys.argv[1]))
docker = policy["transports"]["docker"]
for scope in list(docker):
    reqs = docker.pop(scope)
    for req in reqs:  # the key itself travels with the policy, never a host path to it
        req["keyData"] = base64.b64encode(open(req.pop("keyPath"), "rb").read()).decode()
    docker[scope.replace(sys.argv[2], sys.argv[3])] = reqs
print(json.dumps(policy))
PY
  printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}' "$reg_port" "$(printf 'owner:%s' "$registry_password" | base64 -w0)" \
    >"$dir/kbs/default/credential/registry"
  echo '{"args": [["sh", "-c", "echo owner-allowed command as $(id -un)"]]}' >"$dir/kbs/default/policy/workload"
  echo "workload policy: $(cat "$dir/kbs/default/policy/workload")"
  unset registry_password  # from here on, only the broker knows it

  step "e2e: the broker serves HTTPS; its CA goes into the agent's manifest (so into its MRENCLAVE)"
  (
    set -e
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/kbs-ca.key" \
      -out "$dir/kbs-ca.pem" -subj /CN=sealroot-demo-owner-ca -days 2
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/kbs-tls.key" \
      -out "$dir/kbs-tls.csr" -subj /CN=127.0.0.1
    echo "subjectAltName=IP:127.0.0.1" >"$dir/kbs-tls.ext"
    openssl x509 -req -in "$dir/kbs-tls.csr" -CA "$dir/kbs-ca.pem" -CAkey "$dir/kbs-ca.key" -CAcreateserial \
      -out "$dir/kbs-tls.pem" -days 2 -extfile "$dir/kbs-tls.ext"
  ) >"$dir/tls.log" 2>&1 || { cat "$dir/tls.log"; fail "making the broker's certificate"; }
  openssl x509 -in "$dir/kbs-tls.pem" -noout -subject -issuer

  step "e2e: the agent's manifest: the broker (URL, CA, the resources it holds), this boot only"
  python3 - "$boot_mr" "$bin" "$dir" "$kbs_port" >"$dir/agent-manifest.json" <<'PY' || fail "writing the manifest"
import json, sys
boot_mr, bin_dir, work, port = sys.argv[1:5]
print(json.dumps({
    "trust": {"registries_d": work + "/registries.d"},
    "key_broker": {"url": "https://127.0.0.1:" + port, "ca": open(work + "/kbs-ca.pem").read(),
                   "credentials": "kbs:///default/credential/registry",
                   "signature_policy": "kbs:///default/policy/signature",
                   "workload_policy": "kbs:///default/policy/workload"},
    "registry": {"tls_verify": False},
    "app_enclaves": [{"mrenclave": boot_mr}],
    "boot": {"executable": bin_dir + "/sealroot-boot", "sigstruct": work + "/boot.sig",
             "manifest": work + "/boot-manifest.json"}}, indent=1))
PY
  cat "$dir/agent-manifest.json"
  sealroot enclave sign "$bin/enclave-agent" --manifest "$dir/agent-manifest.json" --key "$dir/signer.pem" \
    --out "$dir/agent.sig" --isv-prod-id 1 --isv-svn 1 >/dev/null || fail "sign agent"
  local agent_mr
  agent_mr=$(sealroot enclave measure "$bin/enclave-agent" --manifest "$dir/agent-manifest.json") || fail "measure agent"
  echo "enclave-agent MRENCLAVE (with its manifest) $agent_mr"

  step "e2e: start the broker: it trusts only that MRENCLAVE (so only that manifest)"
  echo "{\"trusted\":[{\"mrenclave\":\"$agent_mr\"}]}" >"$dir/kbs-policy.json"
  cat "$dir/kbs-policy.json"
  sealroot keyprovider --kbs --log-level info --sim-root --listen "127.0.0.1:$kbs_port" --policy "$dir/kbs-policy.json" \
    --resources "$dir/kbs" --tls-cert "$dir/kbs-tls.pem" --tls-key "$dir/kbs-tls.key" >"$dir/kbs.log" 2>&1 &
  echo "kill $! 2>/dev/null" >>"$DEMO_WORK/cleanup"
  for _ in $(seq 50); do grep -q listening "$dir/kbs.log" && break; sleep 0.1; done

  step "e2e: the host asking the broker directly gets nothing; nor does it get the image from the registry"
  local resource
  for resource in key/e2e credential/registry policy/workload; do
    direct=$(curl -s --cacert "$dir/kbs-ca.pem" -o /dev/null -w '%{http_code}' \
      "https://127.0.0.1:$kbs_port/kbs/v0/resource/default/$resource")
    echo "GET /kbs/v0/resource/default/$resource without attestation: HTTP $direct"
    [[ $direct == 401 ]] || fail "the broker answered $direct to an unattested request"
  done
  if skopeo inspect --tls-verify=false "$image" >/dev/null 2>"$dir/host-inspect.log"; then
    fail "the host read the image without credentials"
  fi
  echo "skopeo inspect $image from the host: $(grep -o 'unauthorized[^"]*' "$dir/host-inspect.log" | head -1)"

  step "e2e: a host that edits one byte of the agent's manifest gets no agent"
  sed 's|policy/workload|policy/workloaD|' "$dir/agent-manifest.json" >"$dir/edited-manifest.json"
  if sealroot enclave run "$bin/enclave-agent" --sigstruct "$dir/agent.sig" --manifest "$dir/edited-manifest.json" \
    -- --ttrpc "unix://$dir/edited.sock" 2>"$dir/edited.log"; then fail "an edited manifest ran"; fi
  tail -1 "$dir/edited.log"

  step "e2e: start enclave-agent as a sim stub enclave with its manifest (argv: addresses and directories only)"
  sealroot enclave run "$bin/enclave-agent" --sigstruct "$dir/agent.sig" --manifest "$dir/agent-manifest.json" -- \
    --ttrpc "unix://$dir/agent.sock" --state-dir "$dir/state" --store "$dir/store" \
    >"$dir/agent.log" 2>&1 &
  local agent_pid=$!
  echo "kill $agent_pid 2>/dev/null" >>"$DEMO_WORK/cleanup"
  ctl() { sealroot ctl --address "unix://$dir/agent.sock" "$@"; }
  for _ in $(seq 100); do ctl health >/dev/null 2>&1 && break; sleep 0.1; done
  ctl status || { cat "$dir/agent.log"; fail "the agent did not come up"; }

  step "e2e: sealroot ctl pull (attest to the broker, log in to the registry, verify the signature, decrypt, seal)"
  ctl pull "$image" --container-id demo-e2e || { cat "$dir/agent.log" "$dir/kbs.log"; fail "PullImage"; }
  grep 'kbs: ' "$dir/kbs.log" | sed 's/^/  broker | /'

  step "e2e: the host asks for its own command (a tar of the decrypted root): refused"
  if ctl create demo-e2e -- /bin/tar c / 2>"$dir/refused.log"; then fail "a host-chosen command was accepted"; fi
  cat "$dir/refused.log"
  grep -q process.args "$dir/refused.log" || fail "the refusal does not name process.args"
  grep 'released default/policy/workload' "$dir/kbs.log" | sed 's/^/  broker | /'
  grep -q 'released default/policy/workload' "$dir/kbs.log" || fail "the workload policy did not come from the broker"

  step "e2e: create -> start (sealroot-boot attests, gets the key, boots the sealed root) -> wait"
  ctl create demo-e2e || fail "CreateContainer"
  ctl start demo-e2e || { cat "$dir/agent.log"; fail "StartContainer"; }
  local out status
  out=$(ctl logs demo-e2e) || fail "ReadStdout"
  status=$(ctl wait demo-e2e) || fail "WaitProcess"
  echo "container output (exit status $status):"
  printf '%s\n' "$out" | sed 's/^/  | /'
  [[ $status == 0 ]] || fail "the container exited with $status"
  [[ $out == "hello from app (uid 1000) in /home/app on "*$'\n'"$marker" ]] || fail "unexpected output"
  ctl ps || fail "ListContainers"

  step "e2e: the command the image owner's policy allows runs too"
  ctl pull "$image" --container-id demo-owner >/dev/null || fail "PullImage demo-owner"
  ctl create demo-owner -- sh -c 'echo owner-allowed command as $(id -un)' || fail "CreateContainer demo-owner"
  ctl start demo-owner || { cat "$dir/agent.log"; fail "StartContainer demo-owner"; }
  out=$(ctl logs demo-owner) || fail "ReadStdout demo-owner"
  status=$(ctl wait demo-owner) || fail "WaitProcess demo-owner"
  printf '%s\n' "$out" | sed 's/^/  | /'
  [[ $status == 0 && $out == "owner-allowed command as app" ]] || fail "unexpected output of the owner's command"
  ctl rm demo-owner || fail "RemoveContainer demo-owner"

  step "e2e: the sealed store holds no plaintext of the image"
  if grep -rqa "$marker" "$dir/store"; then fail "plaintext found in the sealed store"; fi
  if grep -rqa 'BusyBox is a multi-call binary' "$dir/store"; then fail "busybox plaintext in the store"; fi
  echo "no '$marker' and no busybox text in $(find "$dir/store" -type f | wc -l) store files"

  step "e2e: sealroot ctl rm demo-e2e: nothing of the container is left"
  ctl rm demo-e2e || fail "RemoveContainer"
  [[ -z $(ls "$dir/store/images") ]] || fail "the image store outlived its container"
  [[ -z $(ls "$dir/state/boot") ]] || fail "boot state left behind"
  if grep -q "$dir" /proc/self/mountinfo; then fail "mounts left behind under $dir"; fi
  echo "store empty, no boot state, no mount under $dir"
  kill -TERM "$agent_pid"
  wait "$agent_pid" || fail "the agent exited with $?"
}
e2e_demo
