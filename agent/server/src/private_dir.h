// Directories only the agent may read: state, per-image stores, socket parents.
#pragma once

#include <string>

#include "base/status.h"

namespace sealroot::agent {

// mkdir -p, then chmod 0700 of the last component (base's MakeDirs follows the umask).
Status MakePrivateDir(const std::string& path);

}  // namespace sealroot::agent
