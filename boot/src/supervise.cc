#include "boot/src/supervise.h"

#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "base/fd.h"

namespace sealroot::boot {

sigset_t SupervisedSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGCHLD}) {
    sigaddset(&set, sig);
  }
  return set;
}

Status BlockSupervisedSignals() {
  sigset_t set = SupervisedSignals();
  int err = ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  if (err != 0) return ErrnoStatus("blocking signals", err);
  return OkStatus();
}

void ResetSignalsForExec() {
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP)
      ::signal(sig, SIG_DFL);  // fails harmlessly for RT signals glibc reserves
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

int ExitCodeOf(int wait_status) {
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return WEXITSTATUS(wait_status);
}

Result<int> Supervise(pid_t child, bool reap_all) {
  sigset_t set = SupervisedSignals();
  UniqueFd sfd(::signalfd(-1, &set, SFD_CLOEXEC));
  if (!sfd) return ErrnoStatus("signalfd", errno);
  while (true) {
    // SIGCHLD may have been merged with an earlier one, so poll for exits before every wait.
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(reap_all ? -1 : child, &status, WNOHANG)) > 0) {
      if (pid == child) return ExitCodeOf(status);
    }
    if (pid < 0 && errno != ECHILD && errno != EINTR) return ErrnoStatus("waitpid", errno);
    if (pid < 0 && errno == ECHILD) return Internal("supervised process vanished");

    signalfd_siginfo info;
    ssize_t n = ::read(sfd.get(), &info, sizeof info);
    if (n < 0 && errno == EINTR) continue;
    if (n != static_cast<ssize_t>(sizeof info)) return ErrnoStatus("reading signalfd", errno);
    int sig = static_cast<int>(info.ssi_signo);
    if (sig != SIGCHLD) ::kill(child, sig);
  }
}

}  // namespace sealroot::boot
