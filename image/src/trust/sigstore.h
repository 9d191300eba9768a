// Cosign ("sigstore") signatures stored as OCI attachments: a manifest tagged
// "sha256-<hex>.sig" in the image's repository, one layer per signature
// (application/vnd.dev.cosign.simplesigning.v1+json) whose blob is the payload and whose
// "dev.cosignproject.cosign/signature" annotation is the base64 signature over it.
#pragma once

#include <openssl/evp.h>

#include <string>
#include <vector>

#include "base/status.h"
#include "image/source.h"

namespace sealroot::image::trust {

inline constexpr std::string_view kCosignLayerType = "application/vnd.dev.cosign.simplesigning.v1+json";
inline constexpr std::string_view kCosignSignatureAnnotation = "dev.cosignproject.cosign/signature";

struct SigstoreSignature {
  std::string payload;
  std::vector<std::uint8_t> signature;
};

// The attachment tag of an image's signatures: "sha256-<hex>.sig".
std::string SigstoreTag(const Digest& manifest);

// Fetches the signatures attached to `manifest` through `source` (an empty list when there is
// no attachment manifest). Layers of other media types are skipped, as cosign does.
Result<std::vector<SigstoreSignature>> FetchSigstoreSignatures(ImageSource& source, const Digest& manifest);

// Verifies `signature` over `payload` with an ECDSA (SHA-256, DER signature), RSA (PKCS#1 v1.5,
// SHA-256) or Ed25519 public key. kPermissionDenied if it does not verify.
Status VerifySigstoreSignature(EVP_PKEY* key, const SigstoreSignature& signature);

}  // namespace sealroot::image::trust
