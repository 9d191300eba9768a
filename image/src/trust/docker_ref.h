// Docker references as signatures and policies name them ("host[:port]/path[:tag][@digest]"),
// normalised the way the distribution library does ("busybox" -> "docker.io/library/busybox").
// Signed identities are compared in this normalised form.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "image/reference.h"

namespace sealroot::image::trust {

struct DockerRef {
  std::string domain;  // "docker.io", "127.0.0.1:5000"
  std::string path;    // "library/busybox"
  std::string tag;     // may be empty
  std::string digest;  // "sha256:..", may be empty

  // Parses and normalises. `require_canonical` refuses short forms ("busybox") the way
  // reference.ParseNamed does, for policy fields that must be fully qualified.
  static Result<DockerRef> Parse(std::string_view text, bool require_canonical = false);
  // The docker reference of an image reference (kDocker only; tag "latest" when neither a tag
  // nor a digest is given). nullopt for oci/oci-archive, which have no docker identity.
  static std::optional<DockerRef> FromReference(const Reference& ref);

  std::string Name() const { return domain + "/" + path; }
  std::string String() const;  // Name()[:tag][@digest]
  bool NameOnly() const { return tag.empty() && digest.empty(); }
};

// Policy scopes for a docker reference, most specific first: the full reference, the
// repository, each parent namespace, the host, then "*.domain" wildcards.
std::vector<std::string> DockerScopes(const DockerRef& ref);

}  // namespace sealroot::image::trust
