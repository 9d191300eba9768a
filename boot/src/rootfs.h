// Building the container's filesystem view inside init's mount namespace, the way runc does:
// the root, the spec's mounts (or the boot's defaults), /dev, pivot_root; then sysctls, masked
// and read-only paths and a read-only root. Runs in the container's init.
#pragma once

#include <string>

#include "base/status.h"
#include "boot/process_spec.h"

namespace sealroot::boot {

struct RootfsConfig {
  std::string root;
  bool in_memory_upper = false;
  bool user_namespace = false;  // device nodes are bind mounts of the host's (mknod is refused)
  bool cgroup_namespace = false;
  const BootSpec* spec = nullptr;
};

// Sets the root's propagation (linux.rootfsPropagation, default rslave as runc), mounts the root
// (bind of `root`, or an overlay with a tmpfs upper over it when `in_memory_upper`), the spec's
// mounts with their options and propagation — or, when the spec has no "mounts", /proc, a /dev
// tmpfs with devpts, shm and mqueue, and a /tmp tmpfs — the default and spec devices and /dev
// links, then makes it the process's root with pivot_root and detaches the old one. Mount points
// the boot's defaults use must not be symlinks; spec mount destinations resolve inside the root.
Status EnterRoot(const RootfsConfig& config);

// After pivot_root: linux.sysctl (namespaced ones only), readonlyPaths, maskedPaths (files get
// /dev/null, directories a read-only tmpfs) and root.readonly.
Status FinalizeRoot(const BootSpec& spec, bool new_network_namespace);

}  // namespace sealroot::boot
