// The host side of the boot: starting one container's app enclave as a runtime would
// (design/boot.md "The host side"), for the agent's ContainerRuntime. It
//   - writes the boot spec into the container's private state directory,
//   - serves the container's key release on a unix socket there (KeyReleaseServer: the stub is
//     the responder; only an app enclave matching `app_policy` and launched with this
//     container's CONFIGID = SHA-256(container id || spec digest) gets the key),
//   - launches sealroot-boot through the sim launcher with that CONFIGID and stdio pipes,
//   - and exposes the process: its streams, its exit status, signals.
// This library runs in the stub enclave (it links stub-enclave and local-attest, never the
// boot's own code); sealroot_boot is what runs in the app enclave.
//
// Thread-safety: every AppEnclave method may be called from several threads; each stream is
// read (or written) by one caller at a time.
#pragma once

#include <sys/types.h>

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/crypto.h"
#include "base/fd.h"
#include "base/secret.h"
#include "base/status.h"
#include "base/thread_annotations.h"
#include "boot/spec/cgroup_stats.h"
#include "local-attest/policy.h"
#include "local-attest/release.h"
#include "local-attest/tee.h"
#include "stub-enclave/launcher.h"

namespace sealroot::stub_enclave {

struct AppEnclaveSpec {
  std::string container_id;
  std::string boot_spec;  // the boot spec document (process_spec.h), exactly as the boot gets it
  std::string store_dir;  // the sealed store holding the root
  Sha256Digest root_hash{};
  SecretBytes key;  // the image's store key, released only to the attested app enclave
  // The container's own keys (32 bytes each; the agent derives them, see design/attestation.md)
  // and the state its writable layer must be in (none: a fresh layer).
  SecretBytes upper_key;
  SecretBytes exec_key;
  std::optional<Sha256Digest> upper_root;
  // Records each upper commit the attested boot reports (KeyReleaseServer's on_upper_commit).
  std::function<Status(const local_attest::UpperCommit&)> on_upper_commit;
  // A directory only the agent uses (created 0700 if missing; removed with the AppEnclave):
  // the key-release and exec sockets, the spec file and the boot's scratch mount point live there.
  std::string state_dir;
  // The container's persistent writable layer (passed as --upper); empty: in memory.
  std::string upper_dir;

  // The app enclave: sealroot-boot, its enclave layout and its SIGSTRUCT.
  std::string boot_executable;
  stub_enclave::EnclaveConfig enclave_config;
  local_attest::sgx::Sigstruct sigstruct;
  std::vector<std::string> boot_args;  // extra flags, e.g. {"--stub-prod-id", "1"}
  std::string boot_manifest;           // measured with the boot (its expected stub); empty: none
  // Who may receive the key; the container's CONFIGID is added to it.
  local_attest::IdentityPolicy app_policy;
  std::chrono::milliseconds attest_timeout{10'000};
};

// A process running in an app enclave (the container's entrypoint, or an exec): its stdio
// pipes, its exit status, signals.
class EnclaveProcess {
 public:
  virtual ~EnclaveProcess() = default;
  // Blocks until the process exits: its exit code (128+N for a signal); every caller gets the
  // same value.
  virtual Result<int> Wait() = 0;
  // Delivers `sig` to the process. kNotFound once it has exited.
  virtual Status Signal(int sig) = 0;
  // Sets the size of the process's terminal (process.terminal); kFailedPrecondition without one.
  virtual Status ResizeTerminal(unsigned height, unsigned width) = 0;
  // Up to `max_len` bytes, blocking until some arrive; "" at end of stream.
  Result<std::string> ReadStdout(std::size_t max_len);
  Result<std::string> ReadStderr(std::size_t max_len);
  Result<std::size_t> WriteStdin(std::string_view data);
  Status CloseStdin();

 protected:
  // Creates the three pipes; returns the process's ends (stdin read end, stdout and stderr
  // write ends) and keeps ours.
  Result<std::array<UniqueFd, 3>> MakePipes();

 private:
  Mutex in_mu_, out_mu_, err_mu_;
  UniqueFd stdin_ SR_GUARDED_BY(in_mu_);
  UniqueFd stdout_ SR_GUARDED_BY(out_mu_);
  UniqueFd stderr_ SR_GUARDED_BY(err_mu_);
};

class AppEnclave : public EnclaveProcess {
 public:
  // Starts the release server and the app enclave; `stub_tee` (the agent's own TEE) must
  // outlive the AppEnclave.
  static Result<std::unique_ptr<AppEnclave>> Launch(local_attest::sgx::Tee& stub_tee, AppEnclaveSpec spec);
  // Kills a boot still running, stops the release server, removes the state directory.
  ~AppEnclave();
  AppEnclave(const AppEnclave&) = delete;
  AppEnclave& operator=(const AppEnclave&) = delete;

  pid_t pid() const { return pid_; }
  // The boot's exit: the entrypoint's exit code (128+N for a signal).
  Result<int> Wait() override;
  // Delivers `sig` to the boot, which forwards it to the entrypoint (SIGKILL ends the whole
  // container).
  Status Signal(int sig) override;
  // Over the boot's authenticated exec socket, once the container runs.
  Status ResizeTerminal(unsigned height, unsigned width) override;
  // The container's cgroup, through the boot (which created it and alone knows its path) over
  // the authenticated exec socket: its statistics, and `runc update` of its memory, cpu, pids
  // and blockIO (`resources` in OCI linux.resources form).
  Result<boot::CgroupStats> CgroupStats();
  Status UpdateResources(const nlohmann::json& resources);
  // ExecProcess: runs the process of `boot_spec` (a boot spec document whose process.args is
  // not empty) inside the running container — its root and namespaces, in the app enclave —
  // over the boot's authenticated exec socket. Waits up to `timeout` for the container to run.
  Result<std::unique_ptr<EnclaveProcess>> Exec(std::string_view boot_spec,
                                               std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // OK once the boot attested and acknowledged its key; before that kUnavailable; the failed
  // check (e.g. "MRENCLAVE mismatch") when the release was refused.
  Status release_status() const;

 private:
  AppEnclave() = default;
  // kFailedPrecondition once the boot has exited (its exec socket is gone).
  Status CheckRunning(std::string_view what) const;

  std::string state_dir_;
  std::unique_ptr<local_attest::KeyReleaseServer> release_server_;
  std::unique_ptr<stub_enclave::LaunchedEnclave> enclave_;
  pid_t pid_ = -1;
  UniqueFd pidfd_;  // signals go through it: never to a reused pid after the boot was reaped

  Mutex wait_mu_;
  std::optional<Result<int>> exit_ SR_GUARDED_BY(wait_mu_);
  std::string container_id_;
  SecretBytes exec_key_;
  // Shared with the release server's session thread (its on_session callback).
  struct ReleaseState {
    mutable Mutex mu;
    Status status SR_GUARDED_BY(mu) = Unavailable("the app enclave has not fetched its key yet");
  };
  std::shared_ptr<ReleaseState> release_ = std::make_shared<ReleaseState>();
};

}  // namespace sealroot::stub_enclave
