# Demo step: the sealed root filesystem. Seals the busybox image of step 10 into a sealed store
# (encrypted, one root hash authenticates everything), mounts it read-only through FUSE, runs a
# command from it, checks it with fsck, then shows a tampered store giving EIO and fsck naming
# the damaged object, and named roots: gc keeps the named (and mounted) root and reclaims an
# unnamed one. Exports DEMO_STORE, DEMO_STORE_KEY and DEMO_ROOT for later steps.

seal_dir=$DEMO_WORK/sealfs
mkdir -p "$seal_dir/mnt"
export DEMO_STORE=$seal_dir/store DEMO_STORE_KEY=$seal_dir/store.key

step "sealfs: sealroot unpack $DEMO_IMAGE --seal --name busybox (a new store: its key is created, mode 0600)"
DEMO_ROOT=$("$SEALROOT_BIN/sealroot" unpack --insecure-policy --tls-verify=false "$DEMO_IMAGE" \
  --seal "$DEMO_STORE" --key-file "$DEMO_STORE_KEY" --name busybox) || fail "sealroot unpack --seal"
DEMO_ROOT=$(echo "$DEMO_ROOT" | grep -Eo '[0-9a-f]{64}' | tail -1)
[[ ${#DEMO_ROOT} == 64 ]] || fail "no root hash printed"
export DEMO_ROOT
echo "root hash: $DEMO_ROOT"
"$SEALROOT_BIN/sealroot" df "$DEMO_STORE"

step "sealfs: the store holds no plaintext (grep for the image's /etc/passwd line)"
if grep -r -a -q -F 'root:x:0:0:root:/root:/bin/sh' "$DEMO_STORE"; then fail "plaintext found in the store"; fi
echo "no plaintext found"

step "sealfs: sealroot mount (read-only FUSE), then run a command from the sealed root"
"$SEALROOT_BIN/sealroot" mount "$DEMO_STORE" "$seal_dir/mnt" --root "$DEMO_ROOT" --key-file "$DEMO_STORE_KEY" \
  --read-only --log-file "$seal_dir/daemon.log" || fail "sealroot mount"
echo "'$SEALROOT_BIN/sealroot' umount '$seal_dir/mnt'" >>"$DEMO_WORK/cleanup"
mount | grep -F "$seal_dir/mnt"
out=$(chroot "$seal_dir/mnt" /bin/busybox sh -c 'echo hello from the sealed root: $(busybox ls /bin | busybox wc -l) entries in /bin') ||
  fail "running a command from the sealed root"
echo "$out"

step "sealfs: sealroot fsck verifies every object"
"$SEALROOT_BIN/sealroot" fsck "$DEMO_STORE" --root "$DEMO_ROOT" --key-file "$DEMO_STORE_KEY" || fail "fsck"

step "sealfs: tamper with a copy of the store: reads give EIO, fsck names the object"
cp -a "$DEMO_STORE" "$seal_dir/tampered"
victim=$(find "$seal_dir/tampered/objects" -type f -size +1M | head -1)
printf '\x55' | dd of="$victim" bs=1 seek=4096 conv=notrunc status=none
mkdir -p "$seal_dir/mnt2"
"$SEALROOT_BIN/sealroot" mount "$seal_dir/tampered" "$seal_dir/mnt2" --root "$DEMO_ROOT" \
  --key-file "$DEMO_STORE_KEY" --log-file "$seal_dir/daemon2.log" || fail "mounting the tampered copy"
echo "'$SEALROOT_BIN/sealroot' umount '$seal_dir/mnt2'" >>"$DEMO_WORK/cleanup"
if cat "$seal_dir/mnt2/bin/busybox" >/dev/null 2>"$seal_dir/cat.err"; then fail "tampered data was served"; fi
cat "$seal_dir/cat.err"
grep 'integrity failure' "$seal_dir/daemon2.log" || fail "the daemon did not log the failure"
if "$SEALROOT_BIN/sealroot" fsck "$seal_dir/tampered" --root "$DEMO_ROOT" --key-file "$DEMO_STORE_KEY"; then
  fail "fsck accepted a tampered store"
fi
"$SEALROOT_BIN/sealroot" umount "$seal_dir/mnt2" || fail "sealroot umount"

step "sealfs: named roots: an unnamed second seal of the image; gc keeps the named root, reclaims the other"
"$SEALROOT_BIN/sealroot" unpack --insecure-policy --tls-verify=false "$DEMO_IMAGE" --seal "$DEMO_STORE" \
  --key-file "$DEMO_STORE_KEY" >/dev/null || fail "sealing an unnamed root"
"$SEALROOT_BIN/sealroot" roots ls "$DEMO_STORE" --key-file "$DEMO_STORE_KEY" || fail "roots ls"
"$SEALROOT_BIN/sealroot" gc "$DEMO_STORE" --key-file "$DEMO_STORE_KEY" || fail "gc"
"$SEALROOT_BIN/sealroot" fsck "$DEMO_STORE" --root "$DEMO_ROOT" --key-file "$DEMO_STORE_KEY" ||
  fail "gc removed what the named root uses"
