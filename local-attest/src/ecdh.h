// P-256 ephemeral keys in the SDK's little-endian wire form (private to local-attest).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>

#include "base/crypto.h"
#include "base/secret.h"
#include "base/status.h"

namespace sealroot::local_attest {

using PublicKeyLe = std::array<std::uint8_t, 64>;  // x[32] || y[32], each little-endian

class EphemeralKey {
 public:
  static Result<std::unique_ptr<EphemeralKey>> Generate();
  // Use Generate(); public only for std::make_unique.
  EphemeralKey(EvpPkeyPtr key, const PublicKeyLe& pub) : key_(std::move(key)), public_(pub) {}
  const PublicKeyLe& public_key() const { return public_; }
  // The ECDH shared x coordinate, little-endian. Fails (kInvalidArgument) when `peer` is not a
  // point on P-256.
  Result<SecretBytes> SharedSecret(const PublicKeyLe& peer) const;

 private:
  EvpPkeyPtr key_;
  PublicKeyLe public_;
};

}  // namespace sealroot::local_attest
