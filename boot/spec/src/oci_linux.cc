#include "boot/spec/src/oci_linux.h"

#include <linux/capability.h>

#include <array>
#include <string_view>
#include <utility>

#include "boot/spec/src/spec_json.h"

namespace sealroot::boot {
namespace {

using namespace spec_json;

constexpr std::array<std::string_view, 41> kCapabilityNames = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};

constexpr std::array<std::string_view, 7> kNamespaceTypes = {"pid", "network", "mount", "ipc",
                                                             "uts", "user",    "cgroup"};

constexpr std::array<std::string_view, 9> kPropagations = {
    "", "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable"};

template <std::size_t N>
bool OneOf(const std::array<std::string_view, N>& known, std::string_view value) {
  for (std::string_view k : known) {
    if (k == value) return true;
  }
  return false;
}

Result<std::vector<int>> CapabilitySet(const json& caps, std::string_view key) {
  const std::string field = "process.capabilities." + std::string(key);
  SR_ASSIGN_OR_RETURN(std::vector<std::string> names, GetStrings(caps, key, field));
  std::vector<int> out;
  for (const std::string& name : names) {
    std::optional<int> cap = CapabilityFromName(name);
    if (!cap) return FieldError(field, "unknown capability '" + name + "'");
    out.push_back(*cap);
  }
  return out;
}

Result<std::vector<IdMapping>> ParseIdMappings(const json& linux, std::string_view key) {
  const std::string field = "linux." + std::string(key);
  std::vector<IdMapping> out;
  const json* list = Find(linux, key);
  if (list == nullptr) return out;
  if (!list->is_array()) return FieldError(field, "must be an array");
  for (const json& item : *list) {
    if (!item.is_object()) return FieldError(field, "entries must be objects");
    IdMapping m;
    SR_ASSIGN_OR_RETURN(m.container_id, GetUnsigned<std::uint32_t>(item, "containerID", field));
    SR_ASSIGN_OR_RETURN(m.host_id, GetUnsigned<std::uint32_t>(item, "hostID", field));
    SR_ASSIGN_OR_RETURN(m.size, GetUnsigned<std::uint32_t>(item, "size", field));
    if (m.size == 0) return FieldError(field, "size must be positive");
    out.push_back(m);
  }
  return out;
}

Result<std::vector<SpecNamespace>> ParseNamespaces(const json& list) {
  if (!list.is_array()) return FieldError("linux.namespaces", "must be an array");
  std::vector<SpecNamespace> out;
  for (const json& item : list) {
    if (!item.is_object()) return FieldError("linux.namespaces", "entries must be objects");
    SpecNamespace ns;
    SR_ASSIGN_OR_RETURN(ns.type, GetString(item, "type", "linux.namespaces.type"));
    SR_ASSIGN_OR_RETURN(ns.path, GetString(item, "path", "linux.namespaces.path"));
    if (!OneOf(kNamespaceTypes, ns.type)) {
      return FieldError("linux.namespaces.type", "unsupported namespace '" + ns.type + "'");
    }
    for (const SpecNamespace& seen : out) {
      if (seen.type == ns.type) return FieldError("linux.namespaces", "'" + ns.type + "' listed twice");
    }
    if (!ns.path.empty() && ns.path[0] != '/') return FieldError("linux.namespaces.path", "must be absolute");
    out.push_back(std::move(ns));
  }
  return out;
}

Result<std::vector<SpecDevice>> ParseDevices(const json& list) {
  if (!list.is_array()) return FieldError("linux.devices", "must be an array");
  std::vector<SpecDevice> out;
  for (const json& item : list) {
    if (!item.is_object()) return FieldError("linux.devices", "entries must be objects");
    SpecDevice d;
    SR_ASSIGN_OR_RETURN(d.path, GetString(item, "path", "linux.devices.path"));
    if (d.path.rfind("/dev/", 0) != 0 || d.path.find("/../") != std::string::npos ||
        d.path.ends_with("/..")) {
      return FieldError("linux.devices.path", "'" + d.path + "' is not below /dev");
    }
    SR_ASSIGN_OR_RETURN(std::string type, GetString(item, "type", "linux.devices.type"));
    if (type.size() != 1 || std::string_view("cubp").find(type[0]) == std::string_view::npos) {
      return FieldError("linux.devices.type", "must be c, u, b or p");
    }
    d.type = type[0];
    SR_ASSIGN_OR_RETURN(d.major, GetUnsigned<std::uint32_t>(item, "major", "linux.devices.major"));
    SR_ASSIGN_OR_RETURN(d.minor, GetUnsigned<std::uint32_t>(item, "minor", "linux.devices.minor"));
    if (Find(item, "fileMode")) {
      SR_ASSIGN_OR_RETURN(d.file_mode,
                          GetUnsigned<std::uint32_t>(item, "fileMode", "linux.devices.fileMode"));
    }
    if (Find(item, "uid")) {
      SR_ASSIGN_OR_RETURN(d.uid, GetUnsigned<std::uint32_t>(item, "uid", "linux.devices.uid"));
    }
    if (Find(item, "gid")) {
      SR_ASSIGN_OR_RETURN(d.gid, GetUnsigned<std::uint32_t>(item, "gid", "linux.devices.gid"));
    }
    out.push_back(std::move(d));
  }
  return out;
}

Result<std::vector<std::string>> AbsolutePaths(const json& linux, std::string_view key) {
  const std::string field = "linux." + std::string(key);
  SR_ASSIGN_OR_RETURN(std::vector<std::string> out, GetStrings(linux, key, field));
  for (const std::string& path : out) {
    if (path.empty() || path[0] != '/') return FieldError(field, "'" + path + "' is not absolute");
  }
  return out;
}

}  // namespace

