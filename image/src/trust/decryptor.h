// The ocicrypt LayerDecryptor: finds a layer's wrapped key among its annotations, unwraps it
// with the configured private keys (JWE, PKCS7) or key providers, and wraps the ciphertext
// stream into the AES_256_CTR_HMAC_SHA256 decrypting stage.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "image/trust.h"
#include "image/trust/keyprovider.h"
#include "image/trust/private_keys.h"

namespace sealroot::image::trust {

inline constexpr std::string_view kEncryptedSuffix = "+encrypted";
inline constexpr std::string_view kJweAnnotation = "org.opencontainers.image.enc.keys.jwe";
inline constexpr std::string_view kPkcs7Annotation = "org.opencontainers.image.enc.keys.pkcs7";
inline constexpr std::string_view kPuboptsAnnotation = "org.opencontainers.image.enc.pubopts";

// Splits a comma-separated list of standard-base64 blobs, as ocicrypt stores wrapped keys.
Result<std::vector<std::vector<std::uint8_t>>> SplitWrappedKeys(std::string_view annotation);

class OcicryptDecryptor final : public LayerDecryptor {
 public:
  OcicryptDecryptor(std::vector<PrivateKey> keys, std::vector<KeyProvider> providers)
      : keys_(std::move(keys)), providers_(std::move(providers)) {}

  bool IsEncrypted(std::string_view media_type) const override;
  Result<std::unique_ptr<Reader>> Decrypt(const Descriptor& layer,
                                          std::unique_ptr<Reader> ciphertext) override;
  std::string PlaintextMediaType(std::string_view media_type) const override;

  // The private options JSON of `layer` (secret), from the first key or provider that unwraps it.
  Result<SecretBytes> UnwrapPrivateOptions(const Descriptor& layer) const;

 private:
  std::vector<PrivateKey> keys_;
  std::vector<KeyProvider> providers_;
};

}  // namespace sealroot::image::trust
