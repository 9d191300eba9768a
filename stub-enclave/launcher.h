// The sim launcher: the simulated CPU that creates enclaves (design/attestation.md
// "The launcher"). LaunchEnclave measures the executable (EnclaveImage), verifies its SIGSTRUCT
// against that measurement, and starts the measured in-memory copy (fexecve) as a child
// process bound to the identity: MRENCLAVE from the measurement; MRSIGNER, ISVPRODID, ISVSVN,
// attributes and MISCSELECT from the SIGSTRUCT; CONFIGID/CONFIGSVN from the launch spec.
//
// An enclave launched with a manifest (LaunchSpec::manifest) has it measured into MRENCLAVE and
// reads it from a sealed read-only memfd at fd 5, announced in SEALROOT_SIM_MANIFEST_FD
// (local-attest/manifest.h).
//
// The child reaches its CPU through SEALROOT_SIM_TEE_FD (fd 3, a SOCK_SEQPACKET socket); the
// parent answers EREPORT/EGETKEY on **one serving thread per launched enclave**, owned by the
// LaunchedEnclave, which ends when the child and every copy of its socket are gone, or when
// Wait() returns / the LaunchedEnclave is destroyed. The child gets stdio from the spec and no
// other inherited fds; LD_* variables are removed from its environment (they would change
// which code runs without changing the measurement).
//
// Thread-safety: LaunchEnclave may be called from several threads. A LaunchedEnclave is used
// by one thread at a time.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/fd.h"
#include "base/status.h"
#include "local-attest/sgx_types.h"
#include "local-attest/sim.h"
#include "stub-enclave/measure.h"

namespace sealroot::stub_enclave {

struct LaunchSpec {
  std::string executable;
  EnclaveConfig config;
  local_attest::sgx::Sigstruct sigstruct;
  std::vector<std::string> args;  // argv[1..]; argv[0] is the executable's path
  std::vector<std::string> env;   // "NAME=value"
  int stdin_fd = -1;              // -1: inherit the launcher's
  int stdout_fd = -1;
  int stderr_fd = -1;
  local_attest::sgx::ConfigId config_id{};  // e.g. local_attest::ContainerConfigId(...)
  std::uint16_t config_svn = 0;
  std::string manifest;  // empty: none (design/attestation.md "Measured layout")
};

// The identity the launcher would give `image` signed by `sig` (verifies the SIGSTRUCT).
Result<local_attest::sgx::EnclaveIdentity> IdentityFor(const EnclaveImage& image,
                                                       const local_attest::sgx::Sigstruct& sig,
                                                       const local_attest::sgx::ConfigId& config_id = {},
                                                       std::uint16_t config_svn = 0);

class LaunchedEnclave {
 public:
  ~LaunchedEnclave();  // SIGKILLs and reaps a child still running, stops the serving thread
  LaunchedEnclave(const LaunchedEnclave&) = delete;
  LaunchedEnclave& operator=(const LaunchedEnclave&) = delete;

  pid_t pid() const { return pid_; }
  const local_attest::sgx::EnclaveIdentity& identity() const { return identity_; }

  // Waits for the child; returns its exit code (128+N if killed by signal N).
  Result<int> Wait();
  // Like Wait() without blocking: std::nullopt while the child runs.
  Result<std::optional<int>> Poll();
  // Sends a signal to a child that has not been waited for.
  Status Kill(int sig);

  // Used by LaunchEnclave only.
  LaunchedEnclave(pid_t pid, local_attest::sgx::EnclaveIdentity identity,
                  std::unique_ptr<local_attest::sgx::SimCpuServer> cpu);

 private:
  void StopCpu();
  void Reaped(int status);
  pid_t pid_;
  bool reaped_ = false;
  int exit_code_ = -1;
  local_attest::sgx::EnclaveIdentity identity_;
  std::unique_ptr<local_attest::sgx::SimCpuServer> cpu_;
  std::thread cpu_thread_;
};

Result<std::unique_ptr<LaunchedEnclave>> LaunchEnclave(const LaunchSpec& spec);

}  // namespace sealroot::stub_enclave
