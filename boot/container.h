// The container-runtime half of sealroot-boot: given a root filesystem that is already in place
// (a directory, or the sealed root mounted by fusefs), run one process in it the way runc would
// — private mount/PID/UTS/IPC namespaces, /proc, /dev, /tmp, pivot_root, the OCI process — and
// relay its exit status.
//
// Process layout (design/boot.md):
//   sealroot-boot (keeps serving the FUSE mount, forwards signals)
//     └─ init: PID 1 of the container; mounts, pivot_root, reaps, forwards signals
//          └─ the entrypoint (execve'd after the credentials and limits are applied)
//
// Thread-safety: EnterContainerNamespaces() must run while the process is single-threaded;
// RunContainer() from the main thread (the init child's parent-death signal follows the thread
// that forked it).
#pragma once

#include <sys/types.h>

#include <array>
#include <functional>
#include <string>

#include "base/status.h"
#include "boot/process_spec.h"

namespace sealroot::boot {

// Moves the calling process into new mount, UTS and IPC namespaces, makes every mount private
// (nothing propagates back to the host), and blocks the signals RunContainer forwards (so that
// threads started later, e.g. FUSE workers, never take them). RunContainer adds the PID namespace.
Status EnterContainerNamespaces();

struct ContainerOptions {
  // The container's root directory. It is bind-mounted onto itself, so any directory works.
  std::string root;
  // Writes go to a tmpfs upper layer (overlayfs) instead of `root`, which stays untouched:
  // the in-memory writable layer over a read-only sealed root.
  bool in_memory_upper = false;
  std::string hostname;
  ProcessSpec process;
  // Called once the entrypoint's execve succeeded, with the container init's pid (in the
  // boot's PID namespace): the handle SpawnInContainer needs.
  std::function<void(pid_t init)> on_started;
};

// Runs the container and waits for it. Returns the entrypoint's exit code, or 128+N when a
// signal N killed it. Setup failures (mounts, unknown user, missing executable) are errors, sent
// back from the container before the exec. SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
// SIGWINCH and SIGCONT received meanwhile are forwarded to the entrypoint.
Result<int> RunContainer(const ContainerOptions& options);

// Starts another process in the running container whose init is `init` (ExecProcess): it
// joins init's mount, PID, UTS and IPC namespaces — so it sees the container's root, never the
// host's — with `stdio` as its fds 0-2. Returns the pid of its supervisor (a child of the
// caller, which forwards signals and exits with the process's exit code, 128+N for a signal).
// Setup failures (unknown user, missing executable) are errors, as for RunContainer.
Result<pid_t> SpawnInContainer(pid_t init, const ProcessSpec& process, const std::array<int, 3>& stdio);

}  // namespace sealroot::boot
