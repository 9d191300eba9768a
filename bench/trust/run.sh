#!/usr/bin/env bash
# bench/trust/run.sh — what decryption costs, in one run, on the same ~650 MB image as
# bench/image (/usr/include + /usr/bin, two gzip layers; built once under /var/tmp):
#   sealroot unpack of the plain image               (the baseline)
#   sealroot unpack of its skopeo-encrypted twin      (JWE RSA-OAEP, AES-256-CTR-HMAC layers)
#   skopeo copy --decryption-key + umoci unpack       (the peers' way to the same bundle)
# Each command runs RUNS times (default 3); best wall time, highest peak RSS (/usr/bin/time
# -f %M), each run started fresh (bench/lib.sh: the previous output removed, nothing dirty, the
# images in the page cache). Writes bench/trust/RESULTS.md. Environment: SEALROOT_BIN (default
# build/release/bin), RUNS.
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$PWD
bin=${SEALROOT_BIN:-$top/build/release/bin}
runs=${RUNS:-3}
cache=/var/tmp/sealroot-bench-image
tcache=/var/tmp/sealroot-bench-trust
work=$(mktemp -d /var/tmp/sealroot-bench-trust.XXXXXX)
trap 'rm -rf "$work"' EXIT
[[ -x $bin/sealroot ]] || { echo "no $bin/sealroot: run scripts/build release first" >&2; exit 1; }

if [[ ! -f $cache/done ]]; then
  echo "building the benchmark image in $cache (once)"
  rm -rf "$cache"
  mkdir -p "$cache"
  umoci init --layout "$cache/layout"
  umoci new --image "$cache/layout:big"
  tar -C / -cf "$cache/l1.tar" usr/include
  umoci raw add-layer --image "$cache/layout:big" "$cache/l1.tar"
  tar -C / -cf "$cache/l2.tar" usr/bin
  umoci raw add-layer --image "$cache/layout:big" "$cache/l2.tar"
  rm -f "$cache/l1.tar" "$cache/l2.tar"
  touch "$cache/done"
fi
if [[ ! -f $tcache/done ]]; then
  echo "encrypting it with skopeo in $tcache (once)"
  rm -rf "$tcache"
  mkdir -p "$tcache"
  openssl genrsa -out "$tcache/key.pem" 2048 2>/dev/null
  openssl rsa -in "$tcache/key.pem" -pubout -out "$tcache/key.pub" 2>/dev/null
  skopeo --insecure-policy copy --quiet --encryption-key "jwe:$tcache/key.pub" "oci:$cache/layout:big" \
    "oci:$tcache/layout:big"
  touch "$tcache/done"
fi
image_size=$(du -sb "$tcache/layout/blobs" | cut -f1)

source "$top/bench/lib.sh"

out=$work/out
key=$tcache/key.pem
inputs="$cache/layout/blobs $tcache/layout/blobs"  # fresh (bench/lib.sh) before every run
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== decrypting unpack ($((image_size / 1000000)) MB encrypted, OCI layout)"
measure "sealroot unpack plain" "fresh '$inputs' $out" "$bin/sealroot unpack --insecure-policy oci:$cache/layout:big $out"
measure "sealroot unpack encrypted" "fresh '$inputs' $out" \
  "$bin/sealroot unpack --insecure-policy --decryption-key $key oci:$tcache/layout:big $out"
measure "skopeo copy --decryption-key + umoci unpack" "fresh '$inputs' $out $work/dec" \
  "skopeo --insecure-policy copy --quiet --decryption-key $key oci:$tcache/layout:big oci:$work/dec:big && umoci unpack --image $work/dec:big $out"
measure "umoci unpack plain (reference)" "fresh '$inputs' $out" "umoci unpack --image $cache/layout:big $out"

overhead=$(awk -v a="${best_time[sealroot unpack encrypted]}" -v b="${best_time[sealroot unpack plain]}" \
  'BEGIN{printf "%+.1f", (a/b-1)*100}')
{
  echo "# bench/trust results"
  echo
  echo "Machine: $(nproc) vCPU, $(uname -r); $(date -u +%Y-%m-%d). Image: /usr/include + /usr/bin as two gzip"
  echo "layers ($((image_size / 1000000)) MB encrypted), skopeo 1.9.3 JWE RSA-OAEP encryption. Best of $runs runs;"
  echo "peak RSS is the highest of the runs. Load average at the start: $load_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Every run starts with the previous output removed, nothing dirty and both images in the page cache."
  echo "Reproduce: \`bench/trust/run.sh\`."
  echo
  echo "| command | best wall time | peak RSS |"
  echo "|---|---|---|"
  for name in "sealroot unpack plain" "sealroot unpack encrypted" "skopeo copy --decryption-key + umoci unpack" \
              "umoci unpack plain (reference)"; do
    printf '| %s | %.3f s | %d KiB |\n' "$name" "${best_time[$name]}" "${max_rss[$name]}"
  done
  echo
  echo "- decryption overhead, sealroot encrypted vs plain: ${overhead}% (target ≤ 10%)"
  echo "- skopeo decrypt + umoci unpack / sealroot encrypted unpack: $(ratio "skopeo copy --decryption-key + umoci unpack" "sealroot unpack encrypted")×"
} >bench/trust/RESULTS.md
cat bench/trust/RESULTS.md
