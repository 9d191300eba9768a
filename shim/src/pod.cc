#include "shim/pod.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "base/crypto.h"
#include "base/encoding.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mounts.h"

namespace sealroot::shim {
namespace {

using namespace std::chrono_literals;

std::string Tail(const std::string& path, std::size_t bytes = 2000) {
  Result<std::string> text = ReadFile(path, 16u << 20);
  if (!text.ok()) return "";
  return text->size() > bytes ? text->substr(text->size() - bytes) : *text;
}

// Exit code of a reaped child as a shell reports it.
int ExitCode(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The argv of `sealroot enclave run` for the pod's agent.
std::vector<std::string> LauncherArgv(const ShimConfig& config, const PodPaths& paths) {
  std::vector<std::string> argv = {config.launcher,
                                   "enclave",
                                   "run",
                                   config.agent.executable,
                                   "--sigstruct",
                                   config.agent.sigstruct,
                                   "--heap-size",
                                   std::to_string(config.agent.heap_size),
                                   "--threads",
                                   std::to_string(config.agent.threads),
                                   "--manifest",
                                   config.manifest,
                                   "--"};
  // Only addresses and directories come from argv: the manifest is the whole configuration.
  argv.insert(argv.end(), {"--ttrpc", "unix://" + paths.agent_socket, "--state-dir",
                           JoinPath(paths.dir, "state"), "--store", JoinPath(paths.dir, "store")});
  return argv;
}

// Mount points at or below `dir`, deepest first.
std::vector<std::string> MountsUnder(const std::string& dir) {
  std::vector<std::string> out;
  auto mounts = ReadMountInfo();
  if (!mounts.ok()) return out;
  for (const MountInfo& m : *mounts) {
    if (m.mount_point == dir || m.mount_point.starts_with(dir + "/")) out.push_back(m.mount_point);
  }
  std::sort(out.begin(), out.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return out;
}

}  // namespace

PodPaths PodPathsFor(const ShimConfig& config, std::string_view ns, std::string_view pod_id) {
  const std::string key = HexEncode(Sha256Of(std::string(ns) + "/" + std::string(pod_id))).substr(0, 24);
  PodPaths paths;
  paths.dir = JoinPath(config.state_root, key);
  paths.agent_socket = JoinPath(config.socket_root, key + ".agent");
  paths.launcher_pid_file = JoinPath(paths.dir, "launcher.pid");
  return paths;
}

Pod::Pod(PodPaths paths, pid_t launcher_pid)
    : paths_(std::move(paths)),
      launcher_pid_(launcher_pid),
      agent_(rpc::ListenAddress{.kind = rpc::ListenAddress::Kind::kUnix, .path = paths_.agent_socket}) {}

Pod::~Pod() {
  (void)Stop();
}

Result<std::unique_ptr<Pod>> Pod::Launch(const ShimConfig& config, const std::string& ns,
                                         const std::string& pod_id) {
  PodPaths paths = PodPathsFor(config, ns, pod_id);
  SR_RETURN_IF_ERROR(MakeDirs(paths.dir, 0700));
  SR_RETURN_IF_ERROR(MakeDirs(config.socket_root, 0700));
  const std::string log_path = JoinPath(paths.dir, "agent.log");
  UniqueFd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!log) return ErrnoStatus("opening " + log_path, errno);
  UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null) return ErrnoStatus("opening /dev/null", errno);

