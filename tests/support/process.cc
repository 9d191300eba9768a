#include "tests/support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

namespace sealroot::testing {
namespace {

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

[[noreturn]] void ExecChild(const std::vector<std::string>& argv,
                            const std::map<std::string, std::string>& env, const std::string& cwd) {
  for (const auto& [key, value] : env) setenv(key.c_str(), value.c_str(), 1);
  if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(127);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execvp(args[0], args.data());
  _exit(127);
}

// Removes a test directory. A mount a failed test left in it is detached first (removal would
// descend into it, or hang on a stuck FUSE daemon). A gpg-agent that a test's gpg started for a
// keyring in it ("gnupg") keeps its socket elsewhere and would outlive it: it is stopped.
void RemoveTestDir(const std::string& path) {
  std::ifstream mounts("/proc/self/mounts");
  for (std::string device, mount_point, rest;
       mounts >> device >> mount_point && std::getline(mounts, rest);) {
    if (mount_point.starts_with(path + "/")) umount2(mount_point.c_str(), MNT_DETACH);
  }
  std::error_code ec;
  if (std::filesystem::is_directory(path + "/gnupg", ec)) {
    Run({"gpgconf", "--homedir", path + "/gnupg", "--kill", "all"}, {.timeout = std::chrono::seconds(10)});
  }
  std::filesystem::remove_all(path, ec);
}

// The test directories alive in this process. The per-binary materials (keys, images, a
// registry's storage) are never destroyed; they are removed when the test binary exits.
struct LiveTempDirs {
  std::mutex mu;
  std::set<std::string> paths;
  pid_t owner = getpid();
};

LiveTempDirs& Live() {
  static auto* live = [] {
    auto* l = new LiveTempDirs;  // never destroyed: the exit handler uses it
    std::atexit([] {
      LiveTempDirs& dirs = Live();
      if (getpid() != dirs.owner) return;  // a forked child's exit: the directories are not its
      std::set<std::string> left;
      {
        std::lock_guard lock(dirs.mu);
        left.swap(dirs.paths);
      }
      for (const std::string& path : left) RemoveTestDir(path);
    });
    return l;
  }();
  return *live;
}

}  // namespace

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/sealroot-test-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
  LiveTempDirs& live = Live();
  std::lock_guard lock(live.mu);
  live.paths.insert(path_);
}

TempDir::~TempDir() {
  {
    LiveTempDirs& live = Live();
    std::lock_guard lock(live.mu);
    live.paths.erase(path_);
  }
  RemoveTestDir(path_);
}

CommandResult Run(const std::vector<std::string>& argv, const CommandOptions& options) {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC)) {
    throw std::runtime_error("pipe failed");
  }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    ExecChild(argv, options.env, options.cwd);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  signal(SIGPIPE, SIG_IGN);
  std::thread writer([fd = in_pipe[1], data = options.stdin_data] {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = write(fd, data.data() + off, data.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close(fd);
  });
  CommandResult result;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  bool timed_out = false;
  while (open_fds > 0) {
    int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now())
            .count());
    if (left <= 0) {
      timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    if (poll(fds, 2, left) < 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  writer.join();
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = DecodeWaitStatus(status);
  if (timed_out) result.err += "\n[test harness: command timed out]";
  return result;
}

CommandResult Shell(const std::string& script, const CommandOptions& options) {
  return Run({"/bin/sh", "-c", script}, options);
}

BackgroundProcess::BackgroundProcess(const std::vector<std::string>& argv, const std::string& log_path,
                                     const std::map<std::string, std::string>& env) {
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ == 0) {
    // Servers die with the test process, even when a fixture is never destroyed (a static
    // shared by a whole suite): CI must not be left with registries and agents running.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    dup2(log, 1);
    dup2(log, 2);
    setpgid(0, 0);
    ExecChild(argv, env, "");
  }
}

BackgroundProcess::~BackgroundProcess() {
  Stop();
}

bool BackgroundProcess::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    status_ = DecodeWaitStatus(status);
    pid_ = -1;
    return false;
  }
  return true;
}

int BackgroundProcess::Stop(int sig) {
  if (pid_ <= 0) return status_;
  kill(pid_, sig);
  for (int i = 0; i < 100; ++i) {
    if (!Running()) return status_;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  status_ = DecodeWaitStatus(status);
  pid_ = -1;
  return status_;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

bool WaitForPort(int port, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::string BuiltProgram(const std::string& name) {
  return std::string(SEALROOT_BINARY_DIR) + "/bin/" + name;
}
std::string SourceDir() {
  return SEALROOT_SOURCE_DIR;
}

}  // namespace sealroot::testing
