// Evaluating policy requirements against the signatures an image has. Signatures are fetched
// lazily and at most once per image (a policy with no signature requirement fetches nothing).
// Thread-safety: one SignatureSet per verification, used by one thread.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "image/source.h"
#include "image/src/trust/docker_ref.h"
#include "image/src/trust/lookaside.h"
#include "image/src/trust/policy.h"
#include "image/src/trust/sigstore.h"

namespace sealroot::image::trust {

class SignatureSet {
 public:
  SignatureSet(ImageSource& source, const ManifestBytes& manifest, const RegistriesD& registries)
      : source_(source), manifest_(manifest), registries_(registries) {}

  const ManifestBytes& manifest() const { return manifest_; }
  // The image's docker identity (nullopt for oci/oci-archive).
  std::optional<DockerRef> image_ref() const { return DockerRef::FromReference(source_.reference()); }

  // Simple-signing signatures from the lookaside store; `location` says where they were looked for.
  Result<const std::vector<std::string>*> Simple();
  const std::string& simple_location() const { return simple_location_; }
  // Cosign signatures attached in the image's repository (or layout).
  Result<const std::vector<SigstoreSignature>*> Sigstore();

 private:
  ImageSource& source_;
  const ManifestBytes& manifest_;
  const RegistriesD& registries_;
  std::optional<std::vector<std::string>> simple_;
  std::string simple_location_;
  std::optional<std::vector<SigstoreSignature>> sigstore_;
};

// What one signature says, once its cryptography verified; ok only if it satisfies `req`
// (manifest digest and signed identity) for the image in `set`.
struct SignatureCheck {
  Status status;       // ok, or why this signature does not satisfy the requirement
  std::string signer;  // GPG fingerprint (simple signing); empty otherwise
  std::string signed_reference;
  std::string signed_digest;
};
SignatureCheck CheckSimpleSignature(const Requirement& req, const std::string& signature, SignatureSet& set);
SignatureCheck CheckSigstoreSignature(const Requirement& req, const SigstoreSignature& signature,
                                      SignatureSet& set);

// Ok if `req` accepts the image; otherwise kPermissionDenied saying why.
Status EvaluateRequirement(const Requirement& req, SignatureSet& set);

}  // namespace sealroot::image::trust
