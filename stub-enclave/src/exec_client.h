// The agent's side of ExecProcess (boot/spec/exec.h), used by AppEnclave::Exec.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "base/secret.h"
#include "base/status.h"
#include "stub-enclave/app_enclave.h"

namespace sealroot::stub_enclave {

// Connects to the boot's exec socket (retrying until `deadline` while it does not exist yet),
// authenticates `boot_spec`, hands over fresh stdio pipes and returns the running process.
Result<std::unique_ptr<EnclaveProcess>> StartExec(const std::string& socket_path, const SecretBytes& exec_key,
                                                  std::string_view boot_spec,
                                                  std::chrono::steady_clock::time_point deadline);

// A control request (boot/spec/exec.h) over the same socket: "" or, `with_document`, the
// document the boot sends after "ok"; the boot's "error: ..." as kFailedPrecondition.
Result<std::string> SendControlRequest(const std::string& socket_path, const SecretBytes& exec_key,
                                       std::string_view request, bool with_document,
                                       std::chrono::steady_clock::time_point deadline);

// Sets the size of the entrypoint's terminal over the same socket.
Status ResizeEntrypointTerminal(const std::string& socket_path, const SecretBytes& exec_key, unsigned height,
                                unsigned width, std::chrono::steady_clock::time_point deadline);

}  // namespace sealroot::stub_enclave
