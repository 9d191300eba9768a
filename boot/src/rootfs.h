// Building the container's filesystem view inside the (already private) mount namespace:
// the root, /proc, /dev, /tmp, then pivot_root into it. Runs in the container's init.
#pragma once

#include <string>

#include "base/status.h"

namespace sealroot::boot {

// Mounts the root (bind of `root`, or an overlay with a tmpfs upper over it when
// `in_memory_upper`), /proc, a minimal /dev (null, zero, full, random, urandom, tty, pts, ptmx,
// shm, mqueue, fd links) and a /tmp tmpfs, then makes it the process's root with pivot_root and
// detaches the old one. Mount points that the image made symlinks are refused, so an image
// cannot redirect these mounts onto the host.
Status EnterRoot(const std::string& root, bool in_memory_upper);

}  // namespace sealroot::boot
