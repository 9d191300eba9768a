// Signal forwarding and child supervision, shared by sealroot-boot and the container's init:
// both block the forwarded signals (plus SIGCHLD), read them from a signalfd, pass them on to
// their child and return the child's status when it ends.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include "base/status.h"

namespace sealroot::boot {

// SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT and SIGCHLD.
sigset_t SupervisedSignals();

// Blocks SupervisedSignals() in the calling thread (threads created later inherit the mask).
Status BlockSupervisedSignals();

// Undoes what a supervisor changed before an execve: every signal unblocked and back to its
// default action (ignored signals would otherwise stay ignored across exec).
void ResetSignalsForExec();

// 0-255 for an exit, 128+N when signal N killed the process.
int ExitCodeOf(int wait_status);

// Forwards SupervisedSignals() (but SIGCHLD) to `child` until it exits; returns its exit code.
// With `reap_all` (PID 1), also reaps every other process that ends meanwhile.
Result<int> Supervise(pid_t child, bool reap_all);

}  // namespace sealroot::boot
