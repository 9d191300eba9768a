#include "boot/container.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "base/fd.h"
#include "base/file.h"
#include "boot/src/init.h"
#include "boot/src/supervise.h"

namespace sealroot::boot {

Status EnterContainerNamespaces() {
  if (::unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC) != 0) {
    return ErrnoStatus("creating the container's namespaces", errno);
  }
  // Without this, mounts made for the container could propagate to shared host mounts.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return ErrnoStatus("making the mount namespace private", errno);
  }
  return BlockSupervisedSignals();
}

Result<int> RunContainer(const ContainerOptions& options) {
  if (options.process.args.empty()) return InvalidArgument("running a container: no command");
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  UniqueFd report_read(fds[0]);
  UniqueFd report_write(fds[1]);

  pid_t init = ::fork();
  if (init < 0) return ErrnoStatus("forking the container's init", errno);
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
  return Supervise(init, /*reap_all=*/false);
}

}  // namespace sealroot::boot
