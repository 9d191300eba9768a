#include "stub-enclave/launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "local-attest/manifest.h"
#include "stub-enclave/sigstruct.h"

namespace sealroot::stub_enclave {
namespace {

constexpr int kTeeFd = 3;
constexpr int kManifestFd = 5;  // fd 4 is the executable during fexecve

// Child side of the fork: async-signal-safe calls only. Never returns.
[[noreturn]] void ExecChild(int exec_fd, int tee_fd, int manifest_fd, const int stdio[3], char* const argv[],
                            char* const envp[]) {
  // Move everything above the fds we assign, so dup2 cannot clobber a source.
  int moved_exec = ::fcntl(exec_fd, F_DUPFD_CLOEXEC, 10);
  int moved_tee = ::fcntl(tee_fd, F_DUPFD, 10);
  int moved_manifest = manifest_fd >= 0 ? ::fcntl(manifest_fd, F_DUPFD, 10) : -1;
  if (manifest_fd >= 0 && moved_manifest < 0) ::_exit(126);
  int moved_stdio[3];
  for (int i = 0; i < 3; ++i) moved_stdio[i] = stdio[i] >= 0 ? ::fcntl(stdio[i], F_DUPFD, 10) : -1;
  if (moved_exec < 0 || moved_tee < 0) ::_exit(126);
  for (int i = 0; i < 3; ++i) {
    // -1: keep the launcher's own fd i, even if it is closed (a daemon's stdin may be).
    if (stdio[i] >= 0 && (moved_stdio[i] < 0 || ::dup2(moved_stdio[i], i) < 0)) ::_exit(126);
  }
  if (::dup2(moved_tee, kTeeFd) < 0 || ::dup2(moved_exec, kTeeFd + 1) < 0) ::_exit(126);
  ::fcntl(kTeeFd + 1, F_SETFD, FD_CLOEXEC);  // fexecve opens it before close-on-exec applies
  if (moved_manifest >= 0 && ::dup2(moved_manifest, kManifestFd) < 0) ::_exit(126);
  ::close_range(moved_manifest >= 0 ? kManifestFd + 1 : kTeeFd + 2, ~0u, 0);
  ::fexecve(kTeeFd + 1, argv, envp);
  ::_exit(127);
}

std::vector<std::string> ChildEnv(const std::vector<std::string>& env, bool has_manifest) {
  std::vector<std::string> out;
  for (const std::string& e : env) {
    if (e.rfind("LD_", 0) == 0 || e.rfind(std::string(local_attest::sgx::kSimTeeFdEnv) + "=", 0) == 0 ||
        e.rfind(std::string(local_attest::sgx::kSimManifestFdEnv) + "=", 0) == 0) {
      continue;
    }
    out.push_back(e);
  }
  out.push_back(std::string(local_attest::sgx::kSimTeeFdEnv) + "=" + std::to_string(kTeeFd));
  if (has_manifest)
    out.push_back(std::string(local_attest::sgx::kSimManifestFdEnv) + "=" + std::to_string(kManifestFd));
  return out;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

Result<local_attest::sgx::EnclaveIdentity> IdentityFor(const EnclaveImage& image,
                                                       const local_attest::sgx::Sigstruct& sig,
                                                       const local_attest::sgx::ConfigId& config_id,
                                                       std::uint16_t config_svn) {
  SR_ASSIGN_OR_RETURN(local_attest::sgx::Measurement mr_signer,
                      VerifySigstruct(sig, image.measurement().mr_enclave));
  local_attest::sgx::EnclaveIdentity id;
  id.mr_enclave = image.measurement().mr_enclave;
  id.mr_signer = mr_signer;
  id.attributes = sig.attributes;
  id.misc_select = sig.misc_select;
  id.isv_prod_id = sig.isv_prod_id;
  id.isv_svn = sig.isv_svn;
  id.config_id = config_id;
  id.config_svn = config_svn;
  id.isv_family_id = sig.isv_family_id;
  id.isv_ext_prod_id = sig.isv_ext_prod_id;
  return id;
}

LaunchedEnclave::LaunchedEnclave(pid_t pid, local_attest::sgx::EnclaveIdentity identity,
                                 std::unique_ptr<local_attest::sgx::SimCpuServer> cpu)
    : pid_(pid), identity_(identity), cpu_(std::move(cpu)) {
  cpu_thread_ = std::thread([server = cpu_.get()] {
    if (Status s = server->Serve(); !s.ok()) {
      SR_LOG(kWarning) << "sim CPU: " << s.message();
    }
  });
}

LaunchedEnclave::~LaunchedEnclave() {
  if (!reaped_) {
    ::kill(pid_, SIGKILL);
    (void)Wait();
  }
  StopCpu();
}

void LaunchedEnclave::StopCpu() {
  if (cpu_thread_.joinable()) {
    cpu_->Shutdown();
    cpu_thread_.join();
  }
}

Result<int> LaunchedEnclave::Wait() {
  if (reaped_) return exit_code_;
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoStatus("waiting for enclave process " + std::to_string(pid_), errno);
  }
  Reaped(status);
  return exit_code_;
}

Result<std::optional<int>> LaunchedEnclave::Poll() {
  if (reaped_) return std::optional<int>(exit_code_);
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r < 0 && errno != EINTR)
    return ErrnoStatus("waiting for enclave process " + std::to_string(pid_), errno);
  if (r <= 0) return std::optional<int>();
  Reaped(status);
  return std::optional<int>(exit_code_);
}

void LaunchedEnclave::Reaped(int status) {
  reaped_ = true;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  StopCpu();  // descendants that kept the socket lose their CPU with the enclave
}

Status LaunchedEnclave::Kill(int sig) {
  if (reaped_) return FailedPrecondition("enclave process already exited");
  if (::kill(pid_, sig) != 0) return ErrnoStatus("kill " + std::to_string(pid_), errno);
  return OkStatus();
}

Result<std::unique_ptr<LaunchedEnclave>> LaunchEnclave(const LaunchSpec& spec) {
  const std::string what = "launching enclave " + spec.executable;
  Result<EnclaveImage> image = EnclaveImage::Load(spec.executable, spec.config, spec.manifest);
  if (!image.ok()) return std::move(image).status().WithContext(what);
  Result<local_attest::sgx::EnclaveIdentity> identity =
      IdentityFor(*image, spec.sigstruct, spec.config_id, spec.config_svn);
  if (!identity.ok()) return std::move(identity).status().WithContext(what);
  Result<local_attest::sgx::SimCpu> cpu = local_attest::sgx::SimCpu::Create(*identity);
  if (!cpu.ok()) return std::move(cpu).status().WithContext(what);

  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
    return ErrnoStatus(what + ": socketpair", errno);
  UniqueFd ours(pair[0]), theirs(pair[1]);

  std::vector<std::string> argv_strings = {spec.executable};
  argv_strings.insert(argv_strings.end(), spec.args.begin(), spec.args.end());
  std::vector<std::string> env_strings = ChildEnv(spec.env, image->manifest_fd() >= 0);
  std::vector<char*> argv = CStrings(argv_strings), envp = CStrings(env_strings);
  const int stdio[3] = {spec.stdin_fd, spec.stdout_fd, spec.stderr_fd};

  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus(what + ": fork", errno);
  if (pid == 0)
    ExecChild(image->exec_fd(), theirs.get(), image->manifest_fd(), stdio, argv.data(), envp.data());
  theirs.Reset();
  SR_LOG(kDebug) << "launched sim enclave " << spec.executable << " pid " << pid;
  return std::make_unique<LaunchedEnclave>(
      pid, cpu->identity(),
      std::make_unique<local_attest::sgx::SimCpuServer>(std::move(cpu).value(), std::move(ours)));
}

}  // namespace sealroot::stub_enclave
