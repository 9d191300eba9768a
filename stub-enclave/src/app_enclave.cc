#include "stub-enclave/app_enclave.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "base/file.h"
#include "base/log.h"
#include "boot/spec/exec.h"
#include "boot/spec/process_spec.h"
#include "stub-enclave/src/exec_client.h"

namespace sealroot::stub_enclave {
namespace {

// The files of a container's state directory the boot reaches (design/boot.md).
constexpr char kSpecFile[] = "spec.json";
constexpr char kAttestSocket[] = "attest.sock";
constexpr char kExecSocket[] = "exec.sock";
constexpr char kScratch[] = "scratch";

}  // namespace

Result<std::unique_ptr<AppEnclave>> AppEnclave::Launch(local_attest::sgx::Tee& stub_tee,
                                                       AppEnclaveSpec spec) {
  const std::string ctx = "starting the app enclave of container " + spec.container_id;
  auto out = std::unique_ptr<AppEnclave>(new AppEnclave());
  if (::mkdir(spec.state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(ctx + ": creating " + spec.state_dir, errno);
  }
  out->state_dir_ = spec.state_dir;  // removed by the destructor from here on
  const std::string spec_path = JoinPath(spec.state_dir, kSpecFile);
  const std::string socket_path = JoinPath(spec.state_dir, kAttestSocket);
  const std::string scratch = JoinPath(spec.state_dir, kScratch);
  SR_RETURN_IF_ERROR_CTX(WriteFileAtomic(spec_path, spec.boot_spec, 0600), ctx);
  if (::mkdir(scratch.c_str(), 0700) != 0 && errno != EEXIST)
    return ErrnoStatus(ctx + ": creating " + scratch, errno);

  const Sha256Digest spec_digest = boot::BootSpecDigest(spec.boot_spec);
  out->container_id_ = spec.container_id;
  out->exec_key_ = spec.exec_key.Clone();
  local_attest::KeyRelease release;
  release.container_id = spec.container_id;
  release.spec_digest = spec_digest;
  release.roots.push_back({.name = "rootfs", .root_hash = spec.root_hash, .key = std::move(spec.key)});
  release.upper_key = std::move(spec.upper_key);
  release.exec_key = std::move(spec.exec_key);
  release.upper_root = spec.upper_root;
  local_attest::ReleaseServerOptions options;
  options.io_timeout = spec.attest_timeout;
  options.on_upper_commit = std::move(spec.on_upper_commit);
  options.on_session = [state = out->release_](const Status& session) {
    MutexLock lock(state->mu);
    if (!state->status.ok()) state->status = session;  // the key went out once: that stays true
  };
  auto server = local_attest::KeyReleaseServer::Start(stub_tee, socket_path, spec.app_policy,
                                                      std::move(release), options);
  if (!server.ok()) return std::move(server).status().WithContext(ctx);
  out->release_server_ = std::move(*server);

  using Stdio = std::array<UniqueFd, 3>;
  SR_ASSIGN_OR_RETURN(Stdio stdio, out->MakePipes());
  stub_enclave::LaunchSpec launch;
  launch.executable = spec.boot_executable;
  launch.config = spec.enclave_config;
  launch.sigstruct = spec.sigstruct;
  launch.manifest = spec.boot_manifest;
  launch.args = {
      "--attest-socket", socket_path, "--store", spec.store_dir,  "--spec",
      spec_path,         "--scratch", scratch,   "--exec-socket", JoinPath(spec.state_dir, kExecSocket)};
  if (!spec.upper_dir.empty()) launch.args.insert(launch.args.end(), {"--upper", spec.upper_dir});
  launch.args.insert(launch.args.end(), spec.boot_args.begin(), spec.boot_args.end());
  launch.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
  launch.stdin_fd = stdio[0].get();
  launch.stdout_fd = stdio[1].get();
  launch.stderr_fd = stdio[2].get();
  launch.config_id = local_attest::ContainerConfigId(spec.container_id, spec_digest);
  auto launched = stub_enclave::LaunchEnclave(launch);
  if (!launched.ok()) return std::move(launched).status().WithContext(ctx);
  out->enclave_ = std::move(*launched);
  out->pid_ = out->enclave_->pid();
  out->pidfd_.Reset(static_cast<int>(::syscall(SYS_pidfd_open, out->pid_, 0)));
  if (!out->pidfd_) return ErrnoStatus(ctx + ": pidfd_open", errno);
  return out;
}

AppEnclave::~AppEnclave() {
  if (enclave_) {
    bool waited;
    {
      MutexLock lock(wait_mu_);
      waited = exit_.has_value();
    }
    if (!waited) {
      (void)Signal(SIGKILL);
      (void)Wait();
    }
  }
  if (release_server_) release_server_->Stop();
  if (!state_dir_.empty()) {
    if (Status removed = RemoveTree(state_dir_); !removed.ok()) {
      SR_LOG(kWarning) << removed.message();
    }
  }
}

Result<int> AppEnclave::Wait() {
  MutexLock lock(wait_mu_);
  if (!exit_) {
    exit_ = enclave_->Wait();
    // No one may fetch this container's key once its boot is gone.
    release_server_->Stop();
  }
  return *exit_;
}

Status AppEnclave::Signal(int sig) {
  if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) != 0) {
    if (errno == ESRCH) return NotFound("the container's process has exited");
    return ErrnoStatus("signalling the app enclave", errno);
  }
  return OkStatus();
}

