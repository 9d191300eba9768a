# Demo step: the standalone image tool. Starts a loopback registry, builds a busybox image with
# umoci, pushes it with skopeo, then `sealroot unpack`s it from the registry and runs it.
# Exports DEMO_REGISTRY and DEMO_IMAGE for later steps.

step "image: starting a loopback docker-registry"
img_dir=$DEMO_WORK/image
mkdir -p "$img_dir"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$img_dir/registry.yml" <<YAML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $img_dir/registry-data}}
http: {addr: 127.0.0.1:$port}
YAML
docker-registry serve "$img_dir/registry.yml" >"$img_dir/registry.log" 2>&1 &
echo "kill $! 2>/dev/null" >>"$DEMO_WORK/cleanup"
for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fs "http://127.0.0.1:$port/v2/" >/dev/null || fail "the registry did not start"
export DEMO_REGISTRY=127.0.0.1:$port

step "image: building a busybox image with umoci and pushing it with skopeo"
(
  set -e
  cd "$img_dir"
  umoci init --layout layout
  umoci new --image layout:busybox
  umoci unpack --image layout:busybox build >/dev/null
  cd build/rootfs
  mkdir -p bin sbin usr/bin usr/sbin etc root tmp
  cp /bin/busybox bin/busybox
  chroot . /bin/busybox --install -s
  printf 'root:x:0:0:root:/root:/bin/sh\n' >etc/passwd
  printf 'root:x:0:\n' >etc/group
  cd ../..
  umoci repack --image layout:busybox build
  umoci config --image layout:busybox --config.entrypoint=/bin/sh --config.cmd=-c --config.cmd='echo hello'
  skopeo --insecure-policy copy --quiet --dest-tls-verify=false oci:layout:busybox "docker://$DEMO_REGISTRY/demo/busybox:latest"
) >"$img_dir/build.log" 2>&1 || { cat "$img_dir/build.log"; fail "building or pushing the image"; }
export DEMO_IMAGE=docker://$DEMO_REGISTRY/demo/busybox:latest

step "image: sealroot inspect $DEMO_IMAGE"
"$SEALROOT_BIN/sealroot" inspect --insecure-policy --tls-verify=false "$DEMO_IMAGE" || fail "sealroot inspect"

step "image: sealroot unpack $DEMO_IMAGE -> an OCI bundle"
"$SEALROOT_BIN/sealroot" unpack --insecure-policy --tls-verify=false "$DEMO_IMAGE" "$img_dir/bundle" ||
  fail "sealroot unpack"
ls "$img_dir/bundle"
grep -q '"/bin/sh"' "$img_dir/bundle/config.json" || fail "config.json lacks the entrypoint"

step "image: chroot bundle/rootfs /bin/busybox echo ok"
out=$(chroot "$img_dir/bundle/rootfs" /bin/busybox echo ok) || fail "running busybox from the unpacked root"
echo "$out"
[[ $out == ok ]] || fail "unexpected output: $out"
