# Demo step: image trust. Encrypts the busybox image of step 10 with skopeo (JWE, RSA) and signs
# it with a gpg key (skopeo --sign-by, lookaside on disk), then shows `sealroot unpack` enforcing
# a signedBy policy and decrypting: accepted with the key, refused without it, refused for the
# unsigned image; and the same image decrypted through `sealroot keyprovider --dev-unwrap`, the
# key provider's development mode (no attestation: step 90 uses the attested broker).

trust_dir=$DEMO_WORK/trust
mkdir -p "$trust_dir/keys" "$trust_dir/registries.d" "$trust_dir/sigs"
export GNUPGHOME=$trust_dir/gnupg
mkdir -m 700 "$GNUPGHOME"

step "trust: making an RSA key pair (openssl) and a signing key (gpg)"
(
  set -e
  openssl genrsa -out "$trust_dir/keys/layer.pem" 2048
  openssl rsa -in "$trust_dir/keys/layer.pem" -pubout -out "$trust_dir/layer.pub"
  gpg -q --batch --passphrase '' --quick-gen-key "sealroot demo <demo@example.com>" ed25519 sign never
  gpg -q --export > "$trust_dir/signer.gpg"
) >"$trust_dir/keys.log" 2>&1 || { cat "$trust_dir/keys.log"; fail "making keys"; }
fpr=$(gpg --list-keys --with-colons | awk -F: '/^fpr/{print $10; exit}')
cat >"$trust_dir/registries.d/demo.yaml" <<YAML
docker:
  $DEMO_REGISTRY:
    lookaside: file://$trust_dir/sigs
    lookaside-staging: file://$trust_dir/sigs
YAML
cat >"$trust_dir/policy.json" <<JSON
{"default":[{"type":"reject"}],
 "transports":{"docker":{"$DEMO_REGISTRY/demo":[{"type":"signedBy","keyType":"GPGKeys",
                                                 "keyPath":"$trust_dir/signer.gpg"}]},
               "oci":{"":[{"type":"insecureAcceptAnything"}]}}}
JSON
enc_image=docker://$DEMO_REGISTRY/demo/busybox-enc:latest

step "trust: skopeo copy --encryption-key jwe:layer.pub --sign-by $fpr -> $enc_image"
skopeo --insecure-policy --registries.d "$trust_dir/registries.d" copy --quiet --dest-tls-verify=false \
  --encryption-key "jwe:$trust_dir/layer.pub" --sign-by "$fpr" \
  "oci:$DEMO_WORK/image/layout:busybox" "$enc_image" || fail "encrypting and signing with skopeo"
find "$trust_dir/sigs" -type f

trust_flags=(--tls-verify=false --policy "$trust_dir/policy.json" --registries.d "$trust_dir/registries.d")

step "trust: sealroot inspect $enc_image (encrypted layers, recipients, signatures)"
"$SEALROOT_BIN/sealroot" inspect "${trust_flags[@]}" "$enc_image" || fail "sealroot inspect"

step "trust: sealroot unpack without the key must be refused"
if "$SEALROOT_BIN/sealroot" unpack "${trust_flags[@]}" "$enc_image" "$trust_dir/nokey"; then
  fail "an encrypted image unpacked without its key"
fi
[[ ! -e $trust_dir/nokey ]] || fail "a refused unpack left a bundle behind"

step "trust: the unsigned $DEMO_IMAGE must be refused by the signedBy policy"
if "$SEALROOT_BIN/sealroot" unpack "${trust_flags[@]}" "$DEMO_IMAGE" "$trust_dir/unsigned"; then
  fail "an unsigned image passed a signedBy policy"
fi

step "trust: sealroot unpack with the policy and --decryption-key"
"$SEALROOT_BIN/sealroot" unpack "${trust_flags[@]}" --decryption-key "$trust_dir/keys/layer.pem" \
  "$enc_image" "$trust_dir/bundle" || fail "sealroot unpack of the signed, encrypted image"
ls "$trust_dir/bundle/rootfs/bin" | head -5

step "trust: the same image with its key held by a key provider (sealroot keyprovider --dev-unwrap, gRPC)"
skopeo --insecure-policy copy --quiet --src-tls-verify=false "$enc_image" "oci:$trust_dir/layout:enc" ||
  fail "copying the encrypted image to a layout"
# Hand the wrapped keys to the provider named "broker" (the broker unwraps ocicrypt JWEs).
python3 tests/trust/rewrite_layout.py "$trust_dir/layout" enc provider broker || fail "rewriting the layout"
kp_port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$SEALROOT_BIN/sealroot" keyprovider --dev-unwrap --keys "$trust_dir/keys" --listen "127.0.0.1:$kp_port" \
  >"$trust_dir/keyprovider.log" 2>&1 &
echo "kill $! 2>/dev/null" >>"$DEMO_WORK/cleanup"
for _ in $(seq 50); do grep -q listening "$trust_dir/keyprovider.log" && break; sleep 0.1; done
echo "{\"key-providers\":{\"broker\":{\"grpc\":\"127.0.0.1:$kp_port\"}}}" >"$trust_dir/keyprovider.json"
OCICRYPT_KEYPROVIDER_CONFIG=$trust_dir/keyprovider.json "$SEALROOT_BIN/sealroot" unpack \
  --policy "$trust_dir/policy.json" "oci:$trust_dir/layout:enc" "$trust_dir/bundle-broker" ||
  fail "unpacking through the key broker"
diff -r "$trust_dir/bundle/rootfs" "$trust_dir/bundle-broker/rootfs" >/dev/null || fail "the two unpacks differ"
echo "trust: both unpacks are identical"
unset GNUPGHOME
