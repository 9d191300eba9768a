// "Simple signing" (containers/image, skopeo --sign-by): an OpenPGP signed message whose
// literal data is a JSON payload naming the image's docker reference and manifest digest.
// OpenPGP is done by librnp; the payload is parsed strictly (unknown critical members rejected).
#pragma once

#include <rnp/rnp.h>
#include <rnp/rnp_err.h>

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "base/thread_annotations.h"

namespace sealroot::image::trust {

// The claims of a signature payload (simple signing or cosign).
struct SignatureClaims {
  std::string docker_reference;  // as signed, not normalised
  std::string manifest_digest;   // "sha256:.."
};

inline constexpr std::string_view kSimpleSigningType = "atomic container signature";
inline constexpr std::string_view kCosignType = "cosign container image signature";

// Parses {"critical":{"type":..,"image":{"docker-manifest-digest":..},"identity":
// {"docker-reference":..}},"optional":{..}} requiring critical.type == `type`. Simple signing
// requires "optional" and types its known members; cosign accepts any "optional" object.
Result<SignatureClaims> ParseSignaturePayload(std::string_view payload, std::string_view type);

// A set of trusted OpenPGP public keys (a GPGKeys requirement's keyring).
// Thread-safety: Verify may be called from several threads; an internal mutex serialises rnp.
class GpgKeyring {
 public:
  // `keyrings`: binary or ASCII-armoured exported public keys. `what` names them in errors.
  static Result<std::shared_ptr<GpgKeyring>> Create(const std::vector<std::string>& keyrings,
                                                    std::string_view what);

  struct Verified {
    std::string payload;      // the signed literal data
    std::string fingerprint;  // of the signing (primary) key, uppercase hex
  };
  // Verifies a signed message made by exactly one of the keyring's keys. kPermissionDenied for
  // an invalid signature or an unknown key; kInvalidArgument for something that is not one.
  Result<Verified> Verify(std::span<const std::uint8_t> message) const;

 private:
  struct FfiDeleter {
    void operator()(rnp_ffi_st* ffi) const { rnp_ffi_destroy(ffi); }
  };
  explicit GpgKeyring(std::unique_ptr<rnp_ffi_st, FfiDeleter> ffi) : ffi_(std::move(ffi)) {}

  mutable Mutex mu_;
  std::unique_ptr<rnp_ffi_st, FfiDeleter> ffi_ SR_GUARDED_BY(mu_);
};

}  // namespace sealroot::image::trust