  // Everything the child needs is prepared before fork: it may only make async-signal-safe calls.
  std::vector<std::string> args = LauncherArgv(config, paths);
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return ErrnoStatus("fork", errno);
  if (pid == 0) {
    // The launcher forwards SIGTERM to the agent, which stops cleanly; its own process group
    // lets a cleanup after a dead shim kill the launcher, the agent and its app enclaves at once.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    setpgid(0, 0);
    dup2(null.get(), 0);
    dup2(log.get(), 1);
    dup2(log.get(), 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  std::unique_ptr<Pod> pod(new Pod(paths, pid));
  SR_RETURN_IF_ERROR(WriteFileAtomic(paths.launcher_pid_file, std::to_string(pid), 0600));
  SR_LOG(kInfo) << "pod " << pod_id << ": stub enclave launcher pid " << pid << ", agent "
                << paths.agent_socket;
  const auto deadline = std::chrono::steady_clock::now() + config.agent_start_timeout;
  while (true) {
    if (pod->agent_.Health().ok()) return pod;
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      pod->stopped_ = true;
      (void)CleanupPod(paths);
      return FailedPrecondition("the pod's enclave-agent exited with " + std::to_string(ExitCode(status)) +
                                " before serving: " + Tail(log_path));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      std::string tail = Tail(log_path);
      (void)pod->Stop();
      return DeadlineExceeded("the pod's enclave-agent did not answer within " +
                              std::to_string(config.agent_start_timeout.count()) + " ms: " + tail);
    }
    std::this_thread::sleep_for(20ms);
  }
}

Status Pod::WaitLauncher(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    pid_t reaped = waitpid(launcher_pid_, &status, WNOHANG);
    if (reaped == launcher_pid_ || (reaped < 0 && errno == ECHILD)) {
      if (reaped == launcher_pid_ && ExitCode(status) != 0) {
        SR_LOG(kWarning) << "the pod's launcher exited with " << ExitCode(status);
      }
      return OkStatus();
    }
    std::this_thread::sleep_for(10ms);
  }
  return DeadlineExceeded("the pod's agent did not exit");
}

Status Pod::Stop() {
  if (stopped_) return OkStatus();
  stopped_ = true;
  Status destroyed = agent_.DestroySandbox();
  if (!destroyed.ok()) {
    SR_LOG(kWarning) << "DestroySandbox: " << destroyed.message();
  }
  if (!WaitLauncher(10s).ok()) {
    SR_LOG(kWarning) << "the pod's agent did not stop; terminating it";
    kill(-launcher_pid_, SIGTERM);
    if (!WaitLauncher(5s).ok()) {
      kill(-launcher_pid_, SIGKILL);
      (void)WaitLauncher(5s);
    }
  }
  return CleanupPod(paths_);
}

Status CleanupPod(const PodPaths& paths) {
  if (Result<std::string> text = ReadFile(paths.launcher_pid_file, 64); text.ok()) {
    pid_t pgid = static_cast<pid_t>(std::atoi(text->c_str()));
    // The launcher leads its own process group: the agent and its app enclaves are in it.
    if (pgid > 1 && kill(-pgid, 0) == 0) {
      SR_LOG(kInfo) << "killing the pod's stub enclave (process group " << pgid << ")";
      kill(-pgid, SIGKILL);
      for (int i = 0; i < 200 && kill(-pgid, 0) == 0; ++i) std::this_thread::sleep_for(10ms);
    }
  }
  for (const std::string& point : MountsUnder(paths.dir)) {
    if (umount2(point.c_str(), MNT_DETACH) != 0) {
      SR_LOG(kWarning) << "unmounting " << point << ": " << std::strerror(errno);
    }
  }
  if (unlink(paths.agent_socket.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus("removing " + paths.agent_socket, errno);
  }
  Status removed = RemoveTree(paths.dir);
  if (!removed.ok() && removed.code() != Code::kNotFound) return removed;
  return OkStatus();
}

Result<pid_t> SpawnPause(const std::string& self_executable, std::span<const PodNamespace> namespaces,
                         const std::string& hostname) {
  // Everything the child needs is prepared before fork: it may only make async-signal-safe calls.
  std::vector<std::pair<UniqueFd, int>> joins;
  int new_flags = 0;
  for (const PodNamespace& ns : namespaces) {
    const int flag = ns.type == "network" ? CLONE_NEWNET : ns.type == "ipc" ? CLONE_NEWIPC : CLONE_NEWUTS;
    if (ns.path.empty()) {
      new_flags |= flag;
      continue;
    }
    UniqueFd fd(::open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return ErrnoStatus("opening the pod's " + ns.type + " namespace " + ns.path, errno);
    joins.emplace_back(std::move(fd), flag);
  }
  const bool set_hostname = (new_flags & CLONE_NEWUTS) != 0 && !hostname.empty();
  UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!null) return ErrnoStatus("opening /dev/null", errno);
  // The child reports a failed step as {step, errno} here; end of file means it exec'd.
  int report_pipe[2];
  if (pipe2(report_pipe, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  UniqueFd report_read(report_pipe[0]), report_write(report_pipe[1]);
  enum Step : int { kJoin = 1, kUnshare, kHostname, kLoopback, kExec };
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return ErrnoStatus("fork", errno);
  if (pid == 0) {
    auto fail = [&](int step) {
      const int report[2] = {step, errno};
      (void)!::write(report_write.get(), report, sizeof report);
      _exit(127);
    };
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    for (const auto& [fd, flag] : joins) {
      if (setns(fd.get(), flag) != 0) fail(kJoin);
    }
    if (new_flags != 0 && unshare(new_flags) != 0) fail(kUnshare);
    if (set_hostname && sethostname(hostname.data(), hostname.size()) != 0) fail(kHostname);
    // As runc brings up the loopback of a container's new network namespace.
    if (new_flags & CLONE_NEWNET) {
      int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      ifreq req{};
      std::memcpy(req.ifr_name, "lo", 3);
      if (sock < 0 || ioctl(sock, SIOCGIFFLAGS, &req) != 0) fail(kLoopback);
      req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP);
      if (ioctl(sock, SIOCSIFFLAGS, &req) != 0) fail(kLoopback);
    }
    dup2(null.get(), 0);
    dup2(null.get(), 1);
    dup2(null.get(), 2);
    // Nothing of the shim's but the report pipe (close-on-exec) goes past this point.
    const unsigned report_fd = static_cast<unsigned>(report_write.get());
    if (report_fd > 3) syscall(SYS_close_range, 3u, report_fd - 1, 0);
    syscall(SYS_close_range, report_fd + 1, ~0u, 0);
    execl(self_executable.c_str(), "containerd-shim-sealroot-v2", "pause", static_cast<char*>(nullptr));
    fail(kExec);
  }
  report_write.Reset();
  int report[2] = {0, 0};
  ssize_t n;
  while ((n = ::read(report_read.get(), report, sizeof report)) < 0 && errno == EINTR) {
  }
  if (n == 0) return pid;
  waitpid(pid, nullptr, 0);
  static constexpr const char* kSteps[] = {"",
                                           "joining the pod's namespace",
                                           "creating the pod's namespaces",
                                           "setting the pod's hostname",
                                           "bringing up the pod's loopback",
                                           "executing the pause process"};
  const int step = report[0] >= kJoin && report[0] <= kExec ? report[0] : kExec;
  return ErrnoStatus(std::string("pause process: ") + kSteps[step], n == sizeof report ? report[1] : EIO);
}

int PauseMain() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  int sig = 0;
  sigwait(&set, &sig);
  return 0;
}

}  // namespace sealroot::shim
