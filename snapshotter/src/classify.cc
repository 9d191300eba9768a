#include "snapshotter/classify.h"

#include <fnmatch.h>

#include <nlohmann/json.hpp>

#include "base/crypto.h"
#include "base/encoding.h"

namespace sealroot::snapshotter {

Result<std::optional<std::string>> EncryptedLayer(std::string_view manifest_json) {
  nlohmann::json doc = nlohmann::json::parse(manifest_json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return InvalidArgument("the manifest is not a JSON object");
  const nlohmann::json& layers = doc["layers"];
  if (!layers.is_array()) return InvalidArgument("the manifest has no layers list (not an image manifest)");
  for (const nlohmann::json& layer : layers) {
    if (!layer.is_object() || !layer["mediaType"].is_string()) {
      return InvalidArgument("a manifest layer has no media type");
    }
    const std::string media_type = layer["mediaType"].get<std::string>();
    if (media_type.ends_with("+encrypted")) {
      return std::optional<std::string>(layer.value("digest", "?") + " (" + media_type + ")");
    }
  }
  return std::optional<std::string>();
}

Result<std::optional<std::string>> Classifier::Classify(const std::string& ns, const Labels& labels) const {
  auto ref = labels.find(kImageRefLabel);
  if (ref != labels.end()) {
    for (const std::string& pattern : patterns_) {
      if (fnmatch(pattern.c_str(), ref->second.c_str(), 0) == 0) {
        return std::optional<std::string>("its reference matches the pattern " + pattern);
      }
    }
  }
  auto manifest = labels.find(kManifestDigestLabel);
  if (!detect_encrypted_ || manifest == labels.end()) return std::optional<std::string>();
  const std::string& digest = manifest->second;
  auto where = [&] { return "reading the manifest " + digest + " from containerd's content store"; };
  if (!digest.starts_with("sha256:") || digest.size() != 71 ||
      digest.find_first_not_of("0123456789abcdef", 7) != std::string::npos) {
    return InvalidArgument("label " + std::string(kManifestDigestLabel) + ": not a sha256 digest: " + digest);
  }
  Result<std::string> text = reader_(ns, digest);
  if (!text.ok()) return text.status().WithContext(where());
  // containerd's store is the host's: still, decide only on the manifest the pull verified.
  if ("sha256:" + HexEncode(Sha256Of(*text)) != digest) return DataLoss(where() + ": digest mismatch");
  Result<std::optional<std::string>> layer = EncryptedLayer(*text);
  if (!layer.ok()) return layer.status().WithContext(where());
  if (!*layer) return std::optional<std::string>();
  return std::optional<std::string>("layer " + **layer + " is encrypted");
}

}  // namespace sealroot::snapshotter
