#include "boot/src/seccomp.h"

#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "base/fd.h"
#include "base/file.h"

namespace sealroot::boot {
namespace {

using Json = nlohmann::json;

constexpr int kMaxArguments = 6;

struct FilterDeleter {
  void operator()(scmp_filter_ctx ctx) const { seccomp_release(ctx); }
};
using Filter = std::unique_ptr<void, FilterDeleter>;

Status FieldError(const std::string& field, const std::string& what) {
  return InvalidArgument("linux.seccomp." + field + ": " + what);
}

Result<std::string> StringField(const Json& object, const char* key, const std::string& field) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::string();
  if (!it->is_string()) return FieldError(field, "must be a string");
  return it->get<std::string>();
}

Result<std::optional<std::uint64_t>> UnsignedField(const Json& object, const char* key,
                                                   const std::string& field) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::optional<std::uint64_t>();
  // Parsed documents hold non-negative numbers as unsigned; built ones may hold them as signed.
  bool non_negative = it->is_number_unsigned() || (it->is_number_integer() && it->get<std::int64_t>() >= 0);
  if (!non_negative) return FieldError(field, "must be a non-negative integer");
  return std::optional<std::uint64_t>(it->get<std::uint64_t>());
}

// An OCI action name and its errno (for ERRNO and TRACE) as a libseccomp action.
Result<std::uint32_t> ParseAction(const std::string& name, std::optional<std::uint64_t> errno_ret,
                                  const std::string& field) {
  std::uint32_t ret = errno_ret.value_or(EPERM);
  if (errno_ret && *errno_ret > 0xffff) return FieldError(field, "errnoRet out of range");
  if (name == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (name == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(ret);
  if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (name == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (name == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (name == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(ret);
  if (name == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  if (name == "SCMP_ACT_NOTIFY") {
    return FieldError(field, "SCMP_ACT_NOTIFY needs a seccomp agent, which sealroot-boot does not have");
  }
  return FieldError(field, "unknown action '" + name + "'");
}

Result<scmp_compare> ParseOperator(const std::string& name, const std::string& field) {
  static constexpr std::array<std::pair<std::string_view, scmp_compare>, 7> kOperators = {{
      {"SCMP_CMP_NE", SCMP_CMP_NE},
      {"SCMP_CMP_LT", SCMP_CMP_LT},
      {"SCMP_CMP_LE", SCMP_CMP_LE},
      {"SCMP_CMP_EQ", SCMP_CMP_EQ},
      {"SCMP_CMP_GE", SCMP_CMP_GE},
      {"SCMP_CMP_GT", SCMP_CMP_GT},
      {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
  }};
  for (const auto& [op_name, op] : kOperators) {
    if (op_name == name) return op;
  }
  return FieldError(field, "unknown operator '" + name + "'");
}

// "SCMP_ARCH_X86_64" -> libseccomp's "x86_64".
Result<std::uint32_t> ParseArch(const Json& value, const std::string& field) {
  constexpr std::string_view kPrefix = "SCMP_ARCH_";
  std::string name = value.is_string() ? value.get<std::string>() : std::string();
  if (name.compare(0, kPrefix.size(), kPrefix) != 0) return FieldError(field, "unknown architecture");
  std::string lower = name.substr(kPrefix.size());
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::uint32_t arch = seccomp_arch_resolve_name(lower.c_str());
  if (arch == 0) return FieldError(field, "unknown architecture '" + name + "'");
  return arch;
}

Result<unsigned int> ParseFlag(const Json& value, const std::string& field) {
  std::string name = value.is_string() ? value.get<std::string>() : std::string();
  if (name == "SECCOMP_FILTER_FLAG_TSYNC") return SECCOMP_FILTER_FLAG_TSYNC;
  if (name == "SECCOMP_FILTER_FLAG_LOG") return SECCOMP_FILTER_FLAG_LOG;
  if (name == "SECCOMP_FILTER_FLAG_SPEC_ALLOW") return SECCOMP_FILTER_FLAG_SPEC_ALLOW;
  return FieldError(field, "unsupported flag '" + name + "'");
}

Result<scmp_arg_cmp> ParseCondition(const Json& arg, const std::string& field) {
  if (!arg.is_object()) return FieldError(field, "must be an object");
  SR_ASSIGN_OR_RETURN(std::optional<std::uint64_t> index, UnsignedField(arg, "index", field + ".index"));
  if (!index || *index >= kMaxArguments) return FieldError(field + ".index", "must be 0 to 5");
  SR_ASSIGN_OR_RETURN(std::optional<std::uint64_t> value, UnsignedField(arg, "value", field + ".value"));
  SR_ASSIGN_OR_RETURN(std::optional<std::uint64_t> value_two,
                      UnsignedField(arg, "valueTwo", field + ".valueTwo"));
  SR_ASSIGN_OR_RETURN(std::string op_name, StringField(arg, "op", field + ".op"));
  SR_ASSIGN_OR_RETURN(scmp_compare op, ParseOperator(op_name, field + ".op"));
  // For SCMP_CMP_MASKED_EQ, value is the mask and valueTwo the datum (as runc passes them).
  return scmp_arg_cmp{static_cast<unsigned int>(*index), op, value.value_or(0), value_two.value_or(0)};
}

Status AddRule(scmp_filter_ctx ctx, int syscall, std::uint32_t action, const std::vector<scmp_arg_cmp>& conds,
               const std::string& name, const std::string& field) {
  int rc = seccomp_rule_add_array(ctx, action, syscall, conds.size(), conds.data());
  if (rc != 0) return FieldError(field, "adding the rule for '" + name + "': " + std::strerror(-rc));
  return OkStatus();
}

Status AddSyscalls(scmp_filter_ctx ctx, const Json& rule, std::uint32_t default_action,
                   const std::string& field) {
  if (!rule.is_object()) return FieldError(field, "must be an object");
  SR_ASSIGN_OR_RETURN(std::string action_name, StringField(rule, "action", field + ".action"));
  SR_ASSIGN_OR_RETURN(std::optional<std::uint64_t> errno_ret,
                      UnsignedField(rule, "errnoRet", field + ".errnoRet"));
  SR_ASSIGN_OR_RETURN(std::uint32_t action, ParseAction(action_name, errno_ret, field + ".action"));

  std::vector<scmp_arg_cmp> conds;
  std::array<int, kMaxArguments> per_index{};
  if (auto args = rule.find("args"); args != rule.end() && !args->is_null()) {
    if (!args->is_array()) return FieldError(field + ".args", "must be an array");
    for (std::size_t i = 0; i < args->size(); ++i) {
      SR_ASSIGN_OR_RETURN(scmp_arg_cmp cond,
                          ParseCondition((*args)[i], field + ".args[" + std::to_string(i) + "]"));
      ++per_index[cond.arg];
      conds.push_back(cond);
    }
  }
  bool or_same_argument = false;
  for (int count : per_index) or_same_argument |= count > 1;

  auto names = rule.find("names");
  if (names == rule.end() || !names->is_array()) return FieldError(field + ".names", "must be an array");
  for (std::size_t i = 0; i < names->size(); ++i) {
    const Json& name_json = (*names)[i];
    if (!name_json.is_string())
      return FieldError(field + ".names[" + std::to_string(i) + "]", "must be a string");
    std::string name = name_json.get<std::string>();
    int syscall = seccomp_syscall_resolve_name(name.c_str());
    if (syscall == __NR_SCMP_ERROR) continue;  // unknown to this libseccomp/kernel: skipped, as runc does
    if (action == default_action) continue;
    if (!or_same_argument) {
      SR_RETURN_IF_ERROR(AddRule(ctx, syscall, action, conds, name, field));
      continue;
    }
    for (const scmp_arg_cmp& cond : conds)
      SR_RETURN_IF_ERROR(AddRule(ctx, syscall, action, {cond}, name, field));
  }
  return OkStatus();
}

Result<std::vector<sock_filter>> Export(scmp_filter_ctx ctx) {
  UniqueFd memfd(::memfd_create("seccomp-bpf", MFD_CLOEXEC));
  if (!memfd) return ErrnoStatus("creating a memfd for the seccomp program", errno);
  int rc = seccomp_export_bpf(ctx, memfd.get());
  if (rc != 0) return Internal(std::string("exporting the seccomp program: ") + std::strerror(-rc));
  if (::lseek(memfd.get(), 0, SEEK_SET) != 0) return ErrnoStatus("rewinding the seccomp program", errno);
  SR_ASSIGN_OR_RETURN(std::string bytes, ReadFd(memfd.get(), BPF_MAXINSNS * sizeof(sock_filter)));
  if (bytes.empty() || bytes.size() % sizeof(sock_filter) != 0) {
    return Internal("libseccomp exported a malformed program");
  }
  std::vector<sock_filter> program(bytes.size() / sizeof(sock_filter));
  std::memcpy(program.data(), bytes.data(), bytes.size());
  return program;
}

}  // namespace

Result<SeccompProgram> CompileSeccomp(const Json& linux_seccomp) {
  if (linux_seccomp.is_null()) return SeccompProgram();
  if (!linux_seccomp.is_object()) return InvalidArgument("linux.seccomp: must be an object");
  SR_ASSIGN_OR_RETURN(std::string default_name, StringField(linux_seccomp, "defaultAction", "defaultAction"));
  SR_ASSIGN_OR_RETURN(std::optional<std::uint64_t> default_errno,
                      UnsignedField(linux_seccomp, "defaultErrnoRet", "defaultErrnoRet"));
  SR_ASSIGN_OR_RETURN(std::uint32_t default_action,
                      ParseAction(default_name, default_errno, "defaultAction"));

  Filter filter(seccomp_init(default_action));
  if (!filter) return Internal("libseccomp refused to create a filter");
  if (auto arches = linux_seccomp.find("architectures");
      arches != linux_seccomp.end() && !arches->is_null()) {
    if (!arches->is_array()) return FieldError("architectures", "must be an array");
    for (std::size_t i = 0; i < arches->size(); ++i) {
      std::string field = "architectures[" + std::to_string(i) + "]";
      SR_ASSIGN_OR_RETURN(std::uint32_t arch, ParseArch((*arches)[i], field));
      int rc = seccomp_arch_add(filter.get(), arch);
      if (rc != 0 && rc != -EEXIST) return FieldError(field, std::string("adding it: ") + std::strerror(-rc));
    }
  }
  unsigned int flags = 0;
  if (auto list = linux_seccomp.find("flags"); list != linux_seccomp.end() && !list->is_null()) {
    if (!list->is_array()) return FieldError("flags", "must be an array");
    for (std::size_t i = 0; i < list->size(); ++i) {
      SR_ASSIGN_OR_RETURN(unsigned int flag, ParseFlag((*list)[i], "flags[" + std::to_string(i) + "]"));
      flags |= flag;
    }
  }
  if (auto rules = linux_seccomp.find("syscalls"); rules != linux_seccomp.end() && !rules->is_null()) {
    if (!rules->is_array()) return FieldError("syscalls", "must be an array");
    for (std::size_t i = 0; i < rules->size(); ++i) {
      SR_RETURN_IF_ERROR(
          AddSyscalls(filter.get(), (*rules)[i], default_action, "syscalls[" + std::to_string(i) + "]"));
    }
  }
  SR_ASSIGN_OR_RETURN(std::vector<sock_filter> program, Export(filter.get()));
  return SeccompProgram(std::move(program), flags);
}

Status SeccompProgram::Load() const {
  if (filter_.empty()) return OkStatus();
  sock_fprog prog{static_cast<unsigned short>(filter_.size()), const_cast<sock_filter*>(filter_.data())};
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags_, &prog) != 0) {
    return ErrnoStatus("loading the seccomp filter", errno);
  }
  return OkStatus();
}

}  // namespace sealroot::boot
