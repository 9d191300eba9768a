// containers-policy.json (containers/image 5.x semantics), parsed strictly: unknown fields,
// duplicate members, empty requirement lists, bad scopes and unreadable keys are errors at load
// time, so a policy that loads is one that can be enforced.
//
//   {"default":[reqs], "transports":{"docker"|"oci"|"oci-archive":{"<scope>":[reqs]}}}
//
// The most specific scope wins (see ScopesFor); every requirement of the chosen list must pass.
// Thread-safety: immutable after Parse; Requirement::keyring serialises its own use.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/crypto.h"
#include "base/status.h"
#include "image/reference.h"
#include "image/src/trust/docker_ref.h"

namespace sealroot::image::trust {

class GpgKeyring;  // simple_signing.h

// How a signature's claimed identity must relate to the image being pulled.
struct SignedIdentity {
  enum class Kind {
    kMatchRepoDigestOrExact,
    kMatchExact,
    kMatchRepository,
    kExactReference,
    kExactRepository,
    kRemapIdentity
  };
  Kind kind = Kind::kMatchRepoDigestOrExact;
  std::optional<DockerRef> reference;  // kExactReference (tagged or digested), kExactRepository
  std::string prefix, signed_prefix;   // kRemapIdentity

  // True if a signature claiming `signed_ref` is acceptable for the image `image` (nullopt for
  // images with no docker identity: oci layouts and archives).
  bool Matches(const std::optional<DockerRef>& image, const DockerRef& signed_ref) const;
  std::string ToString() const;
};

// remapIdentity prefixes: a host[:port], or a fully qualified repository or namespace.
Status ValidateRemapPrefix(std::string_view prefix, std::string_view what);

struct Requirement {
  enum class Type { kInsecureAcceptAnything, kReject, kSignedBy, kSigstoreSigned };
  Type type = Type::kReject;
  std::string description;                 // "signedBy(GPGKeys, keyPath=/k.gpg)" for messages
  std::shared_ptr<GpgKeyring> keyring;     // kSignedBy
  std::shared_ptr<EVP_PKEY> sigstore_key;  // kSigstoreSigned
  SignedIdentity identity;
};
using Requirements = std::vector<Requirement>;

class Policy {
 public:
  // `origin` names the policy in errors (its path, or "default policy").
  static Result<Policy> Parse(std::string_view json, std::string_view origin);

  // The requirements that apply to `ref`, and the scope that selected them ("default",
  // "docker:" for a transport-wide scope, or "docker:host/repo").
  struct Selection {
    const Requirements* requirements;
    std::string scope;
  };
  Selection For(const Reference& ref) const;
  // Where the policy came from, as given to Parse ("policy /etc/containers/policy.json").
  const std::string& origin() const { return origin_; }

 private:
  std::string origin_;
  Requirements default_;
  std::map<std::string, std::map<std::string, Requirements>, std::less<>> transports_;
};

// The scope names that apply to `ref` in `transport`, most specific first (not including the
// transport-wide "" scope): docker: full reference, repository, namespaces, host, *.domains;
// oci/oci-archive: "<path>:<tag>", "<path>", then each parent directory.
std::vector<std::string> ScopesFor(const Reference& ref);
std::string_view TransportName(Transport transport);

}  // namespace sealroot::image::trust
