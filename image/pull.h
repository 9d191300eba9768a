// The image pipeline, end to end: resolve a reference to one platform's manifest, check
// signatures, then stream every layer once
//
//   blob bytes -> [blob digest+size] -> [decrypt, if +encrypted] -> decompress -> [DiffID]
//              -> tar walk -> LayerSink ... Commit
//
// and Finish the ImageSink only when every layer committed. See design/architecture.md.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/secret.h"
#include "base/status.h"
#include "image/config.h"
#include "image/manifest.h"
#include "image/reference.h"
#include "image/sink.h"
#include "image/source.h"
#include "image/trust.h"

namespace sealroot::image {

// What the pipeline reports while it works (for a progress display). Called from the thread
// doing the work; several downloads may report concurrently, so the callback must be thread-safe.
//   kLayerBytes   compressed bytes of a layer received from the source so far (the network for a
//                 registry; fetch-ahead workers report too); grows, except that a fetch which
//                 failed ahead and is retried starts again from 0
//   kLayerCached  the layer's blob comes from the local blob cache (nothing fetched)
//   kLayerSkipped the sink already holds the layer (nothing fetched)
//   kLayerDone    the layer is verified and committed (unpack) or written (pull)
struct ProgressEvent {
  enum class Phase {
    kResolving,
    kLayerStarted,
    kLayerBytes,
    kLayerSkipped,
    kLayerCached,
    kLayerDone,
    kFinished
  };
  Phase phase = Phase::kResolving;
  std::size_t layer = 0;  // index, bottom layer 0
  std::size_t layer_count = 0;
  std::uint64_t bytes = 0;  // compressed bytes of this layer received so far
  std::uint64_t total = 0;  // compressed size of this layer
};
using ProgressCallback = std::function<void(const ProgressEvent&)>;

struct PullOptions {
  // Registry access (skopeo's flags).
  SecretBytes creds;                 // --creds USER:PASS; empty: look in the auth files
  std::string authfile;              // --authfile; empty: REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/
                                     // auth.json, ~/.docker/config.json (first that exists)
  std::string cert_dir;              // --cert-dir: *.crt trusted CAs, *.cert/*.key client certificate
  bool tls_verify = true;            // --tls-verify=false: plain HTTP allowed, certificates not checked
  std::string registries_conf;       // --registries-conf; empty: found as skopeo finds it (mirrors,
                                     // remaps, insecure, blocked, search registries)
  std::optional<Platform> platform;  // --platform; default Platform::Host()

  // Streaming.
  int parallel_downloads = 3;            // layers fetched ahead at once (registry only)
  std::string spool_dir;                 // where fetched-ahead layers wait; default $TMPDIR
  std::uint64_t spool_cap = 2ull << 30;  // bytes of fetched-ahead layers on disk at once
  // Verified registry blobs are kept here (DIR/sha256/<hex>) and reused by later runs; empty:
  // no cache. The tool's default is $XDG_CACHE_HOME/sealroot/blobs (design/image.md, "Blob
  // cache"); the agent keeps none.
  std::string blob_cache_dir;

  // Limits (design/image.md "Limits"): exceeding one fails the pull with kResourceExhausted
  // naming it, and the sink is aborted. The names are the agent's config keys.
  std::uint64_t max_layer_size = 64ull << 30;   // decompressed bytes per layer
  std::uint64_t max_image_size = 64ull << 30;   // decompressed bytes of all layers together
  std::uint64_t max_decompression_ratio = 100;  // decompressed / compressed bytes of a layer
  std::size_t max_layers = 128;                 // checked before any layer is fetched

  // Trust (image/trust.h): not owned, may be null.
  SignatureVerifier* verifier = nullptr;
  LayerDecryptor* decryptor = nullptr;

  ProgressCallback progress;
};

// One transport's source for `ref` (registry, oci:, oci-archive:).
Result<std::unique_ptr<ImageSource>> OpenImageSource(const Reference& ref, const PullOptions& options);

// An image resolved to one platform, its manifest and config verified against their digests.
struct ResolvedImage {
  std::optional<ManifestBytes> index;  // when the reference named an index/list
  ManifestBytes manifest;
  Manifest parsed;
  std::string config_json;
  ImageConfig config;
};

// Fetches the manifest the reference names (checked against the reference's digest), picks the
// platform from an index, runs options.verifier, fetches and checks the config, and checks that
// the config lists one DiffID per layer.
Result<ResolvedImage> ResolveImage(ImageSource& source, const PullOptions& options);

// The one-pass pipeline into `sink`. The sink commits each layer only after its blob digest
// (and decryption checks) and DiffID passed, and is Finished only if every layer did; on any
// error it is Aborted and the error names the image, the layer and the cause. Returns what the
// sink was Finished with: the verified manifest (its digest pins the reference), config and
// DiffIDs.
Result<ImageInfo> PullAndUnpack(const Reference& ref, const PullOptions& options, ImageSink& sink);
Result<ImageInfo> PullAndUnpack(ImageSource& source, const PullOptions& options, ImageSink& sink);

// `sealroot pull`: copies the image (one platform) into the OCI layout `dest` (created if
// absent), every blob verified before it is named by its digest; tags it with dest.tag (or the
// source's tag). Layers stay as they are (compressed, possibly encrypted).
Status PullToLayout(const Reference& ref, const Reference& dest, const PullOptions& options);

}  // namespace sealroot::image
