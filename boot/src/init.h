// The container's PID 1 and the exec of its entrypoint, run in the child RunContainer forks.
// Setup failures travel back to RunContainer over a close-on-exec "status pipe": a successful
// execve closes it empty; a failure writes "<code> <message>" into it first.
#pragma once

#include "base/fd.h"
#include "base/status.h"
#include "boot/container.h"

namespace sealroot::boot {

// Enters the root, sets the hostname, forks the entrypoint and supervises it; exits with its
// exit code. Never returns.
[[noreturn]] void RunInit(const ContainerOptions& options, UniqueFd status_pipe);

// Runs in a process that is already inside the container's root and namespaces: resolves the
// user against the root's /etc/passwd, applies rlimits, groups, ids, cwd, no_new_privs, resets
// signals, marks every fd above 2 close-on-exec and execs. Returns only on failure.
Status ExecEntrypoint(const ProcessSpec& process);

// Reports a failure before the exec into the status pipe and exits (127).
[[noreturn]] void FailSetup(int status_pipe, const Status& status);

// Decodes what a failed setup wrote into the status pipe.
Status DecodeSetupError(std::string_view report);

}  // namespace sealroot::boot
