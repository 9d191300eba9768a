#include "boot/src/seccomp_enosys.h"

#include <linux/audit.h>
#include <linux/seccomp.h>
#include <seccomp.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <map>
#include <optional>

namespace sealroot::boot {
namespace {

constexpr std::uint32_t kX32SyscallBit = 0x40000000;
constexpr std::uint32_t kSyscallNumberOffset = offsetof(seccomp_data, nr);
constexpr std::uint32_t kArchOffset = offsetof(seccomp_data, arch);

// The largest number any of `syscalls` has on `arch`; none when the arch knows none of them
// (names a libseccomp arch resolves to negative pseudo-numbers are multiplexed, not real).
std::optional<std::uint32_t> LastSyscall(std::uint32_t arch, std::span<const std::string> syscalls) {
  std::optional<std::uint32_t> last;
  for (const std::string& name : syscalls) {
    int number = seccomp_syscall_resolve_name_arch(arch, name.c_str());
    if (number == __NR_SCMP_ERROR || number < 0) continue;
    last = std::max(last.value_or(0), static_cast<std::uint32_t>(number));
  }
  return last;
}

// The x32 ABI runs under the x86_64 audit arch, its syscall numbers marked by kX32SyscallBit.
std::uint32_t AuditArch(std::uint32_t arch) {
  return arch == SCMP_ARCH_X32 ? AUDIT_ARCH_X86_64 : arch;
}

sock_filter Stmt(std::uint16_t code, std::uint32_t k) {
  return {code, 0, 0, k};
}
sock_filter Jump(std::uint16_t code, std::uint32_t k, std::uint8_t jt, std::uint8_t jf) {
  return {code, jt, jf, k};
}

// Jump targets, resolved once the stub's length is known.
enum class Target : std::uint8_t { kEnosys, kFilter, kSection };
struct PendingJump {
  std::size_t at;
  bool true_branch;
  Target target;
  std::size_t section = 0;
};

}  // namespace

std::vector<sock_filter> EnosysStub(std::span<const std::uint32_t> arches,
                                    std::span<const std::string> syscalls) {
  // audit arch -> (the last native syscall, the last x32 syscall)
  std::map<std::uint32_t, std::pair<std::optional<std::uint32_t>, std::optional<std::uint32_t>>> last;
  for (std::uint32_t arch : arches) {
    std::optional<std::uint32_t> number = LastSyscall(arch, syscalls);
    if (!number) continue;
    auto& entry = last[AuditArch(arch)];
    (arch == SCMP_ARCH_X32 ? entry.second : entry.first) = number;
  }
  if (last.empty()) return {};

  std::vector<sock_filter> stub = {Stmt(BPF_LD | BPF_W | BPF_ABS, kArchOffset)};
  std::vector<PendingJump> jumps;
  // Dispatch on the architecture; an unlisted one goes straight to the filter (whose bad-arch
  // action handles it).
  for (std::size_t s = 0; s < last.size(); ++s) {
    jumps.push_back({stub.size(), true, Target::kSection, s});
    stub.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, std::next(last.begin(), s)->first, 0, 0));
  }
  jumps.push_back({stub.size(), true, Target::kFilter});
  stub.push_back(Jump(BPF_JMP | BPF_JA, 0, 0, 0));
  std::vector<std::size_t> section_start;
  for (const auto& [audit_arch, numbers] : last) {
    section_start.push_back(stub.size());
    stub.push_back(Stmt(BPF_LD | BPF_W | BPF_ABS, kSyscallNumberOffset));
    auto compare = [&](std::uint32_t max) {
      jumps.push_back({stub.size(), true, Target::kEnosys});
      jumps.push_back({stub.size(), false, Target::kFilter});
      stub.push_back(Jump(BPF_JMP | BPF_JGT | BPF_K, max, 0, 0));
    };
    if (audit_arch != AUDIT_ARCH_X86_64) {
      compare(*numbers.first);
      continue;
    }
    // x86_64: x32 calls (kX32SyscallBit set) have their own numbering.
    std::size_t jset = stub.size();
    stub.push_back(Jump(BPF_JMP | BPF_JSET | BPF_K, kX32SyscallBit, 0, 0));
    if (numbers.first && numbers.second) {
      stub[jset].jt = 1;  // over the native comparison
      compare(*numbers.first);
      compare(*numbers.second);
    } else if (numbers.first) {
      jumps.push_back({jset, true, Target::kFilter});
      compare(*numbers.first);
    } else {
      jumps.push_back({jset, false, Target::kFilter});
      compare(*numbers.second);
    }
  }
  std::size_t enosys = stub.size();
  stub.push_back(Stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)));
  std::size_t filter = stub.size();
  if (filter > 255) return {};  // every jump must fit 8 bits; never near for real arch lists

  for (const PendingJump& j : jumps) {
    sock_filter& insn = stub[j.at];
    std::size_t target = j.target == Target::kEnosys   ? enosys
                         : j.target == Target::kFilter ? filter
                                                       : section_start[j.section];
    auto offset = static_cast<std::uint32_t>(target - j.at - 1);
    if (BPF_OP(insn.code) == BPF_JA) {
      insn.k = offset;
    } else if (j.true_branch) {
      insn.jt = static_cast<std::uint8_t>(offset);
    } else {
      insn.jf = static_cast<std::uint8_t>(offset);
    }
  }
  return stub;
}

}  // namespace sealroot::boot
