// OpenSSL, owned: one unique_ptr type per OpenSSL handle (logic code never calls *_free), and
// the few primitives every part shares (SHA-256, HMAC-SHA256, AES-CMAC, AES-GCM, randomness).
// Primitives that authenticate wipe their output on failure and say only
// "authentication failed"; callers add which check failed for what.
//
// Thread-safety: hashers/MACs are single-threaded objects; free functions are thread-safe.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/secret.h"
#include "base/status.h"

namespace sealroot {

template <auto FreeFn>
struct OsslDeleter {
  template <typename T>
  void operator()(T* p) const {
    FreeFn(p);
  }
};
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, OsslDeleter<EVP_MD_CTX_free>>;
using EvpCipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, OsslDeleter<EVP_CIPHER_CTX_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OsslDeleter<EVP_PKEY_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OsslDeleter<EVP_PKEY_CTX_free>>;
using EvpMacPtr = std::unique_ptr<EVP_MAC, OsslDeleter<EVP_MAC_free>>;
using EvpMacCtxPtr = std::unique_ptr<EVP_MAC_CTX, OsslDeleter<EVP_MAC_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, OsslDeleter<BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, OsslDeleter<X509_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, OsslDeleter<BN_free>>;

// Drains OpenSSL's error queue into one line (empty if none).
std::string OpensslErrors();
// A kInternal/kDataLoss-free status for a failed OpenSSL call: "what: <openssl errors>".
Status OpensslStatus(std::string_view what, Code code = Code::kInternal);

using Sha256Digest = std::array<std::uint8_t, 32>;

// Incremental SHA-256.
class Sha256 {
 public:
  Sha256();
  void Update(std::span<const std::uint8_t> data);
  void Update(std::string_view data);
  Sha256Digest Finish();  // the object may not be used afterwards

 private:
  EvpMdCtxPtr ctx_;
};

Sha256Digest Sha256Of(std::span<const std::uint8_t> data);
Sha256Digest Sha256Of(std::string_view data);

// Incremental HMAC-SHA256.
class HmacSha256 {
 public:
  explicit HmacSha256(std::span<const std::uint8_t> key);
  void Update(std::span<const std::uint8_t> data);
  Sha256Digest Finish();

 private:
  EvpMacCtxPtr ctx_;
};

using Block16 = std::array<std::uint8_t, 16>;

// AES-128-CMAC (NIST SP 800-38B), as SGX uses it. `key` must be 16 bytes.
Block16 AesCmac128(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data);

// Fills `out` with cryptographically secure random bytes.
void RandomBytes(std::span<std::uint8_t> out);

// AES-GCM with a 16-byte tag appended to the ciphertext. Key size picks AES-128/256.
Result<std::vector<std::uint8_t>> AesGcmSeal(std::span<const std::uint8_t> key,
                                             std::span<const std::uint8_t> nonce,
                                             std::span<const std::uint8_t> aad,
                                             std::span<const std::uint8_t> plaintext);
// Returns "authentication failed" (kDataLoss) on any tag/size mismatch; no partial plaintext.
Result<SecretBytes> AesGcmOpen(std::span<const std::uint8_t> key, std::span<const std::uint8_t> nonce,
                               std::span<const std::uint8_t> aad,
                               std::span<const std::uint8_t> ciphertext_and_tag);

// Byte-span views of strings and vice versa, to keep reinterpret_casts in one place.
inline std::span<const std::uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string_view AsChars(std::span<const std::uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace sealroot
