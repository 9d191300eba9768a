#include "boot/app_enclave.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "base/file.h"
#include "base/log.h"
#include "boot/process_spec.h"

namespace sealroot::boot {
namespace {

constexpr std::size_t kMaxRead = 1u << 20;

struct Pipe {
  UniqueFd read, write;
};

Result<Pipe> MakePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("creating a stdio pipe", errno);
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// A write to a pipe whose reader is gone raises SIGPIPE, which would end the agent: block it in
// this thread for the write and consume the one the write may have raised.
Status WriteWithoutSigpipe(int fd, std::string_view data) {
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  Status written = WriteAll(fd, AsBytes(data));
  if (!written.ok()) {
    timespec zero{};
    while (::sigtimedwait(&pipe_set, nullptr, &zero) == SIGPIPE) {
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return written;
}

}  // namespace

Result<std::unique_ptr<AppEnclave>> AppEnclave::Launch(sgx::Tee& stub_tee, AppEnclaveSpec spec) {
  const std::string ctx = "starting the app enclave of container " + spec.container_id;
  auto out = std::unique_ptr<AppEnclave>(new AppEnclave());
  if (::mkdir(spec.state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(ctx + ": creating " + spec.state_dir, errno);
  }
  out->state_dir_ = spec.state_dir;  // removed by the destructor from here on
  const std::string spec_path = JoinPath(spec.state_dir, "spec.json");
  const std::string socket_path = JoinPath(spec.state_dir, "attest.sock");
  const std::string scratch = JoinPath(spec.state_dir, "scratch");
  SR_RETURN_IF_ERROR_CTX(WriteFileAtomic(spec_path, spec.boot_spec, 0600), ctx);
  if (::mkdir(scratch.c_str(), 0700) != 0 && errno != EEXIST)
    return ErrnoStatus(ctx + ": creating " + scratch, errno);

  const Sha256Digest spec_digest = BootSpecDigest(spec.boot_spec);
  attest::KeyRelease release;
  release.container_id = spec.container_id;
  release.spec_digest = spec_digest;
  release.roots.push_back({.name = "rootfs", .root_hash = spec.root_hash, .key = std::move(spec.key)});
  attest::ReleaseServerOptions options;
  options.io_timeout = spec.attest_timeout;
  options.on_session = [state = out->release_](const Status& session) {
    MutexLock lock(state->mu);
    if (!state->status.ok()) state->status = session;  // the key went out once: that stays true
  };
  auto server =
      attest::KeyReleaseServer::Start(stub_tee, socket_path, spec.app_policy, std::move(release), options);
  if (!server.ok()) return std::move(server).status().WithContext(ctx);
  out->release_server_ = std::move(*server);

  SR_ASSIGN_OR_RETURN(Pipe in, MakePipe());
  SR_ASSIGN_OR_RETURN(Pipe stdout_pipe, MakePipe());
  SR_ASSIGN_OR_RETURN(Pipe stderr_pipe, MakePipe());
  enclave::LaunchSpec launch;
  launch.executable = spec.boot_executable;
  launch.config = spec.enclave_config;
  launch.sigstruct = spec.sigstruct;
  launch.args = {"--attest-socket", socket_path, "--store",   spec.store_dir,
                 "--spec",          spec_path,   "--scratch", scratch};
  if (!spec.upper_dir.empty()) launch.args.insert(launch.args.end(), {"--upper", spec.upper_dir});
  launch.args.insert(launch.args.end(), spec.boot_args.begin(), spec.boot_args.end());
  launch.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
  launch.stdin_fd = in.read.get();
  launch.stdout_fd = stdout_pipe.write.get();
  launch.stderr_fd = stderr_pipe.write.get();
  launch.config_id = attest::ContainerConfigId(spec.container_id, spec_digest);
  auto launched = enclave::LaunchEnclave(launch);
  if (!launched.ok()) return std::move(launched).status().WithContext(ctx);
  out->enclave_ = std::move(*launched);
  out->pid_ = out->enclave_->pid();
  out->pidfd_.Reset(static_cast<int>(::syscall(SYS_pidfd_open, out->pid_, 0)));
  if (!out->pidfd_) return ErrnoStatus(ctx + ": pidfd_open", errno);
  {
    MutexLock a(out->in_mu_), b(out->out_mu_), c(out->err_mu_);
    out->stdin_ = std::move(in.write);
    out->stdout_ = std::move(stdout_pipe.read);
    out->stderr_ = std::move(stderr_pipe.read);
  }
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

Result<std::string> AppEnclave::ReadStream(int fd, std::size_t max_len) {
  if (fd < 0) return FailedPrecondition("stream already closed");
  std::string buffer(std::min(max_len == 0 ? kMaxRead : max_len, kMaxRead), '\0');
  while (true) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("reading the container's output", errno);
    buffer.resize(static_cast<std::size_t>(n));
    return buffer;
  }
}

Result<std::string> AppEnclave::ReadStdout(std::size_t max_len) {
  MutexLock lock(out_mu_);
  return ReadStream(stdout_.get(), max_len);
}

Result<std::string> AppEnclave::ReadStderr(std::size_t max_len) {
  MutexLock lock(err_mu_);
  return ReadStream(stderr_.get(), max_len);
}

Result<std::size_t> AppEnclave::WriteStdin(std::string_view data) {
  MutexLock lock(in_mu_);
  if (!stdin_) return FailedPrecondition("the container's stdin is closed");
  SR_RETURN_IF_ERROR_CTX(WriteWithoutSigpipe(stdin_.get(), data), "writing the container's stdin");
  return data.size();
}

Status AppEnclave::CloseStdin() {
  MutexLock lock(in_mu_);
  stdin_.Reset();
  return OkStatus();
}

Status AppEnclave::release_status() const {
  MutexLock lock(release_->mu);
  return release_->status;
}

}  // namespace sealroot::boot
