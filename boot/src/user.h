// Resolving a UserRef against the container root's /etc/passwd and /etc/group, the way runc
// and Docker do: numeric ids need no entry; names must exist; the home directory becomes HOME.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "boot/spec/process_spec.h"

namespace sealroot::boot {

struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups, passed to setgroups()
  std::string home = "/";
};

// `passwd` and `group` are the files' contents (empty when the image has none).
// kNotFound when a name is not listed; kInvalidArgument for malformed ids.
Result<Credentials> ResolveUser(const UserRef& ref, std::string_view passwd, std::string_view group);

}  // namespace sealroot::boot