Status AppEnclave::ResizeTerminal(unsigned height, unsigned width) {
  return ResizeEntrypointTerminal(JoinPath(state_dir_, kExecSocket), exec_key_, height, width,
                                  std::chrono::steady_clock::now() + std::chrono::seconds(10))
      .WithContext("resizing the terminal of container " + container_id_);
}

Status AppEnclave::CheckRunning(std::string_view what) const {
  pollfd exited{pidfd_.get(), POLLIN, 0};
  if (::poll(&exited, 1, 0) == 1) {
    return FailedPrecondition(std::string(what) + " of container " + container_id_ +
                              ": the container has exited");
  }
  return OkStatus();
}

Result<boot::CgroupStats> AppEnclave::CgroupStats() {
  const std::string ctx = "the cgroup stats of container " + container_id_;
  SR_RETURN_IF_ERROR(CheckRunning("the cgroup stats"));
  Result<std::string> document =
      SendControlRequest(JoinPath(state_dir_, kExecSocket), exec_key_, R"({"cgroupStats":{}})",
                         /*with_document=*/true, std::chrono::steady_clock::now() + std::chrono::seconds(10));
  if (!document.ok()) return std::move(document).status().WithContext(ctx);
  const nlohmann::json doc = nlohmann::json::parse(*document, nullptr, /*allow_exceptions=*/false);
  Result<boot::CgroupStats> stats = boot::DecodeCgroupStats(doc);
  if (!stats.ok()) return std::move(stats).status().WithContext(ctx);
  return stats;
}

Status AppEnclave::UpdateResources(const nlohmann::json& resources) {
  SR_RETURN_IF_ERROR(CheckRunning("updating the cgroup"));
  const std::string request = nlohmann::json{{"resources", resources}}.dump();
  return SendControlRequest(JoinPath(state_dir_, kExecSocket), exec_key_, request, /*with_document=*/false,
                            std::chrono::steady_clock::now() + std::chrono::seconds(10))
      .status()
      .WithContext("updating the cgroup of container " + container_id_);
}

Result<std::unique_ptr<EnclaveProcess>> AppEnclave::Exec(std::string_view boot_spec,
                                                         std::chrono::milliseconds timeout) {
  pollfd exited{pidfd_.get(), POLLIN, 0};
  if (::poll(&exited, 1, 0) == 1) {
    return FailedPrecondition("ExecProcess in container " + container_id_ + ": the container has exited");
  }
  auto started = StartExec(JoinPath(state_dir_, kExecSocket), exec_key_, boot_spec,
                           std::chrono::steady_clock::now() + timeout);
  if (!started.ok())
    return std::move(started).status().WithContext("ExecProcess in container " + container_id_);
  return started;
}

Status AppEnclave::release_status() const {
  MutexLock lock(release_->mu);
  return release_->status;
}

}  // namespace sealroot::stub_enclave
