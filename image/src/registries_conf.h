// containers-registries.conf(5), version 2, as skopeo reads it: which registries an image name
// is pulled from (prefix remaps, mirrors), which are insecure or blocked, and where unqualified
// names are searched. Private to image/ (the registry source).
//
// Files, as containers/image finds them:
//   --registries-conf FILE, else $CONTAINERS_REGISTRIES_CONF: that file only (an error if it
//     does not exist);
//   else $HOME/.config/containers/registries.conf if it exists, then the drop-ins
//     $HOME/.config/containers/registries.conf.d/*.conf;
//   else /etc/containers/registries.conf (may be absent), then the drop-ins
//     /etc/containers/registries.conf.d/*.conf and $HOME/.config/containers/registries.conf.d/*.conf.
// Drop-ins load in name order; a later file's unqualified-search-registries replaces the
// earlier list, and its [[registry]] tables replace those with the same prefix.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "image/reference.h"

namespace sealroot::image::internal {

// One place to pull from: a physical registry and repository.
struct PullEndpoint {
  std::string registry;    // host[:port]
  std::string repository;  // path within it
  bool insecure = false;   // plain HTTP and unverified certificates allowed
  bool mirror = false;     // a [[registry.mirror]] (tried before the primary location)
};

class RegistriesConf {
 public:
  struct Mirror {
    std::string location;
    bool insecure = false;
    std::string pull_from_mirror;  // "", "all", "digest-only", "tag-only"
  };
  struct Registry {
    std::string prefix;    // as written, or the location when absent
    std::string location;  // may be empty for a "*.domain" prefix
    bool insecure = false;
    bool blocked = false;
    bool mirror_by_digest_only = false;
    std::vector<Mirror> mirrors;
  };

  // Finds and loads the files (above). `explicit_path` is --registries-conf (may be empty).
  static Result<RegistriesConf> Load(const std::string& explicit_path);
  // Parses one file's text and merges it over this configuration (a drop-in).
  Status Merge(std::string_view text, const std::string& origin);

  // Where to pull `ref` (a fully qualified docker reference) from, in order: the mirrors that
  // apply, then the primary location. kPermissionDenied when the name is blocked.
  Result<std::vector<PullEndpoint>> EndpointsFor(const Reference& ref) const;
  // The registries to try for a short name, in order (empty: docker.io only).
  const std::vector<std::string>& unqualified_search_registries() const { return search_; }
  // The files read, in order (for messages).
  const std::vector<std::string>& files() const { return files_; }

 private:
  const Registry* Find(std::string_view name) const;

  std::vector<std::string> search_;
  std::vector<Registry> registries_;
  std::vector<std::string> files_;
};

}  // namespace sealroot::image::internal
