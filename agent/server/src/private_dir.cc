#include "agent/server/src/private_dir.h"

#include <sys/stat.h>

#include <cerrno>

#include "base/file.h"

namespace sealroot::agent {

Status MakePrivateDir(const std::string& path) {
  SR_RETURN_IF_ERROR(MakeDirs(path, 0700));
  if (chmod(path.c_str(), 0700) != 0) return ErrnoStatus("chmod 0700 " + path, errno);
  return OkStatus();
}

}  // namespace sealroot::agent
