// BootRuntime: the ContainerRuntime that runs each container in its own app enclave —
// sealroot-boot launched through the sim launcher (stub-enclave/app_enclave.h), attested locally before
// it gets the container's root key. Used by the agent when its config names a boot and it runs
// in an enclave (it needs its own TEE to serve the key release).
//
// Thread-safety: as ContainerRuntime.
#pragma once

#include <memory>

#include "agent/server/config.h"
#include "agent/server/runtime.h"
#include "base/status.h"
#include "local-attest/tee.h"

namespace sealroot::agent {

// Reads config.boot's SIGSTRUCT and takes the agent's own identity from a report of `tee`
// (which the boot then pins as the only agent it accepts keys from).
Result<std::unique_ptr<ContainerRuntime>> MakeBootRuntime(const AgentConfig& config,
                                                          std::unique_ptr<local_attest::sgx::Tee> tee);

}  // namespace sealroot::agent
