// The seccomp profile a container gets when its spec does not bring one: the OCI
// `linux.seccomp` object equivalent to Docker's and containerd's default profile, resolved for
// x86_64 and the 14 default capabilities (CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD, NET_RAW,
// SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL, AUDIT_WRITE).
//
// What it means for a container: every syscall not listed fails with EPERM; namespaces, mounts,
// keyrings, BPF, perf, module loading, clock setting, reboot and the like are refused; clone is
// allowed only without namespace flags, and clone3 fails with ENOSYS so that libc falls back to
// clone, where those flags can be checked.
//
// Thread-safety: a pure function.
#pragma once

#include <nlohmann/json.hpp>

namespace sealroot::boot {

nlohmann::json DefaultSeccompProfile();

}  // namespace sealroot::boot
