// The calling process's mount table, /proc/self/mountinfo (proc(5)), parsed once for every
// reader: the boot's cgroup hierarchies, the shim's pod mounts, a FUSE mount's device.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sealroot {

// One mount, its paths unescaped (mountinfo writes a space, tab, newline or backslash as \ooo).
struct MountInfo {
  std::string device;  // "major:minor"
  std::string root;    // the path within its filesystem that is mounted here
  std::string mount_point;
  std::string fs_type;
  std::string super_options;  // comma-separated
};

// The lines of mountinfo text, in order (a later mount on the same point is on top); lines
// without the fields above are skipped.
std::vector<MountInfo> ParseMountInfo(std::string_view text);
Result<std::vector<MountInfo>> ReadMountInfo();

}  // namespace sealroot
