// Placeholder until the image trust issue lands: no policy, no decryption.
#include "image/trust.h"

namespace sealroot::image {

void AddTrustFlags(ArgParser&) {}
TrustOptions TrustOptionsFromFlags(const ArgParser&) { return {}; }
Result<std::unique_ptr<SignatureVerifier>> MakeSignatureVerifier(const TrustOptions&) {
  return std::unique_ptr<SignatureVerifier>();
}
Result<std::unique_ptr<LayerDecryptor>> MakeLayerDecryptor(const TrustOptions&) {
  return std::unique_ptr<LayerDecryptor>();
}

}  // namespace sealroot::image
