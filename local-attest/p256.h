// P-256 helpers for quotes (raw r||s signatures and x||y public keys, both big-endian, as DCAP
// quotes carry them; JOSE uses the same encodings) and for the key broker's ephemeral keys.
#pragma once

#include <span>
#include <string_view>

#include "base/crypto.h"
#include "base/secret.h"
#include "local-attest/quote.h"

namespace sealroot::p256 {

// The public key x||y on P-256; kDataLoss if it is not a point on the curve.
Result<EvpPkeyPtr> PublicKey(const local_attest::sgx::EcPoint& point);
// x||y of a P-256 key.
Result<local_attest::sgx::EcPoint> PointOf(EVP_PKEY* key);
// ECDSA-SHA256 over `data`.
bool Verify(EVP_PKEY* key, std::span<const std::uint8_t> data,
            const local_attest::sgx::EcdsaSignature& signature);
Result<local_attest::sgx::EcdsaSignature> Sign(EVP_PKEY* key, std::span<const std::uint8_t> data);
// A P-256 key whose private scalar is derived from `seed` and `label` (the sim's deterministic
// keys: the same seed gives the same root in every process).
Result<EvpPkeyPtr> DeterministicKey(std::string_view seed, std::string_view label);
// A fresh random key pair.
Result<EvpPkeyPtr> GenerateKey();
// The ECDH shared secret (x coordinate, big-endian, 32 bytes) of `ours` and `peer`, a key from
// PublicKey (which checked it is a point of the group: it is not checked again).
Result<SecretBytes> Ecdh(EVP_PKEY* ours, EVP_PKEY* peer);

}  // namespace sealroot::p256
