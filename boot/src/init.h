// The container's PID 1 (a fresh exec of sealroot-boot in `--container-init` mode: it never
// holds a key) and the exec of each container process. Setup failures travel back over a
// close-on-exec "status pipe": a successful execve closes it empty; a failure writes
// "<code> <message>" into it first.
#pragma once

#include "base/fd.h"
#include "base/status.h"
#include "boot/container.h"
#include "boot/src/seccomp.h"

namespace sealroot::boot {

// Runs in a process that is already inside the container's root and namespaces: resolves the
// user against the root's /etc/passwd, applies oomScoreAdj, rlimits, the bounding set, groups,
// ids, capabilities, cwd, no_new_privs, umask, the seccomp filter (as runc: before the
// capabilities are dropped without no_new_privs, right before execve with it), resets signals,
// marks every fd above 2 close-on-exec and execs. Returns only on failure.
Status ExecEntrypoint(const ProcessSpec& process, const SeccompProgram& seccomp);

// Reports a failure before the exec into the status pipe and exits (127).
[[noreturn]] void FailSetup(int status_pipe, const Status& status);

// Decodes what a failed setup wrote into the status pipe.
Status DecodeSetupError(std::string_view report);

}  // namespace sealroot::boot