std::optional<int> CapabilityFromName(std::string_view name) {
  for (std::size_t i = 0; i < kCapabilityNames.size(); ++i) {
    if (kCapabilityNames[i] == name) return static_cast<int>(i);
  }
  return std::nullopt;
}

std::string_view CapabilityName(int cap) {
  if (cap < 0 || static_cast<std::size_t>(cap) >= kCapabilityNames.size()) return "";
  return kCapabilityNames[static_cast<std::size_t>(cap)];
}

Result<Capabilities> ParseCapabilities(const json& caps) {
  if (!caps.is_object()) return FieldError("process.capabilities", "must be an object");
  Capabilities out;
  SR_ASSIGN_OR_RETURN(out.bounding, CapabilitySet(caps, "bounding"));
  SR_ASSIGN_OR_RETURN(out.effective, CapabilitySet(caps, "effective"));
  SR_ASSIGN_OR_RETURN(out.inheritable, CapabilitySet(caps, "inheritable"));
  SR_ASSIGN_OR_RETURN(out.permitted, CapabilitySet(caps, "permitted"));
  SR_ASSIGN_OR_RETURN(out.ambient, CapabilitySet(caps, "ambient"));
  return out;
}

Result<std::vector<SpecMount>> ParseMounts(const json& mounts) {
  if (!mounts.is_array()) return FieldError("mounts", "must be an array");
  std::vector<SpecMount> out;
  for (const json& item : mounts) {
    if (!item.is_object()) return FieldError("mounts", "entries must be objects");
    SpecMount m;
    SR_ASSIGN_OR_RETURN(m.destination, GetString(item, "destination", "mounts.destination"));
    if (m.destination.empty() || m.destination[0] != '/') {
      return FieldError("mounts.destination", "'" + m.destination + "' is not absolute");
    }
    SR_ASSIGN_OR_RETURN(m.type, GetString(item, "type", "mounts.type"));
    SR_ASSIGN_OR_RETURN(m.source, GetString(item, "source", "mounts.source"));
    SR_ASSIGN_OR_RETURN(m.options, GetStrings(item, "options", "mounts.options"));
    out.push_back(std::move(m));
  }
  return out;
}

