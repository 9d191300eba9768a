// Image references as users write them:
//   [docker://]host[:port]/repo[:tag][@digest]   (docker.io defaults: "busybox" ->
//                                                 docker.io/library/busybox:latest)
//   oci:DIR[:TAG]        an OCI image layout directory
//   oci-archive:FILE[:TAG]  a tar of an OCI image layout
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "image/digest.h"

namespace sealroot::image {

enum class Transport { kDocker, kOciLayout, kOciArchive };

struct Reference {
  Transport transport = Transport::kDocker;
  // kDocker: registry as written ("docker.io", "127.0.0.1:5000"), repository ("library/busybox"),
  // tag (may be empty when digest is set) and an optional digest.
  std::string registry;
  std::string repository;
  std::string tag;
  std::optional<Digest> digest;
  // kDocker: the name as written when it named no registry ("busybox", "team/app"), so that
  // registries.conf's unqualified-search-registries may place it; empty when qualified.
  std::string short_name;
  // kOciLayout / kOciArchive: the path, and the tag (ref.name annotation; may be empty).
  std::string path;

  // Parses and validates (repository grammar, tag grammar, digest format).
  static Result<Reference> Parse(std::string_view text);
  // Transport-prefixed canonical form: "docker://docker.io/library/busybox:latest",
  // "oci:/path:tag", "oci-archive:/file.tar:tag".
  std::string ToString() const;
  // kDocker only: "host/repo:tag" or "host/repo@digest" (the policy identity).
  std::string DockerReference() const;
  // The tag, or the digest string when there is no tag (what to ask a source for).
  std::string TagOrDigest() const;
};

}  // namespace sealroot::image
