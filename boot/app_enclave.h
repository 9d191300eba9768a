// The host side of the boot: starting one container's app enclave as a runtime would
// (CONTRACTS.md "Process model"), for the agent's ContainerRuntime. It
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

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/crypto.h"
#include "base/fd.h"
#include "base/secret.h"
#include "base/status.h"
#include "base/thread_annotations.h"
#include "local-attest/policy.h"
#include "local-attest/release.h"
#include "local-attest/tee.h"
#include "stub-enclave/launcher.h"

namespace sealroot::boot {

struct AppEnclaveSpec {
  std::string container_id;
  std::string boot_spec;  // the boot spec document (process_spec.h), exactly as the boot gets it
  std::string store_dir;  // the sealed store holding the root
  Sha256Digest root_hash{};
  SecretBytes key;  // the store key, released only to the attested app enclave
  // A directory only the agent uses (created 0700 if missing; removed with the AppEnclave):
  // the key-release socket, the spec file and the boot's scratch mount point live there.
  std::string state_dir;
  // The container's persistent writable layer (passed as --upper); empty: in memory.
  std::string upper_dir;

  // The app enclave: sealroot-boot, its enclave layout and its SIGSTRUCT.
  std::string boot_executable;
  enclave::EnclaveConfig enclave_config;
  sgx::Sigstruct sigstruct;
  std::vector<std::string> boot_args;  // extra flags, e.g. {"--stub-prod-id", "1"}
  // Who may receive the key; the container's CONFIGID is added to it.
  attest::IdentityPolicy app_policy;
  std::chrono::milliseconds attest_timeout{10'000};
};

class AppEnclave {
 public:
  // Starts the release server and the app enclave; `stub_tee` (the agent's own TEE) must
  // outlive the AppEnclave.
  static Result<std::unique_ptr<AppEnclave>> Launch(sgx::Tee& stub_tee, AppEnclaveSpec spec);
  // Kills a boot still running, stops the release server, removes the state directory.
  ~AppEnclave();
  AppEnclave(const AppEnclave&) = delete;
  AppEnclave& operator=(const AppEnclave&) = delete;

  pid_t pid() const { return pid_; }
  // Blocks until the boot exits: the entrypoint's exit code (128+N for a signal); every caller
  // gets the same value.
  Result<int> Wait();
  // Delivers `sig` to the boot, which forwards it to the entrypoint (SIGKILL ends the whole
  // container). kNotFound once the boot has exited.
  Status Signal(int sig);
  // Up to `max_len` bytes, blocking until some arrive; "" at end of stream.
  Result<std::string> ReadStdout(std::size_t max_len);
  Result<std::string> ReadStderr(std::size_t max_len);
  Result<std::size_t> WriteStdin(std::string_view data);
  Status CloseStdin();
  // OK once the boot attested and acknowledged its key; before that kUnavailable; the failed
  // check (e.g. "MRENCLAVE mismatch") when the release was refused.
  Status release_status() const;

 private:
  AppEnclave() = default;
  static Result<std::string> ReadStream(int fd, std::size_t max_len);

  std::string state_dir_;
  std::unique_ptr<attest::KeyReleaseServer> release_server_;
  std::unique_ptr<enclave::LaunchedEnclave> enclave_;
  pid_t pid_ = -1;
  UniqueFd pidfd_;  // signals go through it: never to a reused pid after the boot was reaped

  Mutex wait_mu_;
  std::optional<Result<int>> exit_ SR_GUARDED_BY(wait_mu_);
  Mutex in_mu_, out_mu_, err_mu_;
  UniqueFd stdin_ SR_GUARDED_BY(in_mu_);
  UniqueFd stdout_ SR_GUARDED_BY(out_mu_);
  UniqueFd stderr_ SR_GUARDED_BY(err_mu_);
  // Shared with the release server's session thread (its on_session callback).
  struct ReleaseState {
    mutable Mutex mu;
    Status status SR_GUARDED_BY(mu) = Unavailable("the app enclave has not fetched its key yet");
  };
  std::shared_ptr<ReleaseState> release_ = std::make_shared<ReleaseState>();
};

}  // namespace sealroot::boot
