// Building the container's filesystem view inside init's mount namespace, the way runc does:
// the root, the spec's mounts (or the boot's defaults), /dev, pivot_root; then sysctls, masked
// and read-only paths and a read-only root. Runs in the container's init.
#pragma once

#include <string>

#include "base/status.h"
#include "boot/spec/process_spec.h"

namespace sealroot::boot {

// In the boot, before init exists, in the boot's own mount namespace: with `in_memory_upper`, a
// tmpfs over `root` holding an overlay of `root` (writes vanish with the container); returns the
// directory that becomes the container's root. The layer belongs to `owner_uid`/`owner_gid`: the
// host ids of the container's root.
Result<std::string> PrepareRoot(const std::string& root, bool in_memory_upper, uid_t owner_uid,
                                gid_t owner_gid);

struct RootfsConfig {
  std::string root;             // for messages
  int root_fd = -1;             // the directory PrepareRoot returned, opened in init's mount namespace
  bool user_namespace = false;  // device nodes are bind mounts of the host's (mknod is refused)
  bool cgroup_namespace = false;
  const BootSpec* spec = nullptr;
};

// Sets the root's propagation (linux.rootfsPropagation, default rslave as runc), mounts the root
// (a recursive bind of `root_fd`), the spec's
// mounts with their options and propagation — or, when the spec has no "mounts", /proc, a /dev
// tmpfs with devpts, shm and mqueue, and a /tmp tmpfs — the default and spec devices and /dev
// links, then makes it the process's root with pivot_root and detaches the old one. Mount points
// the boot's defaults use must not be symlinks; spec mount destinations resolve inside the root.
Status EnterRoot(const RootfsConfig& config);

// After pivot_root: linux.sysctl (namespaced ones only), readonlyPaths, maskedPaths (files get
// /dev/null, directories a read-only tmpfs) and root.readonly.
Status FinalizeRoot(const BootSpec& spec, bool new_network_namespace);

}  // namespace sealroot::boot
