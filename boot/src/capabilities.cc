#include "boot/src/capabilities.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace sealroot::boot {
namespace {

// The highest capability this kernel knows: prctl(PR_CAPBSET_READ) fails past it.
int LastCapability() {
  int last = 0;
  while (::prctl(PR_CAPBSET_READ, last + 1, 0, 0, 0) >= 0) ++last;
  return last;
}

bool Contains(const std::vector<int>& set, int cap) {
  for (int c : set) {
    if (c == cap) return true;
  }
  return false;
}

void AddTo(__user_cap_data_struct (&data)[2], __u32 __user_cap_data_struct::*field,
           const std::vector<int>& set) {
  for (int cap : set) data[cap / 32].*field |= 1u << (cap % 32);
}

}  // namespace

Status DropBoundingSet(const Capabilities& caps) {
  const int last = LastCapability();
  for (int cap = 0; cap <= last; ++cap) {
    if (!Contains(caps.bounding, cap) && ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      return ErrnoStatus("dropping a capability from the bounding set", errno);
    }
  }
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return ErrnoStatus("PR_SET_KEEPCAPS", errno);
  return OkStatus();
}

Status SetCapabilities(const Capabilities& caps) {
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return ErrnoStatus("PR_SET_KEEPCAPS", errno);
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  AddTo(data, &__user_cap_data_struct::effective, caps.effective);
  AddTo(data, &__user_cap_data_struct::permitted, caps.permitted);
  AddTo(data, &__user_cap_data_struct::inheritable, caps.inheritable);
  if (::syscall(SYS_capset, &header, data) != 0) return ErrnoStatus("capset", errno);
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    return ErrnoStatus("clearing the ambient capabilities", errno);
  }
  // As runc: an ambient capability that is not also permitted and inheritable cannot be raised
  // and is left out (`runc spec`'s default lists ambient ones without inheritable ones).
  for (int cap : caps.ambient) (void)::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
  return OkStatus();
}

}  // namespace sealroot::boot
