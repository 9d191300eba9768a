#include "base/secret.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cstdlib>

namespace sealroot {

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Wipe();
    bytes_ = std::move(other.bytes_);
    other.bytes_.clear();
  }
  return *this;
}

SecretBytes SecretBytes::Random(std::size_t size) {
  SecretBytes out(size);
  // RAND_bytes only fails when the DRBG cannot be seeded; continuing would yield a weak key.
  if (size != 0 && RAND_bytes(out.data(), static_cast<int>(size)) != 1) std::abort();
  return out;
}

bool operator==(const SecretBytes& a, const SecretBytes& b) {
  return ConstantTimeEqual(a.span(), b.span());
}

void SecretBytes::Wipe() {
  SecureWipe(bytes_);
}

bool ConstantTimeEqual(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

void SecureWipe(std::span<std::uint8_t> bytes) {
  if (!bytes.empty()) OPENSSL_cleanse(bytes.data(), bytes.size());
}

}  // namespace sealroot
