// StateSealer: seals the agent's persisted state (image keys, root hashes, containers) so that
// only this agent, under this measured configuration, can read it back after a restart. The
// "tee" sealer derives its key with EGETKEY(SEAL_KEY, MRSIGNER policy: signer, ISVPRODID, and
// the sealing ISVSVN, so a signed upgrade keeps the state); the "file" sealer (development, no
// TEE) keeps its key in a 0600 file. Both use AES-256-GCM with a fresh nonce per write and bind
// the manifest digest: state sealed under another manifest is refused (kFailedPrecondition).
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

// `manifest`: the digest of the measured configuration the state belongs to (zeros: none).
// AES-256-GCM with `key` (32 bytes).
Result<std::unique_ptr<StateSealer>> MakeKeySealer(SecretBytes key, const Sha256Digest& manifest = {});
// AES-256-GCM with a key derived from `tee`'s EGETKEY(SEAL_KEY, MRSIGNER policy).
Result<std::unique_ptr<StateSealer>> MakeTeeSealer(std::unique_ptr<local_attest::sgx::Tee> tee,
                                                   const Sha256Digest& manifest = {});
// The sealer the config asks for ("file" logs that it is for development only).
Result<std::unique_ptr<StateSealer>> MakeStateSealer(const StateSealing& sealing,
                                                     const Sha256Digest& manifest = {});

}  // namespace sealroot::agent
