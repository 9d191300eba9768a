// The container-runtime half of sealroot-boot: given a root filesystem that is already in place
// (a directory, or the sealed root mounted by fusefs), run the OCI process in it the way runc
// would — the spec's namespaces, mounts, /dev, masked and read-only paths, capabilities,
// pivot_root — and relay its exit status.
//
// Process layout (design/boot.md):
//   sealroot-boot (holds the keys, serves FUSE, non-dumpable; outside the container's namespaces)
//     └─ init: a fresh exec of this program (`--container-init`), holding no keys; PID 1 of the
//          container; mounts, pivot_root, reaps, forwards signals, spawns exec'd processes
//          ├─ the entrypoint (execve'd after the credentials and limits are applied)
//          └─ exec'd processes, on the boot's request over the init channel
//
// Thread-safety: EnterContainerNamespaces() must run while the process is single-threaded;
// RunContainer() from the main thread. ContainerInit is thread-safe.
#pragma once

#include <sys/types.h>

#include <array>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/fd.h"
#include "base/status.h"
#include "boot/spec/cgroup_stats.h"
#include "boot/spec/process_spec.h"

namespace sealroot::boot {

// Moves the calling process (the boot) into its own mount namespace with every mount private —
// its FUSE and scratch mounts never reach the host — and blocks the signals RunContainer
// forwards (so that threads started later, e.g. FUSE workers, never take them). It also makes
// the boot non-dumpable: no process of the container's user can read its memory or ptrace it.
Status EnterContainerNamespaces();

// The argument that makes sealroot-boot the container's init (main.cc dispatches on it).
inline constexpr char kInitFlag[] = "--container-init";
// The init's side: reads its configuration from fd 3, builds the container, runs the
// entrypoint and serves exec requests. Returns only on a malformed start (exit code).
int RunContainerInitMode();

// A process exec'd in the container by its init, as the boot sees it.
class ContainerExec {
 public:
  virtual ~ContainerExec() = default;
  // Readable once the process has exited.
  virtual int exit_fd() const = 0;
  // The exit code (128+N for signal N); valid once exit_fd() is readable.
  virtual int exit_code() const = 0;
  virtual void Signal(int sig) = 0;
  // Sets the size of its terminal; kFailedPrecondition when it has none.
  virtual Status ResizeTerminal(unsigned height, unsigned width) = 0;
};

// The boot's handle on a running container's init: exec requests go through it.
class ContainerInit {
 public:
  virtual ~ContainerInit() = default;
  // Runs `process` in the container (init forks it: same namespaces, root, cgroup, seccomp
  // filter), with `stdio` as its fds 0-2. Capabilities unset in `process` are the container's.
  // Setup failures (unknown user, missing executable) are errors, as for RunContainer.
  virtual Result<std::unique_ptr<ContainerExec>> Spawn(const ProcessSpec& process,
                                                       const std::array<int, 3>& stdio) = 0;
  // Sets the size of the entrypoint's terminal; kFailedPrecondition when it has none.
  virtual Status ResizeTerminal(unsigned height, unsigned width) = 0;
  // The container's cgroup: its statistics, and `runc update` of its memory, cpu, pids and
  // blockIO (`resources` in linux.resources form). kFailedPrecondition once the container ended.
  virtual Result<CgroupStats> Stats() = 0;
  virtual Status UpdateResources(const nlohmann::json& resources) = 0;
};

struct ContainerOptions {
  // Names the container's default cgroup ("sealroot/<id>-<boot pid>" when linux.cgroupsPath is
  // empty).
  std::string container_id;
  // The container's root directory. It is bind-mounted onto itself, so any directory works.
  std::string root;
  // Writes go to a tmpfs upper layer (overlayfs) instead of `root`, which stays untouched:
  // the in-memory writable layer over a read-only sealed root.
  bool in_memory_upper = false;
  // The boot spec: its OCI parts (namespaces, mounts, linux.*) and its exact text, which init
  // parses again itself.
  BootSpec spec;
  std::string spec_text;
  ProcessSpec process;
  // Called once the entrypoint's execve succeeded, with the handle exec requests need.
  std::function<void(std::shared_ptr<ContainerInit>)> on_started;
};

// Runs the container and waits for it. With process.terminal, the entrypoint's stdio is a pty
// whose master the boot relays to its own stdin and stdout (so is an exec'd terminal process's,
// to the stdio given to Spawn). Returns the entrypoint's exit code, or 128+N when a
// signal N killed it. Setup failures (mounts, unknown user, missing executable) are errors, sent
// back from the container before the exec. SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
// SIGWINCH and SIGCONT received meanwhile are forwarded to the entrypoint.
Result<int> RunContainer(const ContainerOptions& options);

}  // namespace sealroot::boot
