#include "image/src/trust/signatures.h"

#include "base/crypto.h"
#include "image/src/trust/simple_signing.h"

namespace sealroot::image::trust {
namespace {

// The claims are only looked at once the signature verified: an unverified payload is
// attacker-controlled text.
Status CheckClaims(const Requirement& req, std::string_view payload, std::string_view type, SignatureSet& set,
                   SignatureCheck& check) {
  SR_ASSIGN_OR_RETURN(SignatureClaims claims, ParseSignaturePayload(payload, type));
  check.signed_reference = claims.docker_reference;
  check.signed_digest = claims.manifest_digest;
  if (claims.manifest_digest != set.manifest().digest.str()) {
    return PermissionDenied("signature is for manifest " + claims.manifest_digest + ", not " +
                            set.manifest().digest.str());
  }
  Result<DockerRef> signed_ref = DockerRef::Parse(claims.docker_reference);
  if (!signed_ref.ok())
    return PermissionDenied("signature names an invalid reference: " + signed_ref.status().message());
  std::optional<DockerRef> image = set.image_ref();
  if (!req.identity.Matches(image, *signed_ref)) {
    return PermissionDenied("signed identity " + signed_ref->String() + " does not match " +
                            (image ? image->String() : std::string("an image without a docker reference")) +
                            " under " + req.identity.ToString());
  }
  return OkStatus();
}

template <typename Sig, typename Check>
Status AnyAccepted(const std::vector<Sig>& sigs, const std::string& kind, Check check) {
  std::string reasons;
  for (std::size_t i = 0; i < sigs.size(); ++i) {
    SignatureCheck c = check(sigs[i]);
    if (c.status.ok()) return OkStatus();
    reasons += (reasons.empty() ? "" : "; ") + kind + " " + std::to_string(i + 1) + ": " + c.status.message();
  }
  return PermissionDenied("no signature is accepted (" + reasons + ")");
}

}  // namespace

Result<const std::vector<std::string>*> SignatureSet::Simple() {
  if (!simple_) {
    std::optional<DockerRef> ref = image_ref();
    std::optional<std::string> base = ref ? registries_.LookasideFor(*ref) : std::nullopt;
    if (!base) {
      simple_location_ =
          ref ? "no lookaside configured in registries.d" : "the transport stores no simple signatures";
      simple_.emplace();
    } else {
      simple_location_ = "lookaside " + *base;
      SR_ASSIGN_OR_RETURN(auto sigs, FetchLookasideSignatures(*base, *ref, manifest_.digest));
      simple_ = std::move(sigs);
    }
  }
  return &*simple_;
}

Result<const std::vector<SigstoreSignature>*> SignatureSet::Sigstore() {
  if (!sigstore_) {
    SR_ASSIGN_OR_RETURN(auto sigs, FetchSigstoreSignatures(source_, manifest_.digest));
    sigstore_ = std::move(sigs);
  }
  return &*sigstore_;
}

SignatureCheck CheckSimpleSignature(const Requirement& req, const std::string& signature, SignatureSet& set) {
  SignatureCheck check;
  Result<GpgKeyring::Verified> verified = req.keyring->Verify(AsBytes(signature));
  if (!verified.ok()) {
    check.status = verified.status();
    return check;
  }
  check.signer = verified->fingerprint;
  check.status = CheckClaims(req, verified->payload, kSimpleSigningType, set, check);
  return check;
}

SignatureCheck CheckSigstoreSignature(const Requirement& req, const SigstoreSignature& signature,
                                      SignatureSet& set) {
  SignatureCheck check;
  check.status = VerifySigstoreSignature(req.sigstore_key.get(), signature);
  if (check.status.ok()) check.status = CheckClaims(req, signature.payload, kCosignType, set, check);
  return check;
}

Status EvaluateRequirement(const Requirement& req, SignatureSet& set) {
  switch (req.type) {
    case Requirement::Type::kInsecureAcceptAnything:
      return OkStatus();
    case Requirement::Type::kReject:
      return PermissionDenied("the policy rejects this image");
    case Requirement::Type::kSignedBy: {
      SR_ASSIGN_OR_RETURN(const std::vector<std::string>* sigs, set.Simple());
      if (sigs->empty())
        return PermissionDenied("a signature is required, but none exists (" + set.simple_location() + ")");
      return AnyAccepted(*sigs, "signature",
                         [&](const std::string& s) { return CheckSimpleSignature(req, s, set); });
    }
    case Requirement::Type::kSigstoreSigned: {
      SR_ASSIGN_OR_RETURN(const std::vector<SigstoreSignature>* sigs, set.Sigstore());
      if (sigs->empty()) {
        return PermissionDenied("a signature is required, but no cosign signature " +
                                SigstoreTag(set.manifest().digest) + " exists");
      }
      return AnyAccepted(*sigs, "cosign signature",
                         [&](const SigstoreSignature& s) { return CheckSigstoreSignature(req, s, set); });
    }
  }
  return Internal("unknown requirement type");
}

}  // namespace sealroot::image::trust
