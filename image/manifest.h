// OCI / Docker v2s2 manifests and indexes, parsed strictly: unknown schema versions, malformed
// digests, negative sizes, and a body whose mediaType disagrees with the transport's are errors.
// Platform selection from an index follows containers/image (exact os/architecture/variant;
// arm64 tries v8, then no variant).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "image/digest.h"

namespace sealroot::image {

inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
// What a registry client asks for (every type above that names a manifest or an index).
inline constexpr std::string_view kManifestAccept =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

bool IsIndexMediaType(std::string_view media_type);
bool IsManifestMediaType(std::string_view media_type);

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;

  // "os/arch[/variant]"
  static Result<Platform> Parse(std::string_view text);
  // The platform this binary runs on (linux/amd64, linux/arm64/v8, ...).
  static Platform Host();
  std::string ToString() const;
  friend bool operator==(const Platform&, const Platform&) = default;
};

struct Manifest {
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;
  std::map<std::string, std::string> annotations;
};

struct IndexEntry {
  Descriptor descriptor;
  std::optional<Platform> platform;
};

struct Index {
  std::string media_type;
  std::vector<IndexEntry> manifests;
  std::map<std::string, std::string> annotations;
};

// `media_type` is what the transport said the body is (may be empty when unknown); the body's
// own mediaType must agree with it when both are present.
Result<Manifest> ParseManifest(std::string_view json, std::string_view media_type);
Result<Index> ParseIndex(std::string_view json, std::string_view media_type);
// The media type of a manifest/index body: the transport's, else the body's "mediaType", else
// (an OCI manifest or index without mediaType) guessed from "manifests" vs "layers".
Result<std::string> DetectManifestMediaType(std::string_view json, std::string_view transport_media_type);

// The manifest of `index` for `platform`; kNotFound listing the platforms the index offers.
Result<Descriptor> SelectPlatform(const Index& index, const Platform& platform);

// ChainID of a layer stack (image spec): ChainID(L0) = DiffID(L0),
// ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln)). `diff_ids` must not be empty.
Digest ChainId(const std::vector<Digest>& diff_ids);

}  // namespace sealroot::image