Result<LinuxSpec> ParseLinux(const json& linux) {
  if (!linux.is_object()) return FieldError("linux", "must be an object");
  LinuxSpec out;
  if (const json* ns = Find(linux, "namespaces")) {
    SR_ASSIGN_OR_RETURN(out.namespaces, ParseNamespaces(*ns));
  }
  SR_ASSIGN_OR_RETURN(out.uid_mappings, ParseIdMappings(linux, "uidMappings"));
  SR_ASSIGN_OR_RETURN(out.gid_mappings, ParseIdMappings(linux, "gidMappings"));
  if (const json* sysctl = Find(linux, "sysctl")) {
    if (!sysctl->is_object()) return FieldError("linux.sysctl", "must be an object");
    for (const auto& [key, value] : sysctl->items()) {
      if (!value.is_string()) return FieldError("linux.sysctl", key + ": must be a string");
      const std::string text = value.get<std::string>();
      if (key.empty() || key.find('\0') != std::string::npos || key.find("..") != std::string::npos ||
          key[0] == '.' || key[0] == '/' || text.find('\0') != std::string::npos) {
        return FieldError("linux.sysctl", "'" + key + "' is not a sysctl name");
      }
      out.sysctl.emplace_back(key, text);
    }
  }
  if (const json* resources = Find(linux, "resources")) out.resources_json = resources->dump();
  if (const json* seccomp = Find(linux, "seccomp")) out.seccomp_json = seccomp->dump();
  SR_ASSIGN_OR_RETURN(out.cgroups_path, GetString(linux, "cgroupsPath", "linux.cgroupsPath"));
  SR_ASSIGN_OR_RETURN(out.rootfs_propagation,
                      GetString(linux, "rootfsPropagation", "linux.rootfsPropagation"));
  if (!OneOf(kPropagations, out.rootfs_propagation)) {
    return FieldError("linux.rootfsPropagation", "unknown propagation '" + out.rootfs_propagation + "'");
  }
  SR_ASSIGN_OR_RETURN(out.masked_paths, AbsolutePaths(linux, "maskedPaths"));
  SR_ASSIGN_OR_RETURN(out.readonly_paths, AbsolutePaths(linux, "readonlyPaths"));
  if (const json* devices = Find(linux, "devices")) {
    SR_ASSIGN_OR_RETURN(out.devices, ParseDevices(*devices));
  }
  return out;
}

Status RefuseUnsupported(const json& doc) {
  auto refuse_nonempty = [](const json* value, std::string_view field) -> Status {
    if (value != nullptr && !value->empty()) {
      return FieldError(field,
                        "not supported by sealroot-boot (design/boot.md), refused rather than ignored");
    }
    return OkStatus();
  };
  SR_RETURN_IF_ERROR(refuse_nonempty(Find(doc, "hooks"), "hooks"));
  if (const json* process = Find(doc, "process"); process != nullptr && process->is_object()) {
    SR_RETURN_IF_ERROR(refuse_nonempty(Find(*process, "apparmorProfile"), "process.apparmorProfile"));
    SR_RETURN_IF_ERROR(refuse_nonempty(Find(*process, "selinuxLabel"), "process.selinuxLabel"));
  }
  if (const json* linux = Find(doc, "linux"); linux != nullptr && linux->is_object()) {
    SR_RETURN_IF_ERROR(refuse_nonempty(Find(*linux, "mountLabel"), "linux.mountLabel"));
    SR_RETURN_IF_ERROR(refuse_nonempty(Find(*linux, "intelRdt"), "linux.intelRdt"));
    SR_RETURN_IF_ERROR(refuse_nonempty(Find(*linux, "personality"), "linux.personality"));
  }
  return OkStatus();
}

}  // namespace sealroot::boot
