// The container's init: a fresh exec of sealroot-boot, so nothing of the boot's memory (the
// keys, the FUSE server) is in any process of the container. It receives only the spec text,
// the resolved process and the root's path over the init channel (fd 3).
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "base/fd.h"
#include "base/file.h"
#include "boot/container.h"
#include "boot/src/init.h"
#include "boot/src/init_channel.h"
#include "boot/src/rootfs.h"
#include "boot/src/seccomp.h"
#include "boot/src/supervise.h"

namespace sealroot::boot {
namespace {

using nlohmann::json;

struct InitConfig {
  BootSpec spec;
  ProcessSpec process;
  RootfsConfig rootfs;
  SeccompProgram seccomp;  // compiled once, loaded by each process before its execve
  bool new_uts = false, new_network = false, new_cgroup = false;
};

Result<InitConfig> ReadConfig(const json& start) {
  if (start.value("type", "") != "start") return InvalidArgument("init: expected a start message");
  InitConfig out;
  SR_ASSIGN_OR_RETURN(out.spec, ParseBootSpec(start.value("spec", "")));
  SR_ASSIGN_OR_RETURN(out.process, DecodeProcess(start.value("process", json::object())));
  out.rootfs.root = start.value("root", "");
  out.rootfs.root_fd = kInitRootFd;
  out.rootfs.user_namespace = start.value("userNamespace", false);
  out.rootfs.cgroup_namespace = start.value("cgroupNamespace", false);
  out.new_uts = start.value("utsNamespace", false);
  out.new_network = start.value("networkNamespace", false);
  out.new_cgroup = start.value("newCgroupNamespace", false);
  if (!out.spec.linux.seccomp_json.empty()) {
    SR_ASSIGN_OR_RETURN(out.seccomp, CompileSeccomp(json::parse(out.spec.linux.seccomp_json)));
  }
  return out;
}

// runc brings the loopback interface of a new network namespace up.
Status LoopbackUp() {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return ErrnoStatus("socket", errno);
  ifreq req{};
  std::strncpy(req.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &req) != 0) return ErrnoStatus("reading lo's flags", errno);
  req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP);
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &req) != 0) return ErrnoStatus("bringing lo up", errno);
  return OkStatus();
}

Status BuildContainer(InitConfig& config) {
  config.rootfs.spec = &config.spec;
  const BootSpec& spec = config.spec;
  // The boot has put init in the container's cgroup by now: it is the namespace's root.
  if (config.new_cgroup && ::unshare(CLONE_NEWCGROUP) != 0) {
    return ErrnoStatus("creating the cgroup namespace", errno);
  }
  if (config.new_network) SR_RETURN_IF_ERROR(LoopbackUp());
  SR_RETURN_IF_ERROR(EnterRoot(config.rootfs));
  if (!spec.hostname.empty() || !spec.domainname.empty()) {
    if (!config.new_uts)
      return InvalidArgument("hostname and domainname need the container's own UTS namespace");
    if (!spec.hostname.empty() && ::sethostname(spec.hostname.data(), spec.hostname.size()) != 0) {
      return ErrnoStatus("sethostname", errno);
    }
    if (!spec.domainname.empty() && ::setdomainname(spec.domainname.data(), spec.domainname.size()) != 0) {
      return ErrnoStatus("setdomainname", errno);
    }
  }
  return FinalizeRoot(spec, config.new_network);
}

// A terminal process's pty, opened in the container's devpts instance (as runc does): init keeps
// neither end once the process runs; the master goes to the boot, which relays it.
struct Pty {
  UniqueFd master, slave;
};

