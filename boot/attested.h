// The app enclave's second stage as the agent launches it (design/boot.md "Sequence"):
// attest to the agent's per-container socket as the initiator, receive the root key, root hash
// and spec digest, refuse a spec that does not match the digest, mount the sealed root (FUSE)
// with a writable layer (persistent sealed upper, or in-memory), and run the container. design/boot.md has
// the whole sequence and what each check protects.
//
// Thread-safety: RunAttestedBoot is called once, from the main thread, after
// EnterContainerNamespaces (container.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "base/status.h"
#include "local-attest/sgx_types.h"
#include "local-attest/tee.h"

namespace sealroot::boot {

// The stub enclave (enclave-agent) this boot accepts keys from.
struct StubIdentity {
  // Default: the boot's own MRSIGNER (one vendor signs both enclaves).
  std::optional<local_attest::sgx::Measurement> mr_signer;
  std::uint16_t isv_prod_id = 0;
  std::uint16_t min_isv_svn = 0;
  std::optional<local_attest::sgx::Measurement> mr_enclave;  // pins one build of the agent
};

struct AttestedBootOptions {
  std::string socket_path;  // the agent's socket for this container
  std::string store_dir;    // the sealed store holding the container's root
  std::string spec_path;    // the boot spec (process_spec.h); its digest must match the release
  std::string scratch_dir;  // an existing directory; the boot mounts its private tmpfs there
  // The container's persistent writable layer (fusefs upper: encrypted, integrity-protected,
  // bound to this root); empty: an in-memory layer, gone when the container ends.
  std::string upper_dir;
  // Where to serve ExecProcess requests (boot/spec/exec.h) once the container runs; empty: no exec.
  std::string exec_socket;
  StubIdentity stub;
  std::chrono::milliseconds attest_timeout{10'000};
};

// Returns the entrypoint's exit code (128+N for signal N). kPermissionDenied when the stub is
// not the expected enclave, the release is for another container, or the spec was changed.
Result<int> RunAttestedBoot(local_attest::sgx::Tee& tee, const AttestedBootOptions& options);

}  // namespace sealroot::boot
