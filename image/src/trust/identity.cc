// signedIdentity semantics, as containers/image defines them (signature/policy_reference_match.go).
#include "image/src/trust/policy.h"

namespace sealroot::image::trust {
namespace {

bool RepoDigestOrExact(const DockerRef& image, const DockerRef& signed_ref) {
  // A digest names content: any signature for that repository vouches for the same bytes,
  // since the signature's manifest digest is checked separately. A tag must match exactly.
  if (!image.digest.empty()) return signed_ref.Name() == image.Name();
  if (!image.tag.empty()) return signed_ref.String() == image.String();
  return false;
}

// containers/image matches a prefix on the repository name only, at a '/' boundary.
bool NameHasPrefix(const std::string& name, const std::string& prefix) {
  if (name.size() < prefix.size()) return false;
  if (name.size() == prefix.size()) return name == prefix;
  return name.starts_with(prefix) && name[prefix.size()] == '/';
}

}  // namespace

Status ValidateRemapPrefix(std::string_view prefix, std::string_view what) {
  bool host_only = !prefix.empty() && prefix.find('/') == std::string_view::npos;
  if (host_only) {
    for (char c : prefix) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':';
      if (!ok)
        return InvalidArgument(std::string(what) + ": \"" + std::string(prefix) + "\" is not a host name");
    }
    return OkStatus();
  }
  auto ref = DockerRef::Parse(prefix, /*require_canonical=*/true);
  if (!ref.ok() || !ref->NameOnly() || ref->Name() != prefix) {
    return InvalidArgument(std::string(what) + ": \"" + std::string(prefix) +
                           "\" is not a host, namespace or repository in canonical form");
  }
  return OkStatus();
}

bool SignedIdentity::Matches(const std::optional<DockerRef>& image, const DockerRef& signed_ref) const {
  switch (kind) {
    case Kind::kMatchRepoDigestOrExact:
      return image && RepoDigestOrExact(*image, signed_ref);
    case Kind::kMatchExact:
      return image && !image->NameOnly() && signed_ref.String() == image->String();
    case Kind::kMatchRepository:
      return image && signed_ref.Name() == image->Name();
    case Kind::kExactReference:
      return reference && signed_ref.String() == reference->String();
    case Kind::kExactRepository:
      return reference && signed_ref.Name() == reference->Name();
    case Kind::kRemapIdentity: {
      if (!image) return false;
      if (!NameHasPrefix(image->Name(), prefix)) return RepoDigestOrExact(*image, signed_ref);
      std::string remapped = signed_prefix + image->String().substr(prefix.size());
      Result<DockerRef> ref = DockerRef::Parse(remapped);
      return ref.ok() && RepoDigestOrExact(*ref, signed_ref);
    }
  }
  return false;
}

std::string SignedIdentity::ToString() const {
  switch (kind) {
    case Kind::kMatchRepoDigestOrExact:
      return "matchRepoDigestOrExact";
    case Kind::kMatchExact:
      return "matchExact";
    case Kind::kMatchRepository:
      return "matchRepository";
    case Kind::kExactReference:
      return "exactReference(" + (reference ? reference->String() : "") + ")";
    case Kind::kExactRepository:
      return "exactRepository(" + (reference ? reference->Name() : "") + ")";
    case Kind::kRemapIdentity:
      return "remapIdentity(" + prefix + " -> " + signed_prefix + ")";
  }
  return "?";
}

}  // namespace sealroot::image::trust