Result<Pty> OpenPty(const ProcessSpec& process) {
  Pty pty;
  pty.master.Reset(::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!pty.master) return ErrnoStatus("opening /dev/ptmx", errno);
  int unlock = 0;
  if (::ioctl(pty.master.get(), TIOCSPTLCK, &unlock) != 0) return ErrnoStatus("unlocking the pty", errno);
  pty.slave.Reset(::ioctl(pty.master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!pty.slave) return ErrnoStatus("opening the pty's slave", errno);
  if (process.console_height != 0 && process.console_width != 0) {
    winsize size{static_cast<unsigned short>(process.console_height),
                 static_cast<unsigned short>(process.console_width), 0, 0};
    if (::ioctl(pty.slave.get(), TIOCSWINSZ, &size) != 0)
      return ErrnoStatus("setting the console size", errno);
  }
  return pty;
}

struct Started {
  pid_t pid = -1;
  UniqueFd pty_master;  // a terminal process's
};

// Forks `process` (stdio: fds 0-2 of init, or the three given, or a new pty when the process
// asks for a terminal) and waits until it exec'd.
Result<Started> StartProcess(const ProcessSpec& process, const SeccompProgram& seccomp,
                             const std::vector<UniqueFd>* stdio) {
  Pty pty;
  if (process.terminal) {
    SR_ASSIGN_OR_RETURN(pty, OpenPty(process));
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  UniqueFd report_read(fds[0]), report_write(fds[1]);
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus("fork", errno);
  if (pid == 0) {
    if (pty.slave) {
      // A session of its own with the pty as its controlling terminal, as runc's process has.
      if (::setsid() < 0 || ::ioctl(pty.slave.get(), TIOCSCTTY, 0) != 0) {
        FailSetup(report_write.get(), ErrnoStatus("making the pty the controlling terminal", errno));
      }
      for (int i = 0; i < 3; ++i) {
        if (::dup2(pty.slave.get(), i) < 0) FailSetup(report_write.get(), ErrnoStatus("stdio", errno));
      }
    } else if (stdio != nullptr) {
      for (int i = 0; i < 3; ++i) {
        if (::dup2((*stdio)[i].get(), i) < 0) FailSetup(report_write.get(), ErrnoStatus("stdio", errno));
      }
    }
    FailSetup(report_write.get(),
              ExecEntrypoint(process, seccomp).WithContext("starting " + process.args[0]));
  }
  report_write.Reset();
  pty.slave.Reset();
  SR_ASSIGN_OR_RETURN(std::string report, ReadFd(report_read.get(), 64u << 10));
  if (!report.empty()) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return DecodeSetupError(report);
  }
  return Started{pid, std::move(pty.master)};
}

// The master of a terminal process's pty travels with its start message.
std::vector<int> PtyFds(const Started& started) {
  if (!started.pty_master) return {};
  return {started.pty_master.get()};
}

json ErrorMessage(std::string_view type, const Status& status) {
  return {{"type", type}, {"code", static_cast<int>(status.code())}, {"message", status.message()}};
}

[[noreturn]] void Fail(int channel, const Status& status) {
  (void)SendInitMessage(channel, ErrorMessage("error", status));
  ::_exit(127);
}

class Init {
 public:
  Init(int channel, InitConfig config) : channel_(channel), config_(std::move(config)) {}

  [[noreturn]] void Run() {
    auto entrypoint = StartProcess(config_.process, config_.seccomp, nullptr);
    if (!entrypoint.ok()) Fail(channel_, entrypoint.status());
    entrypoint_ = entrypoint->pid;
    (void)SendInitMessage(channel_, {{"type", "started"}}, PtyFds(*entrypoint));
    entrypoint->pty_master.Reset();
    sigset_t set = SupervisedSignals();
    UniqueFd sfd(::signalfd(-1, &set, SFD_CLOEXEC));
    if (!sfd) ::_exit(255);
    while (true) {
      pollfd fds[2] = {{sfd.get(), POLLIN, 0}, {channel_, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0 && errno != EINTR) ::_exit(255);
      if (fds[0].revents != 0) OnSignal(sfd.get());
      if (fds[1].revents != 0) OnRequest();
    }
  }

 private:
  void OnSignal(int sfd) {
    signalfd_siginfo info;
    if (::read(sfd, &info, sizeof info) != static_cast<ssize_t>(sizeof info)) return;
    if (info.ssi_signo != SIGCHLD) {
      ::kill(entrypoint_, static_cast<int>(info.ssi_signo));
      return;
    }
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      // PID 1 exiting ends the container: the kernel kills what is left of its namespace.
      if (pid == entrypoint_) ::_exit(ExitCodeOf(status));
      if (auto it = execs_.find(pid); it != execs_.end()) {
        (void)SendInitMessage(channel_, {{"type", "exit"}, {"id", it->second}, {"code", ExitCodeOf(status)}});
        execs_.erase(it);
      }
    }
  }

  void OnRequest() {
    auto message = ReceiveInitMessage(channel_);
    if (!message.ok()) ::_exit(255);  // the boot is gone: so is the container
    const json& body = message->body;
    const std::string type = body.value("type", "");
    const std::uint64_t id = body.value("id", std::uint64_t{0});
    if (type == "signal") {
      for (const auto& [pid, exec_id] : execs_) {
        if (exec_id == id) ::kill(pid, body.value("signal", SIGKILL));
      }
    } else if (type == "exec") {
      auto started = Exec(body, message->fds);
      if (!started.ok()) {
        json reply = ErrorMessage("exec-error", started.status());
        reply["id"] = id;
        (void)SendInitMessage(channel_, reply);
        return;
      }
      execs_[started->pid] = id;
      (void)SendInitMessage(channel_, {{"type", "exec-started"}, {"id", id}}, PtyFds(*started));
    }
  }

  Result<Started> Exec(const json& body, const std::vector<UniqueFd>& stdio) {
    if (stdio.size() != 3) return InvalidArgument("exec: expected three stdio descriptors");
    SR_ASSIGN_OR_RETURN(ProcessSpec process, DecodeProcess(body.value("process", json::object())));
    // As runc exec: what the request leaves unset is the container's.
    if (!process.capabilities) process.capabilities = config_.process.capabilities;
    process.no_new_privileges = process.no_new_privileges || config_.process.no_new_privileges;
    return StartProcess(process, config_.seccomp, &stdio);
  }

  int channel_;
  InitConfig config_;
  pid_t entrypoint_ = -1;
  std::map<pid_t, std::uint64_t> execs_;
};

}  // namespace

int RunContainerInitMode() {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (!BlockSupervisedSignals().ok()) return 255;
  ::umask(0);
  ::fcntl(kInitChannelFd, F_SETFD, FD_CLOEXEC);
  ::fcntl(kInitRootFd, F_SETFD, FD_CLOEXEC);
  // Started: the boot moves init into the container's cgroup, then sends the container.
  if (!SendInitMessage(kInitChannelFd, {{"type", "ready"}}).ok()) return 255;
  auto start = ReceiveInitMessage(kInitChannelFd);
  if (!start.ok()) return 255;
  // Nothing of the container may read or trace its init.
  ::prctl(PR_SET_DUMPABLE, 0);
  auto config = ReadConfig(start->body);
  if (!config.ok()) Fail(kInitChannelFd, config.status());
  if (Status built = BuildContainer(*config); !built.ok()) Fail(kInitChannelFd, built);
  Init(kInitChannelFd, std::move(*config)).Run();
}

}  // namespace sealroot::boot
