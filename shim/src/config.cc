#include "shim/config.h"

#include <nlohmann/json.hpp>
#include <set>

#include "base/file.h"

namespace sealroot::shim {
namespace {

using nlohmann::json;

Status CheckKeys(const json& object, std::string_view where,
                 const std::set<std::string, std::less<>>& allowed) {
  if (!object.is_object()) return InvalidArgument(std::string(where) + ": expected a JSON object");
  for (const auto& [key, value] : object.items()) {
    if (!allowed.contains(key)) return InvalidArgument(std::string(where) + ": unknown key \"" + key + "\"");
  }
  return OkStatus();
}

Result<std::string> AbsolutePath(const json& object, const char* key, std::string_view where) {
  const json& value = object.at(key);
  if (!value.is_string() || !value.get<std::string>().starts_with('/')) {
    return InvalidArgument(std::string(where) + "." + key + ": expected an absolute path");
  }
  return value.get<std::string>();
}

Result<EnclaveProgram> ParseProgram(const json& object, std::string_view where) {
  SR_RETURN_IF_ERROR(CheckKeys(object, where, {"executable", "sigstruct", "heap_size", "threads"}));
  EnclaveProgram out;
  if (!object.contains("executable") || !object.contains("sigstruct")) {
    return InvalidArgument(std::string(where) + ": \"executable\" and \"sigstruct\" are required");
  }
  SR_ASSIGN_OR_RETURN(out.executable, AbsolutePath(object, "executable", where));
  SR_ASSIGN_OR_RETURN(out.sigstruct, AbsolutePath(object, "sigstruct", where));
  if (object.contains("heap_size")) {
    if (!object["heap_size"].is_number_unsigned()) return InvalidArgument(std::string(where) + ".heap_size");
    out.heap_size = object["heap_size"].get<std::uint64_t>();
  }
  if (object.contains("threads")) {
    if (!object["threads"].is_number_unsigned() || object["threads"].get<std::uint64_t>() > 1024) {
      return InvalidArgument(std::string(where) + ".threads");
    }
    out.threads = object["threads"].get<std::uint32_t>();
  }
  return out;
}

}  // namespace

Result<ShimConfig> ParseShimConfig(std::string_view json_text) {
  json doc = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgument("shim config: not JSON");
  SR_RETURN_IF_ERROR(CheckKeys(doc, "shim config",
                               {"launcher", "agent", "boot", "manifest", "state_root", "socket_root",
                                "image_annotation", "agent_start_timeout_ms", "log_level"}));
  ShimConfig config;
  if (!doc.contains("agent")) return InvalidArgument("shim config: \"agent\" is required");
  if (!doc.contains("manifest")) {
    return InvalidArgument(
        "shim config: \"manifest\" is required: the agent's whole configuration is its measured "
        "manifest");
  }
  SR_ASSIGN_OR_RETURN(config.agent, ParseProgram(doc["agent"], "agent"));
  if (doc.contains("boot")) {
    SR_ASSIGN_OR_RETURN(config.boot, ParseProgram(doc["boot"], "boot"));
  }
  for (auto [key, target] :
       {std::pair{"launcher", &config.launcher}, std::pair{"manifest", &config.manifest},
        std::pair{"state_root", &config.state_root}, std::pair{"socket_root", &config.socket_root}}) {
    if (doc.contains(key)) {
      SR_ASSIGN_OR_RETURN(*target, AbsolutePath(doc, key, "shim config"));
    }
  }
  // Unix socket paths are at most 107 bytes: <socket_root>/<64 hex> must fit.
  if (config.socket_root.size() > 40) return InvalidArgument("shim config: socket_root longer than 40 bytes");
  if (doc.contains("image_annotation")) {
    if (!doc["image_annotation"].is_string() || doc["image_annotation"].get<std::string>().empty()) {
      return InvalidArgument("shim config: image_annotation: expected a non-empty string");
    }
    config.image_annotation = doc["image_annotation"].get<std::string>();
  }
  if (doc.contains("agent_start_timeout_ms")) {
    if (!doc["agent_start_timeout_ms"].is_number_unsigned()) {
      return InvalidArgument("shim config: agent_start_timeout_ms: expected milliseconds");
    }
    config.agent_start_timeout =
        std::chrono::milliseconds(doc["agent_start_timeout_ms"].get<std::uint64_t>());
  }
  if (doc.contains("log_level")) {
    if (!doc["log_level"].is_string()) return InvalidArgument("shim config: log_level: expected a string");
    config.log_level = doc["log_level"].get<std::string>();
  }
  return config;
}

Result<ShimConfig> LoadShimConfig(const std::string& path) {
  Result<std::string> text = ReadFile(path, 1u << 20);
  if (!text.ok()) return std::move(text).status().WithContext("shim config " + path);
  Result<ShimConfig> config = ParseShimConfig(*text);
  if (!config.ok()) return std::move(config).status().WithContext(path);
  return config;
}

}  // namespace sealroot::shim
