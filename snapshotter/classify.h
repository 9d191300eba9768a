// Which images are confidential: their layers are never fetched or unpacked on the host. The
// decision uses what containerd passes on a layer's Prepare when the CRI's
// `disable_snapshot_annotations = false`: the image reference (`containerd.io/snapshot/
// cri.image-ref`) and the manifest's digest (`.../cri.manifest-digest`). An image is
// confidential when its reference matches a configured pattern, or (detect_encrypted) when a
// layer of its manifest has an encrypted media type (`...+encrypted`); the manifest comes from
// containerd's content store, where the pull put it before unpacking any layer.
//
// Thread-safety: Classify may be called from any thread if the ManifestReader may.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "snapshotter/store.h"

namespace sealroot::snapshotter {

inline constexpr char kImageRefLabel[] = "containerd.io/snapshot/cri.image-ref";
inline constexpr char kManifestDigestLabel[] = "containerd.io/snapshot/cri.manifest-digest";
inline constexpr char kLayerDigestLabel[] = "containerd.io/snapshot/cri.layer-digest";
// Set by containerd's unpacker on each layer's Prepare: the chain ID the layer's snapshot gets.
inline constexpr char kSnapshotRefLabel[] = "containerd.io/snapshot.ref";

// Reads a blob (the manifest) of containerd namespace `ns` by digest ("sha256:<hex>").
using ManifestReader = std::function<Result<std::string>(const std::string& ns, const std::string& digest)>;

class Classifier {
 public:
  Classifier(std::vector<std::string> patterns, bool detect_encrypted, ManifestReader reader)
      : patterns_(std::move(patterns)), detect_encrypted_(detect_encrypted), reader_(std::move(reader)) {}

  // Why the image the labels describe is confidential ("matches pattern P", "layer sha256:…
  // is application/…+encrypted"), or nullopt for an ordinary image (also when the labels name
  // no image: a layer unpacked outside the CRI).
  Result<std::optional<std::string>> Classify(const std::string& ns, const Labels& labels) const;

 private:
  std::vector<std::string> patterns_;
  bool detect_encrypted_;
  ManifestReader reader_;
};

// The first layer of an image manifest (OCI or Docker schema 2) whose media type says it is
// encrypted, as "sha256:… (media type)"; nullopt when none is.
Result<std::optional<std::string>> EncryptedLayer(std::string_view manifest_json);

}  // namespace sealroot::snapshotter
