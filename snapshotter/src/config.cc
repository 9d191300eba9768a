#include "snapshotter/config.h"

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <set>

#include "base/file.h"

namespace sealroot::snapshotter {
namespace {

using nlohmann::json;

Result<std::string> AbsolutePath(const json& doc, const char* key) {
  const json& value = doc.at(key);
  if (!value.is_string() || !value.get<std::string>().starts_with('/')) {
    return InvalidArgument(std::string("snapshotter config: ") + key + ": expected an absolute path");
  }
  return value.get<std::string>();
}

}  // namespace

Result<Config> ParseConfig(std::string_view json_text) {
  json doc = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return InvalidArgument("snapshotter config: not a JSON object");
  static const std::set<std::string, std::less<>> kKeys = {
      "root", "address", "containerd_address", "detect_encrypted", "confidential_images", "log_level"};
  for (const auto& [key, value] : doc.items()) {
    if (!kKeys.contains(key)) return InvalidArgument("snapshotter config: unknown key \"" + key + "\"");
  }
  Config config;
  for (auto [key, target] : {std::pair{"root", &config.root}, std::pair{"address", &config.address},
                             std::pair{"containerd_address", &config.containerd_address}}) {
    if (doc.contains(key)) {
      SR_ASSIGN_OR_RETURN(*target, AbsolutePath(doc, key));
    }
  }
  if (doc.contains("detect_encrypted")) {
    if (!doc["detect_encrypted"].is_boolean()) {
      return InvalidArgument("snapshotter config: detect_encrypted: expected true or false");
    }
    config.detect_encrypted = doc["detect_encrypted"].get<bool>();
  }
  if (doc.contains("confidential_images")) {
    const json& patterns = doc["confidential_images"];
    if (!patterns.is_array())
      return InvalidArgument("snapshotter config: confidential_images: expected a list");
    for (const json& p : patterns) {
      if (!p.is_string() || p.get<std::string>().empty()) {
        return InvalidArgument("snapshotter config: confidential_images: expected non-empty strings");
      }
      config.confidential_images.push_back(p.get<std::string>());
    }
  }
  if (doc.contains("log_level")) {
    if (!doc["log_level"].is_string())
      return InvalidArgument("snapshotter config: log_level: expected a string");
    config.log_level = doc["log_level"].get<std::string>();
  }
  return config;
}

Result<Config> LoadConfig(const std::string& path, bool default_path) {
  if (default_path && access(path.c_str(), F_OK) != 0) return Config{};
  SR_ASSIGN_OR_RETURN(std::string text, ReadFile(path, 1u << 20));
  Result<Config> config = ParseConfig(text);
  if (!config.ok()) return config.status().WithContext(path);
  return config;
}

}  // namespace sealroot::snapshotter
