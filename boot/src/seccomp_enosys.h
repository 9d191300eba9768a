// runc's -ENOSYS stub: a few BPF instructions run before a profile's filter so that a syscall
// *newer than every syscall the profile names* fails with ENOSYS instead of getting the default
// action. libc treats ENOSYS as "this kernel lacks it" and falls back to an older syscall; EPERM
// would be a hard failure for software newer than the profile.
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace sealroot::boot {

// The stub for a filter covering `arches` (libseccomp SCMP_ARCH_* tokens, native included) whose
// rules name `syscalls`; empty when no architecture has a named syscall. Every path through it
// ends in "ENOSYS" or falls through to the instruction after it (the filter).
std::vector<sock_filter> EnosysStub(std::span<const std::uint32_t> arches,
                                    std::span<const std::string> syscalls);

}  // namespace sealroot::boot
