#include "boot/container.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/fd.h"
#include "base/file.h"
#include "base/log.h"
#include "boot/src/init.h"
#include "boot/src/supervise.h"

namespace sealroot::boot {

Status EnterContainerNamespaces() {
  if (::unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC) != 0) {
    return ErrnoStatus("creating the container's namespaces", errno);
  }
  // Without this, mounts made for the container could propagate to shared host mounts.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return ErrnoStatus("making the mount namespace private", errno);
  }
  return BlockSupervisedSignals();
}

namespace {

// Forks a child that is PID 1 of a new PID namespace. The boot itself stays in its own PID
// namespace for the children it forks later: a namespace whose init has exited accepts no new
// process, and the boot may still need to fork (LeakSanitizer's checker does, at exit).
Result<pid_t> ForkIntoNewPidNamespace() {
  UniqueFd own(::open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC));
  if (!own) return ErrnoStatus("opening the boot's PID namespace", errno);
  if (::unshare(CLONE_NEWPID) != 0) return ErrnoStatus("creating the container's PID namespace", errno);
  pid_t pid = ::fork();
  if (pid != 0 && ::setns(own.get(), CLONE_NEWPID) != 0) {
    // Only a fork would notice; the container itself is unaffected.
    SR_LOG(kWarning) << "returning to the boot's PID namespace: " << std::strerror(errno);
  }
  if (pid < 0) return ErrnoStatus("forking the container's init", errno);
  return pid;
}

}  // namespace

Result<int> RunContainer(const ContainerOptions& options) {
  if (options.process.args.empty()) return InvalidArgument("running a container: no command");
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  UniqueFd report_read(fds[0]);
  UniqueFd report_write(fds[1]);

  SR_ASSIGN_OR_RETURN(pid_t init, ForkIntoNewPidNamespace());
  if (init == 0) {
    report_read.Reset();
    RunInit(options, std::move(report_write));
  }
  report_write.Reset();
  // EOF with nothing written: the entrypoint's execve succeeded (or init died; Supervise says).
  SR_ASSIGN_OR_RETURN(std::string report, ReadFd(report_read.get(), 64u << 10));
  if (!report.empty()) {
    int status = 0;
    ::waitpid(init, &status, 0);
    return DecodeSetupError(report).WithContext("container root " + options.root);
  }
  if (options.on_started) options.on_started(init);
  return Supervise(init, /*reap_all=*/false);
}

Result<pid_t> SpawnInContainer(pid_t init, const ProcessSpec& process, const std::array<int, 3>& stdio) {
  if (process.args.empty()) return InvalidArgument("exec: no command");
  UniqueFd init_fd(static_cast<int>(::syscall(SYS_pidfd_open, init, 0)));
  if (!init_fd) return ErrnoStatus("exec: the container's init", errno);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  UniqueFd report_read(fds[0]);
  UniqueFd report_write(fds[1]);

  pid_t supervisor = ::fork();
  if (supervisor < 0) return ErrnoStatus("exec: fork", errno);
  if (supervisor == 0) {
    // The supervisor joins the namespaces (setns of a mount namespace needs a single thread,
    // which a fresh child is); its own child is then born inside the container's PID namespace.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::setns(init_fd.get(), CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC) != 0) {
      FailSetup(report_write.get(), ErrnoStatus("joining the container's namespaces", errno));
    }
    pid_t child = ::fork();
    if (child < 0) FailSetup(report_write.get(), ErrnoStatus("fork", errno));
    if (child == 0) {
      for (int i = 0; i < 3; ++i) {
        if (::dup2(stdio[i], i) < 0) FailSetup(report_write.get(), ErrnoStatus("exec: stdio", errno));
      }
      FailSetup(report_write.get(), ExecEntrypoint(process).WithContext("exec " + process.args[0]));
    }
    // Nothing the boot had open stays open here: a copy of the process's stdio would keep its
    // pipes from reaching EOF, and the FUSE device and sockets are none of its business.
    (void)report_write.Release();
    (void)init_fd.Release();
    ::close_range(3, ~0U, 0);
    auto exit_code = Supervise(child, /*reap_all=*/false);
    ::_exit(exit_code.ok() ? *exit_code : 255);
  }
  report_write.Reset();
  SR_ASSIGN_OR_RETURN(std::string report, ReadFd(report_read.get(), 64u << 10));
  if (!report.empty()) {
    int status = 0;
    ::waitpid(supervisor, &status, 0);
    return DecodeSetupError(report);
  }
  return supervisor;
}

}  // namespace sealroot::boot
