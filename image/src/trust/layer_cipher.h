// The ocicrypt layer cipher AES_256_CTR_HMAC_SHA256 as a stream stage: a Reader that decrypts
// the ciphertext stream of one layer and, at end of stream, checks the HMAC over the ciphertext
// and then the digest of the plaintext. Plaintext flows out before those checks complete (the
// pipeline is one pass); the sink stages it and commits only after every check passed.
//
// Thread-safety: one reader per layer, used by one thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "base/crypto.h"
#include "base/reader.h"
#include "base/secret.h"
#include "image/digest.h"

namespace sealroot::image::trust {

inline constexpr std::size_t kLayerKeySize = 32;
inline constexpr std::size_t kLayerNonceSize = 16;

struct LayerCipherParams {
  SecretBytes key;                                    // 32 bytes: AES-256 key, also the HMAC key
  std::array<std::uint8_t, kLayerNonceSize> nonce{};  // the whole initial counter block
  Sha256Digest expected_hmac{};                       // from the public options
  Digest plaintext_digest;                            // from the private options
};

// `layer` names the layer in errors ("layer 2 sha256:ab.."). The reader fails with kDataLoss
// "<layer>: HMAC mismatch ..." or "<layer>: plaintext digest mismatch ..." at end of stream.
// kInvalidArgument if the key is not 32 bytes.
Result<std::unique_ptr<Reader>> MakeDecryptingReader(std::string layer, LayerCipherParams params,
                                                     std::unique_ptr<Reader> ciphertext);

}  // namespace sealroot::image::trust
