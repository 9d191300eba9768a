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

// Decodes what a failed setup wrote into the status pipe.
Status DecodeSetupError(std::string_view report);

}  // namespace sealroot::boot
