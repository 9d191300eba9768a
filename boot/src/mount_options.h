// OCI mount options as runc reads them: mount flags set or cleared, propagation changes applied
// after the mount, and everything else passed on as the filesystem's data string.
#pragma once

#include <string>
#include <vector>

namespace sealroot::boot {

struct MountOptions {
  unsigned long flags = 0;
  std::vector<unsigned long> propagation;  // MS_PRIVATE, MS_SHARED, ... (| MS_REC)
  std::string data;                        // "mode=755,size=65536k"
};

MountOptions ParseMountOptions(const std::vector<std::string>& options);

}  // namespace sealroot::boot
