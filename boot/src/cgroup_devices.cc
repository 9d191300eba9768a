#include "boot/src/cgroup_devices.h"

#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

#include "base/fd.h"
#include "boot/src/cgroup_files.h"

namespace sealroot::boot {
namespace {

using Json = nlohmann::json;

// What runc adds after the spec's rules: mknod of any device, the standard character devices,
// ptys and tun.
const DeviceRule kRuncDefaultRules[] = {
    {true, 'c', DeviceRule::kAny, DeviceRule::kAny, "m"},
    {true, 'b', DeviceRule::kAny, DeviceRule::kAny, "m"},
    {true, 'c', 1, 3, "rwm"},                   // null
    {true, 'c', 1, 8, "rwm"},                   // random
    {true, 'c', 1, 7, "rwm"},                   // full
    {true, 'c', 5, 0, "rwm"},                   // tty
    {true, 'c', 1, 5, "rwm"},                   // zero
    {true, 'c', 1, 9, "rwm"},                   // urandom
    {true, 'c', 136, DeviceRule::kAny, "rwm"},  // pts
    {true, 'c', 5, 2, "rwm"},                   // ptmx
    {true, 'c', 10, 200, "rwm"},                // tun
};

const Json* Member(const Json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

Status FieldError(const std::string& field, const std::string& what) {
  return InvalidArgument("linux.resources." + field + ": " + what);
}

Result<DeviceRule> ParseRule(const Json& rule, const std::string& field) {
  if (!rule.is_object()) return FieldError(field, "must be an object");
  DeviceRule out;
  const Json* allow = Member(rule, "allow");
  if (!allow || !allow->is_boolean()) return FieldError(field + ".allow", "must be a boolean");
  out.allow = allow->get<bool>();
  if (const Json* type = Member(rule, "type")) {
    std::string kind = type->is_string() ? type->get<std::string>() : "";
    if (kind.size() != 1 || std::string_view("abc").find(kind[0]) == std::string_view::npos) {
      return FieldError(field + ".type", "must be a, b or c");
    }
    out.type = kind[0];
  }
  for (auto [key, number] : {std::pair{"major", &out.major}, std::pair{"minor", &out.minor}}) {
    const Json* value = Member(rule, key);
    if (!value) continue;
    if (!value->is_number_integer()) return FieldError(field + "." + key, "must be an integer");
    *number = value->get<std::int64_t>();
  }
  if (const Json* access = Member(rule, "access")) {
    std::string letters = access->is_string() ? access->get<std::string>() : "";
    if (letters.empty() || letters.find_first_not_of("rwm") != std::string::npos) {
      return FieldError(field + ".access", "must be made of r, w and m");
    }
    out.access = letters;
  }
  return out;
}

// Each device node the spec creates is usable ("rwm"), as runc allows it.
Status AddNodeRules(const Json& linux_devices, std::vector<DeviceRule>& rules) {
  if (linux_devices.is_null()) return OkStatus();
  if (!linux_devices.is_array()) return InvalidArgument("linux.devices: must be an array");
  for (std::size_t i = 0; i < linux_devices.size(); ++i) {
    const Json& device = linux_devices[i];
    std::string field = "linux.devices[" + std::to_string(i) + "]";
    const Json* type = device.is_object() ? Member(device, "type") : nullptr;
    const Json* major = device.is_object() ? Member(device, "major") : nullptr;
    const Json* minor = device.is_object() ? Member(device, "minor") : nullptr;
    if (!type || !type->is_string() || !major || !major->is_number_integer() || !minor ||
        !minor->is_number_integer()) {
      return InvalidArgument(field + ": needs type, major and minor");
    }
    std::string kind = type->get<std::string>();
    if (kind == "p") continue;  // a FIFO is no device to the devices controller
    if (kind != "c" && kind != "u" && kind != "b")
      return InvalidArgument(field + ".type: must be c, u, b or p");
    rules.push_back(
        {true, kind == "b" ? 'b' : 'c', major->get<std::int64_t>(), minor->get<std::int64_t>(), "rwm"});
  }
  return OkStatus();
}

std::string DeviceNumber(std::int64_t n) {
  return n < 0 ? "*" : std::to_string(n);
}

// ---- the v2 program ----------------------------------------------------------------------

bpf_insn Insn(std::uint8_t code, std::uint8_t dst, std::uint8_t src, std::int16_t off, std::int32_t imm) {
  bpf_insn insn{};
  insn.code = code;
  insn.dst_reg = dst & 0xf;
  insn.src_reg = src & 0xf;
  insn.off = off;
  insn.imm = imm;
  return insn;
}

std::uint32_t AccessBits(const std::string& access) {
  std::uint32_t bits = 0;
  if (access.find('m') != std::string::npos) bits |= BPF_DEVCG_ACC_MKNOD;
  if (access.find('r') != std::string::npos) bits |= BPF_DEVCG_ACC_READ;
  if (access.find('w') != std::string::npos) bits |= BPF_DEVCG_ACC_WRITE;
  return bits;
}

// Registers: r2 device type, r3 requested access, r4 major, r5 minor (r1, the context, is free
// once they are loaded). One block per rule, the last rule first: the first block that matches
// answers; none matching answers the default.
std::vector<bpf_insn> DeviceProgram(const std::vector<DeviceRule>& rules) {
  // A type 'a' rule resets everything before it (v1's "a"): it sets the default.
  std::size_t first = 0;
  bool default_allow = false;
  for (std::size_t i = 0; i < rules.size(); ++i) {
    if (rules[i].type == 'a') {
      first = i + 1;
      default_allow = rules[i].allow;
    }
  }
  std::vector<bpf_insn> program = {
      Insn(BPF_LDX | BPF_MEM | BPF_W, 2, 1, offsetof(bpf_cgroup_dev_ctx, access_type), 0),
      Insn(BPF_ALU | BPF_MOV | BPF_X, 3, 2, 0, 0),
      Insn(BPF_ALU | BPF_RSH | BPF_K, 3, 0, 0, 16),
      Insn(BPF_ALU | BPF_AND | BPF_K, 2, 0, 0, 0xffff),
      Insn(BPF_LDX | BPF_MEM | BPF_W, 4, 1, offsetof(bpf_cgroup_dev_ctx, major), 0),
      Insn(BPF_LDX | BPF_MEM | BPF_W, 5, 1, offsetof(bpf_cgroup_dev_ctx, minor), 0),
  };
  for (std::size_t i = rules.size(); i > first; --i) {
    const DeviceRule& rule = rules[i - 1];
    std::vector<bpf_insn> tests;  // each jumps to the next block when the rule does not match
    tests.push_back(Insn(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 0,
                         rule.type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR));
    std::uint32_t access = AccessBits(rule.access);
    if (access != (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE)) {
      // Matches only when the rule covers every access requested: (r3 & access) == r3.
      tests.push_back(Insn(BPF_ALU | BPF_MOV | BPF_X, 1, 3, 0, 0));
      tests.push_back(Insn(BPF_ALU | BPF_AND | BPF_K, 1, 0, 0, static_cast<std::int32_t>(access)));
      tests.push_back(Insn(BPF_JMP | BPF_JNE | BPF_X, 1, 3, 0, 0));
    }
    if (rule.major != DeviceRule::kAny) {
      tests.push_back(Insn(BPF_JMP | BPF_JNE | BPF_K, 4, 0, 0, static_cast<std::int32_t>(rule.major)));
    }
    if (rule.minor != DeviceRule::kAny) {
      tests.push_back(Insn(BPF_JMP | BPF_JNE | BPF_K, 5, 0, 0, static_cast<std::int32_t>(rule.minor)));
    }
    // Offsets are relative to the next instruction; the block ends with "r0 = verdict; exit".
    for (std::size_t t = 0; t < tests.size(); ++t) {
      if (BPF_CLASS(tests[t].code) == BPF_JMP)
        tests[t].off = static_cast<std::int16_t>(tests.size() - t - 1 + 2);
    }
    program.insert(program.end(), tests.begin(), tests.end());
    program.push_back(Insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, rule.allow ? 1 : 0));
    program.push_back(Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  }
  program.push_back(Insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, default_allow ? 1 : 0));
  program.push_back(Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  return program;
}

long Bpf(int command, bpf_attr& attr) {
  return ::syscall(SYS_bpf, command, &attr, sizeof(attr));
}

}  // namespace

Result<std::vector<DeviceRule>> DeviceRules(const Json& resources, const Json& linux_devices) {
  std::vector<DeviceRule> rules;
  const Json* listed = resources.is_object() ? Member(resources, "devices") : nullptr;
  if (listed && !listed->is_array()) return FieldError("devices", "must be an array");
  for (std::size_t i = 0; listed && i < listed->size(); ++i) {
    SR_ASSIGN_OR_RETURN(DeviceRule rule, ParseRule((*listed)[i], "devices[" + std::to_string(i) + "]"));
    rules.push_back(rule);
  }
  rules.insert(rules.end(), std::begin(kRuncDefaultRules), std::end(kRuncDefaultRules));
  SR_RETURN_IF_ERROR(AddNodeRules(linux_devices, rules));
  return rules;
}

Status ApplyDeviceRulesV1(const std::string& dir, const std::vector<DeviceRule>& rules) {
  SR_RETURN_IF_ERROR_CTX(WriteCgroupFile(dir, "devices.deny", "a"), "linux.resources.devices");
  for (const DeviceRule& rule : rules) {
    std::string line = rule.type == 'a' ? "a"
                                        : std::string(1, rule.type) + " " + DeviceNumber(rule.major) + ":" +
                                              DeviceNumber(rule.minor) + " " + rule.access;
    SR_RETURN_IF_ERROR_CTX(WriteCgroupFile(dir, rule.allow ? "devices.allow" : "devices.deny", line),
                           "linux.resources.devices");
  }
  return OkStatus();
}

Status AttachDeviceFilter(const std::string& dir, const std::vector<DeviceRule>& rules) {
  std::vector<bpf_insn> program = DeviceProgram(rules);
  static constexpr char kLicense[] = "Apache-2.0";
  bpf_attr load{};
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = reinterpret_cast<std::uintptr_t>(program.data());
  load.insn_cnt = static_cast<std::uint32_t>(program.size());
  load.license = reinterpret_cast<std::uintptr_t>(kLicense);
  UniqueFd prog(static_cast<int>(Bpf(BPF_PROG_LOAD, load)));
  if (!prog) return ErrnoStatus("loading the device filter program", errno);
  UniqueFd cgroup(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cgroup) return ErrnoStatus("opening cgroup " + dir, errno);
  bpf_attr attach{};
  attach.target_fd = static_cast<std::uint32_t>(cgroup.get());
  attach.attach_bpf_fd = static_cast<std::uint32_t>(prog.get());
  attach.attach_type = BPF_CGROUP_DEVICE;
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  // The attachment lives as long as the cgroup; the descriptors are not needed after this.
  if (Bpf(BPF_PROG_ATTACH, attach) != 0) return ErrnoStatus("attaching the device filter to " + dir, errno);
  return OkStatus();
}

}  // namespace sealroot::boot
