# Step 90: the app enclave's boot, end to end, with real programs: a busybox image (non-root
# image user) is unpacked, verified and sealed into a sealed store; sealroot-boot is measured,
# signed and launched as a sim enclave for one container; it attests to the stub enclave, gets
# the store key and root hash, checks its spec against the released digest, mounts the sealed
# root (FUSE, in its private namespaces) and runs the image's entrypoint. A boot spec changed by
# the host is refused; the store holds no plaintext; nothing stays mounted.
# The stub side is test_stub (tests/stub-enclave/programs), which serves the key release with the
# same library calls the agent uses: enclave-agent's StartContainer does not launch the boot yet
# (design/boot.md "Wiring into the agent").
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

  step "e2e: unpack and seal it (verified, streamed) into a sealed store"
  local root
  root=$(sealroot unpack "oci:$dir/oci:busybox" --seal "$dir/store" --key-file "$dir/store.key" --insecure-policy) ||
    fail "sealroot unpack --seal"
  echo "root hash $root"

  step "e2e: sign the stub (ISVPRODID 1) and sealroot-boot (2) with one signer"
  sealroot enclave keygen "$dir/signer.pem" >/dev/null || fail "keygen"
  sealroot enclave sign "$bin/test_stub" --key "$dir/signer.pem" --out "$dir/stub.sig" --isv-prod-id 1 --isv-svn 1 >/dev/null ||
    fail "sign stub"
  sealroot enclave sign "$bin/sealroot-boot" --key "$dir/signer.pem" --out "$dir/boot.sig" --isv-prod-id 2 --isv-svn 1 >/dev/null ||
    fail "sign boot"
  local boot_mr stub_mr spec_digest
  boot_mr=$(sealroot enclave measure "$bin/sealroot-boot") || fail "measure boot"
  stub_mr=$(sealroot enclave measure "$bin/test_stub") || fail "measure stub"
  printf '{"hostname":"demo-e2e"}' >"$dir/spec.json"
  spec_digest=$(sha256sum "$dir/spec.json" | cut -c1-64)
  echo "sealroot-boot MRENCLAVE $boot_mr"

  step "e2e: the stub releases container demo-e2e's key only to that MRENCLAVE (2 sessions)"
  sealroot enclave run "$bin/test_stub" --sigstruct "$dir/stub.sig" -- --socket "$dir/attest.sock" \
    --container-id demo-e2e --spec-digest "$spec_digest" --root-hash "$root" \
    --key "$(od -An -tx1 "$dir/store.key" | tr -d ' \n')" --mrenclave "$boot_mr" --sessions 2 \
    >"$dir/stub.out" 2>"$dir/stub.err" &
  local stub_pid=$!
  echo "kill $stub_pid" >>"$DEMO_WORK/cleanup"
  for _ in $(seq 100); do grep -q ready "$dir/stub.out" 2>/dev/null && break; sleep 0.1; done
  grep -q ready "$dir/stub.out" || { cat "$dir/stub.out" "$dir/stub.err"; fail "stub did not start"; }

  step "e2e: launch sealroot-boot as the app enclave of demo-e2e: attest, mount the sealed root, run"
  mkdir -p "$dir/scratch"
  local out
  out=$(sealroot enclave run "$bin/sealroot-boot" --sigstruct "$dir/boot.sig" --container-id demo-e2e \
    --spec-digest "$spec_digest" -- --attest-socket "$dir/attest.sock" --store "$dir/store" \
    --spec "$dir/spec.json" --scratch "$dir/scratch" --stub-prod-id 1 --stub-mrenclave "$stub_mr") ||
    fail "the container did not run"
  echo "container output:"
  printf '%s\n' "$out" | sed 's/^/  | /'
  [[ $out == "hello from app (uid 1000) in /home/app on demo-e2e"$'\n'"$marker" ]] || fail "unexpected output"

  step "e2e: the host rewrites the spec after the release decision: the boot refuses it"
  printf '{"process":{"args":["sh","-c","echo the host ran this"]}}' >"$dir/spec.json"
  if sealroot enclave run "$bin/sealroot-boot" --sigstruct "$dir/boot.sig" --container-id demo-e2e \
      --spec-digest "$spec_digest" -- --attest-socket "$dir/attest.sock" --store "$dir/store" \
      --spec "$dir/spec.json" --scratch "$dir/scratch" --stub-prod-id 1 --stub-mrenclave "$stub_mr"; then
    fail "a changed spec ran"
  fi
  wait "$stub_pid" || fail "stub exited with an error"

  step "e2e: the store holds no plaintext, and nothing of the container is mounted"
  if grep -rqa "$marker" "$dir/store"; then fail "plaintext found in the sealed store"; fi
  if grep -q "$dir" /proc/self/mountinfo; then fail "mounts left behind under $dir"; fi
  echo "no '$marker' in $(find "$dir/store" -type f | wc -l) store files; no mount under $dir"
}
e2e_demo
