# Step 30: measured enclave identities and local attestation in simulation.
# Signs a stub and an app enclave with a fresh RSA-3072 key, runs the stub as a sim enclave
# serving one container's key release, lets the expected app enclave attest and receive the key,
# and shows an impostor binary (same signer, different code) refused with the reason.
# The two enclaves are the test programs tests/stub-enclave/programs/ (test_stub/test_app), which
# use the same library calls enclave-agent and sealroot-boot use.
enclave_demo() {
  local bin=$SEALROOT_BIN dir=$DEMO_WORK/enclave
  mkdir -p "$dir"
  step "enclave: generate an RSA-3072 (e=3) signing key"
  sealroot enclave keygen "$dir/signer.pem" || fail "enclave keygen"

  step "enclave: measure and sign the stub (ISVPRODID 1), the app (2) and an impostor"
  sealroot enclave sign "$bin/test_stub" --key "$dir/signer.pem" --out "$dir/stub.sig" --isv-prod-id 1 --isv-svn 1 || fail "sign stub"
  sealroot enclave sign "$bin/test_app" --key "$dir/signer.pem" --out "$dir/app.sig" --isv-prod-id 2 --isv-svn 1 || fail "sign app"
  sealroot enclave sign "$bin/test_impostor" --key "$dir/signer.pem" --out "$dir/impostor.sig" --isv-prod-id 2 --isv-svn 1 || fail "sign impostor"
  sealroot enclave verify "$bin/test_app" --sigstruct "$dir/app.sig" || fail "verify app"
  local app_mr stub_mr spec
  app_mr=$(sealroot enclave measure "$bin/test_app") || fail "measure app"
  stub_mr=$(sealroot enclave measure "$bin/test_stub") || fail "measure stub"
  spec=$(printf '{"args":["/bin/sh"]}' | sha256sum | cut -c1-64)
  echo "app MRENCLAVE  $app_mr"
  echo "stub MRENCLAVE $stub_mr"

  step "enclave: start the stub as a sim enclave; it releases container demo-1's key only to MRENCLAVE $app_mr"
  sealroot enclave run "$bin/test_stub" --sigstruct "$dir/stub.sig" -- --socket "$dir/demo-1.sock" \
    --container-id demo-1 --spec-digest "$spec" --root-hash "$(printf root | sha256sum | cut -c1-64)" \
    --key "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" --mrenclave "$app_mr" --sessions 2 \
    >"$dir/stub.out" 2>"$dir/stub.err" &
  local stub_pid=$!
  echo "kill $stub_pid" >>"$DEMO_WORK/cleanup"
  for _ in $(seq 100); do grep -q ready "$dir/stub.out" 2>/dev/null && break; sleep 0.1; done
  grep -q ready "$dir/stub.out" || { cat "$dir/stub.out" "$dir/stub.err"; fail "stub did not start"; }

  step "enclave: the expected app enclave (launched for demo-1) attests and receives the key"
  sealroot enclave run "$bin/test_app" --sigstruct "$dir/app.sig" --container-id demo-1 --spec-digest "$spec" \
    -- --socket "$dir/demo-1.sock" --stub-mrenclave "$stub_mr" || fail "the expected app enclave was refused"

  step "enclave: an impostor (same signer, different binary) asks for the same key"
  if sealroot enclave run "$bin/test_impostor" --sigstruct "$dir/impostor.sig" --container-id demo-1 \
      --spec-digest "$spec" -- --socket "$dir/demo-1.sock" --stub-mrenclave "$stub_mr"; then
    fail "the impostor received the key"
  fi
  wait "$stub_pid" || fail "stub enclave exited with an error"
  echo "stub log:"
  sed 's/^/  /' "$dir/stub.out"
  grep -q "session: refused: .*MRENCLAVE mismatch" "$dir/stub.out" || fail "the stub did not say why it refused"
  echo "enclave: expected app served, impostor refused"
}
enclave_demo
