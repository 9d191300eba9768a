// ContainerRuntime: the seam between container records and the processes that run them.
// BootRuntime (src/boot_runtime.h) implements it: it launches `sealroot-boot` through the sim
// launcher, serves the attested key release and relays the app enclave's stdio and status. An
// agent with no "boot" configured, or not running in an enclave, uses UnavailableRuntime.
//
// Thread-safety: a ContainerRuntime and each Process may be called from several threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agent/server/config.h"
#include "base/crypto.h"
#include "base/secret.h"
#include "base/status.h"
#include "boot/spec/cgroup_stats.h"
#include "fusefs/types.h"
#include "local-attest/release.h"

namespace sealroot::agent {

// What StartContainer hands the runtime: everything the app enclave's boot needs.
struct ContainerLaunch {
  std::string container_id;
  std::string store_dir;  // the image's sealed store
  fusefs::RootHash root_hash{};
  const SecretBytes* key = nullptr;  // released only to an attested app enclave
  std::string upper_dir;             // the container's writable layer
  std::string spec;                  // the OCI spec (serialized grpc.Spec) from CreateContainer
  std::vector<EnclaveIdentity> allowed_enclaves;
  // This container's own keys (never another container's; src/container_keys.h) and the state
  // of its writable layer the boot must find (none: a fresh layer).
  const SecretBytes* upper_key = nullptr;
  const SecretBytes* exec_key = nullptr;
  std::optional<Sha256Digest> upper_root;
  // Records each upper commit the attested boot reports.
  std::function<Status(const local_attest::UpperCommit&)> on_upper_commit;
  bool pin_to_image = false;  // the workload policy allows nothing beyond the image's process
};

// A running process (a container's init or an exec). Stream reads block until data or EOF.
class Process {
 public:
  virtual ~Process() = default;
  virtual Result<std::int32_t> Wait() = 0;  // exit status, blocks until exit
  virtual Status Signal(int signal) = 0;
  virtual Result<std::string> ReadStdout(std::size_t max_len) = 0;  // "" = EOF
  virtual Result<std::string> ReadStderr(std::size_t max_len) = 0;
  virtual Result<std::size_t> WriteStdin(std::string_view data) = 0;
  virtual Status CloseStdin() = 0;
  // Sets the size of its terminal (process.terminal); kFailedPrecondition when it has none.
  virtual Status ResizeTerminal(unsigned rows, unsigned columns) = 0;
  // The exit status if the process is known to have exited, without blocking; nullopt otherwise
  // (also when the implementation cannot tell without waiting).
  virtual std::optional<std::int32_t> ExitStatus() { return std::nullopt; }
};

class ContainerRuntime {
 public:
  virtual ~ContainerRuntime() = default;
  virtual Result<std::unique_ptr<Process>> Start(const ContainerLaunch& launch) = 0;
  // Runs an extra command in a started container (only when the config allows exec).
  virtual Result<std::unique_ptr<Process>> Exec(const std::string& container_id,
                                                const std::string& process_spec) = 0;
  // A started container's cgroup: its statistics, and `runc update` with `resources` (OCI
  // linux.resources JSON). kFailedPrecondition when the container's app enclave is not running.
  // The defaults: kFailedPrecondition (a runtime without cgroups).
  virtual Result<boot::CgroupStats> Stats(const std::string& container_id);
  virtual Status Update(const std::string& container_id, const nlohmann::json& resources);
};

// Answers every Start/Exec with kFailedPrecondition "boot not available" (no boot configured, or
// no TEE to attest with).
std::unique_ptr<ContainerRuntime> MakeUnavailableRuntime();

}  // namespace sealroot::agent
