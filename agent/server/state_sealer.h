// StateSealer: seals the agent's persisted state (image keys, root hashes, containers) so that
// only this agent enclave can read it back after a restart. The "tee" sealer derives its key
// with EGETKEY(SEAL_KEY, MRENCLAVE policy); the "file" sealer (development, no TEE) keeps its
// key in a 0600 file. Both use AES-256-GCM with a fresh nonce per write.
//
// Thread-safety: Seal/Unseal are const and may be called concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "agent/server/config.h"
#include "base/secret.h"
#include "base/status.h"
#include "local-attest/tee.h"

namespace sealroot::agent {

class StateSealer {
 public:
  virtual ~StateSealer() = default;
  virtual Result<std::vector<std::uint8_t>> Seal(std::span<const std::uint8_t> plaintext) const = 0;
  // kDataLoss "authentication failed" for anything not sealed by this sealer's key.
  virtual Result<SecretBytes> Unseal(std::span<const std::uint8_t> sealed) const = 0;
};

// AES-256-GCM with `key` (32 bytes).
Result<std::unique_ptr<StateSealer>> MakeKeySealer(SecretBytes key);
// AES-256-GCM with a key derived from `tee`'s EGETKEY(SEAL_KEY, MRENCLAVE policy).
Result<std::unique_ptr<StateSealer>> MakeTeeSealer(sgx::Tee& tee);
// The sealer the config asks for.
Result<std::unique_ptr<StateSealer>> MakeStateSealer(const StateSealing& sealing);

}  // namespace sealroot::agent
