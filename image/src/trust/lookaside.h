// Where simple signatures live: registries.d configuration (containers-registries.d(5), YAML)
// maps docker namespaces to "lookaside" base URLs (file://, http://, https://); signatures of
// image <host>/<path> with manifest digest sha256:<hex> are
//   <base>/<path>@sha256=<hex>/signature-1, signature-2, ... up to the first missing one.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "image/digest.h"
#include "image/src/trust/docker_ref.h"

namespace sealroot::image::trust {

class RegistriesD {
 public:
  // Loads every *.yaml file of `dir` ("" -> no lookaside at all). Unknown keys and a namespace
  // configured in two files are errors.
  static Result<RegistriesD> Load(const std::string& dir);

  // The lookaside base URL for `ref`: the most specific configured namespace, else
  // default-docker; nullopt when none is configured.
  std::optional<std::string> LookasideFor(const DockerRef& ref) const;

 private:
  std::map<std::string, std::string> namespaces_;
  std::optional<std::string> default_;
};

// Fetches the signatures of `ref`/`manifest` below `base` (file://, http://, https://).
// An absent signature-1 yields an empty list. Each signature is capped at 4 MiB.
Result<std::vector<std::string>> FetchLookasideSignatures(const std::string& base, const DockerRef& ref,
                                                          const Digest& manifest);

}  // namespace sealroot::image::trust
