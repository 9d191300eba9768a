// The container's seccomp filter from the OCI spec's `linux.seccomp` object, as runc applies it:
// compiled with libseccomp in the boot (which may allocate, log and fail with a clear error),
// loaded in the container's last process right before execve (which must not allocate).
//
// Thread-safety: SeccompProgram is an immutable value; Load() affects the calling thread only
// unless the profile asks for SECCOMP_FILTER_FLAG_TSYNC.
#pragma once

#include <linux/filter.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "base/status.h"

namespace sealroot::boot {

class SeccompProgram {
 public:
  // An empty program: Load() does nothing (the spec has no `linux.seccomp`).
  SeccompProgram() = default;
  SeccompProgram(std::vector<sock_filter> filter, unsigned int flags)
      : filter_(std::move(filter)), flags_(flags) {}

  bool empty() const { return filter_.empty(); }
  // SECCOMP_FILTER_FLAG_* passed to seccomp(2).
  unsigned int flags() const { return flags_; }
  std::size_t instruction_count() const { return filter_.size(); }

  // seccomp(SECCOMP_SET_MODE_FILTER, flags, program). Needs no_new_privs or CAP_SYS_ADMIN (so a
  // process without no_new_privs loads it before dropping capabilities, as runc does; the
  // filter then covers the rest of the setup). No allocation on success.
  Status Load() const;

 private:
  std::vector<sock_filter> filter_;
  unsigned int flags_ = 0;
};

// Compiles `linux.seccomp` (null: an empty program) into a BPF program for this machine's
// architecture plus the listed ones. Follows runc 1.1: unknown syscall names are skipped (a
// profile may name syscalls this kernel or libseccomp does not know); rules whose action equals
// the default action are dropped; several conditions on the same argument become separate
// rules (OR), conditions on different arguments one rule (AND); errnoRet defaults to EPERM for
// SCMP_ACT_ERRNO and SCMP_ACT_TRACE. Unknown actions, operators, architectures or flags, and
// SCMP_ACT_NOTIFY (sealroot-boot has no listener), are INVALID_ARGUMENT naming the field.
Result<SeccompProgram> CompileSeccomp(const nlohmann::json& linux_seccomp);

}  // namespace sealroot::boot
