// SecretBytes: a self-zeroing, move-only byte buffer for keys and other secrets. It is never
// printed (no operator<<), its contents are wiped with OPENSSL_cleanse when it dies or is
// reassigned, and equality is constant-time.
//
// Thread-safety: a value type; not synchronized.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace sealroot {

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::size_t size) : bytes_(size) {}
  explicit SecretBytes(std::span<const std::uint8_t> bytes) : bytes_(bytes.begin(), bytes.end()) {}
  ~SecretBytes() { Wipe(); }

  SecretBytes(SecretBytes&& other) noexcept : bytes_(std::move(other.bytes_)) { other.bytes_.clear(); }
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  // An explicit copy, so that duplicating a secret is visible at the call site.
  SecretBytes Clone() const { return SecretBytes(span()); }

  // A buffer of `size` cryptographically random bytes.
  static SecretBytes Random(std::size_t size);

  std::uint8_t* data() { return bytes_.data(); }
  const std::uint8_t* data() const { return bytes_.data(); }
  std::size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  std::span<std::uint8_t> span() { return bytes_; }
  std::span<const std::uint8_t> span() const { return bytes_; }

  // Constant-time comparison (sizes are not secret).
  friend bool operator==(const SecretBytes& a, const SecretBytes& b);

 private:
  void Wipe();
  std::vector<std::uint8_t> bytes_;
};

// Constant-time equality of two byte strings (false when sizes differ).
bool ConstantTimeEqual(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b);

// Wipes memory in a way the compiler cannot elide.
void SecureWipe(std::span<std::uint8_t> bytes);

}  // namespace sealroot
