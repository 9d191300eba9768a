// The enclave's manifest: one document measured into MRENCLAVE with the enclave's code
// (design/attestation.md "Measured layout"), read by the enclave as its whole trusted
// configuration. A host that changes one byte of it changes the enclave's identity.
//
// Where it comes from: under the sim launcher, a sealed read-only memfd whose number is in
// SEALROOT_SIM_MANIFEST_FD; under Occlum or Gramine, kLibOsManifestPath inside the enclave's
// measured file system (an Occlum image file, a Gramine trusted file).
//
// Thread-safety: call once at start-up, before threads.
#pragma once

#include <optional>
#include <string>

#include "base/status.h"

namespace sealroot::local_attest::sgx {

inline constexpr char kSimManifestFdEnv[] = "SEALROOT_SIM_MANIFEST_FD";
inline constexpr char kLibOsManifestPath[] = "/etc/sealroot/manifest.json";
inline constexpr std::size_t kMaxManifestSize = 1u << 20;

// The manifest this enclave was launched with; nullopt when it has none. A sim manifest fd that
// is not sealed against writes is refused (its bytes could differ from the measured ones).
Result<std::optional<std::string>> ReadEnclaveManifest();

}  // namespace sealroot::local_attest::sgx
