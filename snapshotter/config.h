// sealroot-snapshotter's configuration: a JSON file (default /etc/sealroot/snapshotter.json);
// design/shim.md documents every key. Unknown keys are errors.
//
// Thread-safety: a value type.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace sealroot::snapshotter {

inline constexpr char kDefaultConfigPath[] = "/etc/sealroot/snapshotter.json";

struct Config {
  std::string root = "/var/lib/sealroot/snapshotter";                  // snapshots and their metadata
  std::string address = "/run/sealroot/snapshotter.sock";              // containerd's proxy_plugins address
  std::string containerd_address = "/run/containerd/containerd.sock";  // where manifests are read
  // Confidential when a manifest layer's media type is "+encrypted" (the manifest is read from
  // containerd's content store; no layer is).
  bool detect_encrypted = true;
  // Also confidential: images whose reference (as the CRI names it, e.g.
  // "registry.example/team/app:1") matches one of these fnmatch(3) patterns.
  std::vector<std::string> confidential_images;
  std::string log_level = "info";
};

Result<Config> ParseConfig(std::string_view json_text);
// A missing file at the default path means the defaults; a file named explicitly must exist.
Result<Config> LoadConfig(const std::string& path, bool default_path);

}  // namespace sealroot::snapshotter
