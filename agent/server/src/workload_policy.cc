#include "agent/server/workload_policy.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "boot/spec/process_spec.h"
#include "oci.pb.h"

namespace sealroot::agent {
namespace {

using nlohmann::json;

// containerd's and moby's default capability set (what runc runs a container with unless told
// otherwise).
constexpr std::array<std::string_view, 14> kDefaultCapabilities = {
    "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
    "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
    "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL",    "CAP_AUDIT_WRITE"};

// Files the CRI runtime bind-mounts into every container; their contents are the host's to
// give (name resolution, the pod's hostname, the termination message the container writes).
constexpr std::array<std::string_view, 4> kCriFiles = {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname",
                                                       "/dev/termination-log"};

// The runtime's own kernel filesystems: they carry no host data and cover nothing of the image.
struct KernelMount {
  std::string_view destination;
  std::string_view type;
};
constexpr std::array<KernelMount, 8> kKernelMounts = {{{"/proc", "proc"},
                                                       {"/dev", "tmpfs"},
                                                       {"/dev/pts", "devpts"},
                                                       {"/dev/shm", "tmpfs"},
                                                       {"/dev/mqueue", "mqueue"},
                                                       {"/sys", "sysfs"},
                                                       {"/sys/fs/cgroup", "cgroup"},
                                                       {"/sys/fs/cgroup", "cgroup2"}}};

// Character devices a container's device cgroup may allow (containerd's defaults): null, zero,
// full, random, urandom, tty, console, ptmx, and the pty slaves (136:*).
bool StandardCharDevice(std::int64_t major, std::int64_t minor) {
  if (major == 136) return true;
  if (major == 1) return minor == 3 || minor == 5 || minor == 7 || minor == 8 || minor == 9;
  if (major == 5) return minor == 0 || minor == 1 || minor == 2;
  return false;
}

std::string Quote(const std::vector<std::string>& argv) {
  return json(argv).dump();
}

template <typename Range>
std::vector<std::string> Strings(const Range& range) {
  return {range.begin(), range.end()};
}

std::string_view EnvName(std::string_view entry) {
  return entry.substr(0, entry.find('='));
}

// HOSTNAME, TERM and the Kubernetes service-link variables (FOO_SERVICE_HOST,
// FOO_SERVICE_PORT[_NAME], FOO_PORT[_443_TCP[_ADDR|_PORT|_PROTO]]): added by the runtime, they
// say where things are, not what runs.
bool RuntimeAddedVariable(std::string_view name) {
  if (name == "HOSTNAME" || name == "TERM") return true;
  if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
      })) {
    return false;
  }
  return name.ends_with("_SERVICE_HOST") || name.find("_PORT") != std::string_view::npos;
}

constexpr std::string_view kDefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

Status CheckEnv(const WorkloadPolicy& policy, const ImageRunConfig& image,
                const google::protobuf::RepeatedPtrField<std::string>& env) {
  const bool image_has_path = std::any_of(image.env.begin(), image.env.end(),
                                          [](const std::string& e) { return EnvName(e) == "PATH"; });
  for (const std::string& entry : env) {
    const std::string_view name = EnvName(entry);
    if (std::find(image.env.begin(), image.env.end(), entry) != image.env.end()) continue;
    if (!image_has_path && entry == kDefaultPath) continue;  // what the boot would set anyway
    if (RuntimeAddedVariable(name)) continue;
    const bool allowed = std::any_of(policy.env.begin(), policy.env.end(), [&](const std::string& rule) {
      return rule == entry || (rule.ends_with("=*") && EnvName(rule) == name);
    });
    if (!allowed) {
      return PermissionDenied("process.env: " + std::string(name) +
                              " is not the image's value and the workload policy does not allow it");
    }
  }
  return OkStatus();
}

Status CheckCwd(const WorkloadPolicy& policy, const ImageRunConfig& image, const std::string& cwd) {
  const std::string image_cwd = image.working_dir.empty() ? "/" : image.working_dir;
  if (cwd.empty() || cwd == image_cwd) return OkStatus();
  if (std::find(policy.cwd.begin(), policy.cwd.end(), cwd) != policy.cwd.end()) return OkStatus();
  return PermissionDenied("process.cwd: \"" + cwd + "\" is not the image's WorkingDir (\"" + image_cwd +
                          "\") and the workload policy does not allow it");
}

// The image's user when it is numeric ("" is root); nullopt for names, which only the sealed
// root's /etc/passwd can resolve.
std::optional<std::pair<std::uint32_t, std::optional<std::uint32_t>>> NumericImageUser(
    const std::string& user) {
  auto number = [](std::string_view text) -> std::optional<std::uint32_t> {
    if (text.empty() || text.size() > 9 || !std::all_of(text.begin(), text.end(), ::isdigit))
      return std::nullopt;
    return static_cast<std::uint32_t>(std::stoul(std::string(text)));
  };
  if (user.empty()) return std::pair{0u, std::optional<std::uint32_t>(0u)};
  const std::size_t colon = user.find(':');
  auto uid = number(std::string_view(user).substr(0, colon));
  if (!uid) return std::nullopt;
  if (colon == std::string::npos) return std::pair{*uid, std::optional<std::uint32_t>()};
  auto gid = number(std::string_view(user).substr(colon + 1));
  if (!gid) return std::nullopt;
  return std::pair{*uid, gid};
}

Status CheckUser(const WorkloadPolicy& policy, const ImageRunConfig& image, const ::grpc::Process& process) {
  if (!process.has_user()) return OkStatus();
  const ::grpc::User& user = process.user();
  const std::vector<std::uint32_t> groups(user.additionalgids().begin(), user.additionalgids().end());
  if (auto numeric = NumericImageUser(image.user);
      numeric && numeric->first == user.uid() && numeric->second && *numeric->second == user.gid()) {
    // Root may name any groups (it can join them anyway); anyone else only its own.
    if (user.uid() == 0 ||
        std::all_of(groups.begin(), groups.end(), [&](std::uint32_t g) { return g == user.gid(); })) {
      return OkStatus();
    }
  }
  for (const PolicyUser& allowed : policy.users) {
    if (allowed.uid != user.uid() || allowed.gid != user.gid()) continue;
    if (std::all_of(groups.begin(), groups.end(), [&](std::uint32_t g) {
          return g == allowed.gid || std::find(allowed.additional_gids.begin(), allowed.additional_gids.end(),
                                               g) != allowed.additional_gids.end();
        })) {
      return OkStatus();
    }
  }
  return PermissionDenied("process.user: " + std::to_string(user.uid()) + ":" + std::to_string(user.gid()) +
                          " is not the image's User (\"" + image.user +
                          "\") and the workload policy does not allow it");
}

Status CheckCapabilities(const WorkloadPolicy& policy, const ::grpc::Process& process) {
  if (!process.has_capabilities()) return OkStatus();
  const ::grpc::LinuxCapabilities& caps = process.capabilities();
  const std::pair<const char*, const google::protobuf::RepeatedPtrField<std::string>*> sets[] = {
      {"bounding", &caps.bounding()},
      {"effective", &caps.effective()},
      {"inheritable", &caps.inheritable()},
      {"permitted", &caps.permitted()},
      {"ambient", &caps.ambient()}};
  for (const auto& [name, set] : sets) {
    for (const std::string& cap : *set) {
      if (std::find(kDefaultCapabilities.begin(), kDefaultCapabilities.end(), cap) !=
              kDefaultCapabilities.end() ||
          std::find(policy.capabilities.begin(), policy.capabilities.end(), cap) !=
              policy.capabilities.end()) {
        continue;
      }
      return PermissionDenied(std::string("process.capabilities.") + name + ": " + cap +
                              " is beyond the default set and the workload policy does not allow it");
    }
  }
  return OkStatus();
}

Status CheckProcessFields(const WorkloadPolicy& policy, const ImageRunConfig& image,
                          const ::grpc::Process& process) {
  SR_RETURN_IF_ERROR(CheckEnv(policy, image, process.env()));
  SR_RETURN_IF_ERROR(CheckCwd(policy, image, process.cwd()));
  SR_RETURN_IF_ERROR(CheckUser(policy, image, process));
  return CheckCapabilities(policy, process);
}

// The /proc/<type-name> of a namespace type ("network" -> "net"); nullptr for unknown types.
const char* ProcName(std::string_view type) {
  static constexpr std::pair<std::string_view, const char*> kNames[] = {
      {"network", "net"}, {"ipc", "ipc"},   {"uts", "uts"},      {"pid", "pid"},
      {"mount", "mnt"},   {"user", "user"}, {"cgroup", "cgroup"}};
  for (const auto& [name, proc] : kNames) {
    if (name == type) return proc;
  }
  return nullptr;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Whether `path` has the shape of a pod namespace of `type`: another process's
// /proc/<pid>/ns/<name> (not PID 1's), or a named network namespace (CNI's).
bool PodNamespaceShape(std::string_view type, const std::string& path) {
  const char* proc = ProcName(type);
  if (proc == nullptr) return false;
  if (type == "network") {
    for (std::string_view dir : {"/run/netns/", "/var/run/netns/"}) {
      if (path.starts_with(dir)) {
        std::string_view name = std::string_view(path).substr(dir.size());
        return !name.empty() && name.find('/') == std::string_view::npos && name != "." && name != "..";
      }
    }
  }
  if (!path.starts_with("/proc/")) return false;
  std::string_view rest = std::string_view(path).substr(6);
  std::size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return false;
  std::string_view pid = rest.substr(0, slash);
  return AllDigits(pid) && pid != "1" && rest.substr(slash) == std::string("/ns/") + proc;
}

// Whether the namespace `path` names is the host's: PID 1's or the agent's own. A path that
// does not exist (yet) names none: the boot's setns at StartContainer fails on it.
bool HostNamespace(std::string_view type, const std::string& path) {
  const char* proc = ProcName(type);
  if (proc == nullptr) return true;
  struct stat joined {};
  if (::stat(path.c_str(), &joined) != 0) return false;
  for (const std::string& host : {std::string("/proc/1/ns/") + proc, std::string("/proc/self/ns/") + proc}) {
    struct stat own {};
    if (::stat(host.c_str(), &own) == 0 && own.st_dev == joined.st_dev && own.st_ino == joined.st_ino)
      return true;
  }
  return false;
}

// An empty list means "the agent's defaults" (filled with runc's); a given list must create
// the container's own pid, ipc and mount namespaces unless it joins ones allowed as above.
Status CheckNamespaces(const WorkloadPolicy& policy, const ::grpc::Linux& linux) {
  if (linux.namespaces().empty()) return OkStatus();
  for (std::string_view type : {"pid", "ipc", "mount"}) {
    auto it = std::find_if(linux.namespaces().begin(), linux.namespaces().end(),
                           [&](const ::grpc::LinuxNamespace& ns) { return ns.type() == type; });
    if (it == linux.namespaces().end()) {
      return PermissionDenied("linux.namespaces: no " + std::string(type) +
                              " namespace: the container would share the host's");
    }
  }
  for (const ::grpc::LinuxNamespace& ns : linux.namespaces()) {
    if (ns.path().empty()) continue;
    const std::string what = "linux.namespaces: the " + ns.type() + " namespace joins " + ns.path();
    if (ns.type() == "mount") return PermissionDenied(what + " instead of the container's own");
    auto listed = policy.namespaces.find(ns.type());
    if (listed != policy.namespaces.end() &&
        std::find(listed->second.begin(), listed->second.end(), ns.path()) != listed->second.end()) {
      continue;
    }
    const bool pod_type = ns.type() == "network" || ns.type() == "ipc" || ns.type() == "uts";
    if (!pod_type || !PodNamespaceShape(ns.type(), ns.path())) {
      return PermissionDenied(what +
                              ", which is not a pod namespace and the workload policy does not allow it");
    }
    if (HostNamespace(ns.type(), ns.path())) {
      return PermissionDenied(what +
                              ", which is the host's (or cannot be inspected), and the workload policy "
                              "does not allow it");
    }
  }
  return OkStatus();
}

// A limit against its bound: `given` nullopt when the spec leaves it out.
Status CheckBound(const char* field, std::optional<double> given, std::optional<double> bound, bool creating,
                  const std::string& unit) {
  if (!bound) return OkStatus();
  auto show = [](double v) {
    std::string text = std::to_string(v);
    text.erase(text.find_last_not_of('0') + 1);
    if (text.ends_with('.')) text.pop_back();
    return text;
  };
  if (!given) {
    if (!creating) return OkStatus();
    return PermissionDenied(std::string(field) + ": not set, and the workload policy bounds it to " +
                            show(*bound) + unit);
  }
  if (*given <= 0 || *given > *bound) {
    return PermissionDenied(std::string(field) + ": " +
                            (*given <= 0 ? std::string("unlimited") : show(*given) + unit) +
                            " is beyond the workload policy's bound of " + show(*bound) + unit);
  }
  return OkStatus();
}

Status CheckResources(const WorkloadPolicy& policy, const ::grpc::LinuxResources* r, bool creating) {
  const ResourceBounds& b = policy.resources;
  if (!b.any()) return OkStatus();
  std::optional<double> memory, pids, cpus;
  if (r && r->has_memory() && r->memory().limit() != 0) memory = static_cast<double>(r->memory().limit());
  if (r && r->has_pids() && r->pids().limit() != 0) pids = static_cast<double>(r->pids().limit());
  if (r && r->has_cpu() && (r->cpu().quota() != 0 || r->cpu().period() != 0)) {
    const double period = r->cpu().period() != 0 ? static_cast<double>(r->cpu().period()) : 100000.0;
    cpus = r->cpu().quota() > 0 ? static_cast<double>(r->cpu().quota()) / period : -1.0;
  }
  auto as_double = [](std::optional<std::int64_t> v) {
    return v ? std::optional<double>(static_cast<double>(*v)) : std::nullopt;
  };
  SR_RETURN_IF_ERROR(
      CheckBound("linux.resources.memory.limit", memory, as_double(b.memory), creating, " bytes"));
  SR_RETURN_IF_ERROR(CheckBound("linux.resources.pids.limit", pids, as_double(b.pids), creating, ""));
  return CheckBound("linux.resources.cpu.quota", cpus, b.cpus, creating, " CPUs");
}

Status CheckDevices(const ::grpc::Linux& linux) {
  if (!linux.devices().empty()) {
    const ::grpc::LinuxDevice& d = linux.devices(0);
    return PermissionDenied("linux.devices: " + d.path() + " (" + d.type() + " " + std::to_string(d.major()) +
                            ":" + std::to_string(d.minor()) + "): no host device may enter the container");
  }
  if (!linux.has_resources()) return OkStatus();
  for (const ::grpc::LinuxDeviceCgroup& rule : linux.resources().devices()) {
    if (!rule.allow()) continue;
    if (rule.type() == "c" && StandardCharDevice(rule.major(), rule.minor())) continue;
    return PermissionDenied("linux.resources.devices: allows " + (rule.type().empty() ? "a" : rule.type()) +
                            " " + std::to_string(rule.major()) + ":" + std::to_string(rule.minor()) + " " +
                            rule.access() + " (privileged-style device access)");
  }
  return OkStatus();
}

Status CheckSeccomp(const ::grpc::Linux& linux) {
  if (linux.has_seccomp() && linux.seccomp().defaultaction() == "SCMP_ACT_ALLOW" &&
      linux.seccomp().syscalls().empty()) {
    return PermissionDenied("linux.seccomp: an unconfined profile (privileged-style)");
  }
  return OkStatus();
}

// "/a/./b/" -> "/a/b"; nullopt for ".." (a destination must not climb).
std::optional<std::string> CleanDestination(std::string_view path) {
  std::string out;
  std::size_t i = 0;
  while (i < path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view part = path.substr(i, j - i);
    if (part == "..") return std::nullopt;
    if (!part.empty() && part != ".") out += "/" + std::string(part);
    i = j + 1;
  }
  return out.empty() ? "/" : out;
}

Status CheckMounts(const WorkloadPolicy& policy, const ::grpc::Spec& spec) {
  for (int i = 0; i < spec.mounts_size(); ++i) {
    const ::grpc::Mount& m = spec.mounts(i);
    const std::string where = "mounts[" + std::to_string(i) + "]";
    std::optional<std::string> dest = CleanDestination(m.destination());
    if (!dest) return PermissionDenied(where + ": destination " + m.destination() + " climbs with ..");
    if (*dest == "/") return PermissionDenied(where + ": a mount over the container's sealed root");
    if (std::find(policy.volumes.begin(), policy.volumes.end(), *dest) != policy.volumes.end()) continue;
    const bool bind =
        m.type() == "bind" || std::any_of(m.options().begin(), m.options().end(),
                                          [](const auto& o) { return o == "bind" || o == "rbind"; });
    if (bind) {
      if (std::find(kCriFiles.begin(), kCriFiles.end(), *dest) != kCriFiles.end()) continue;
      return PermissionDenied(where + ": bind mount of " + m.source() + " on " + *dest +
                              " (neither a standard runtime file nor a volume the workload policy declares)");
    }
    if (std::any_of(kKernelMounts.begin(), kKernelMounts.end(),
                    [&](const KernelMount& k) { return k.destination == *dest && k.type == m.type(); })) {
      continue;
    }
    return PermissionDenied(where + ": " + m.type() + " mount on " + *dest +
                            " would cover the sealed image (not a runtime mount nor a declared volume)");
  }
  return OkStatus();
}

Result<std::vector<std::string>> StringList(const json& value, std::string_view where) {
  if (!value.is_array()) return InvalidArgument(std::string(where) + ": expected an array of strings");
  std::vector<std::string> out;
  for (const json& item : value) {
    if (!item.is_string() || item.get<std::string>().find('\0') != std::string::npos)
      return InvalidArgument(std::string(where) + ": expected strings without NUL");
    out.push_back(item.get<std::string>());
  }
  return out;
}

Result<std::vector<std::vector<std::string>>> ArgvList(const json& value, std::string_view where) {
  if (!value.is_array()) return InvalidArgument(std::string(where) + ": expected an array of argv arrays");
  std::vector<std::vector<std::string>> out;
  for (const json& argv : value) {
    SR_ASSIGN_OR_RETURN(std::vector<std::string> list, StringList(argv, where));
    if (list.empty()) return InvalidArgument(std::string(where) + ": an argv is empty");
    out.push_back(std::move(list));
  }
  return out;
}

Status ParsePolicy(const json& doc, WorkloadPolicy& policy) {
  if (!doc.is_object()) return InvalidArgument("workload: expected a JSON object");
  static const std::set<std::string, std::less<>> kKeys = {
      "args", "env", "cwd", "users", "volumes", "capabilities", "exec", "namespaces", "resources"};
  for (const auto& [key, value] : doc.items()) {
    if (!kKeys.contains(key)) return InvalidArgument("workload: unknown key \"" + key + "\"");
  }
  if (doc.contains("args")) {
    SR_ASSIGN_OR_RETURN(policy.args, ArgvList(doc["args"], "workload.args"));
  }
  if (doc.contains("exec")) {
    SR_ASSIGN_OR_RETURN(policy.exec, ArgvList(doc["exec"], "workload.exec"));
  }
  if (doc.contains("env")) {
    SR_ASSIGN_OR_RETURN(policy.env, StringList(doc["env"], "workload.env"));
  }
  for (const std::string& entry : policy.env) {
    if (entry.find('=') == std::string::npos || entry.front() == '=')
      return InvalidArgument("workload.env: expected NAME=VALUE or NAME=*, got \"" + entry + "\"");
  }
  if (doc.contains("cwd")) {
    SR_ASSIGN_OR_RETURN(policy.cwd, StringList(doc["cwd"], "workload.cwd"));
  }
  if (doc.contains("volumes")) {
    SR_ASSIGN_OR_RETURN(policy.volumes, StringList(doc["volumes"], "workload.volumes"));
  }
  for (std::string& path : policy.volumes) {
    std::optional<std::string> clean = CleanDestination(path);
    if (!path.starts_with('/') || !clean || *clean == "/")
      return InvalidArgument("workload.volumes: expected an absolute path other than /, got \"" + path +
                             "\"");
    path = *clean;
  }
  for (const std::string& path : policy.cwd) {
    if (!path.starts_with('/'))
      return InvalidArgument("workload.cwd: expected absolute paths, got \"" + path + "\"");
  }
  if (doc.contains("capabilities")) {
    SR_ASSIGN_OR_RETURN(policy.capabilities, StringList(doc["capabilities"], "workload.capabilities"));
  }
  for (const std::string& cap : policy.capabilities) {
    if (!cap.starts_with("CAP_") || cap.size() < 5 ||
        !std::all_of(cap.begin(), cap.end(), [](char c) { return (c >= 'A' && c <= 'Z') || c == '_'; })) {
      return InvalidArgument("workload.capabilities: not a capability name: \"" + cap + "\"");
    }
  }
  if (doc.contains("namespaces")) {
    if (!doc["namespaces"].is_object()) return InvalidArgument("workload.namespaces: expected an object");
    for (const auto& [type, paths] : doc["namespaces"].items()) {
      if (ProcName(type) == nullptr || type == "mount")
        return InvalidArgument("workload.namespaces: not a namespace type a container may join: \"" + type +
                               "\"");
      SR_ASSIGN_OR_RETURN(policy.namespaces[type], StringList(paths, "workload.namespaces." + type));
      for (const std::string& path : policy.namespaces[type]) {
        if (!path.starts_with('/'))
          return InvalidArgument("workload.namespaces." + type + ": expected absolute paths, got \"" + path +
                                 "\"");
      }
    }
  }
  if (doc.contains("resources")) {
    const json& r = doc["resources"];
    if (!r.is_object()) return InvalidArgument("workload.resources: expected an object");
    for (const auto& [key, value] : r.items()) {
      if (key != "memory" && key != "pids" && key != "cpus")
        return InvalidArgument("workload.resources: unknown key \"" + key + "\"");
      if (!value.is_number() || value.get<double>() <= 0)
        return InvalidArgument("workload.resources." + key + ": expected a positive number");
    }
    if (r.contains("memory")) policy.resources.memory = r["memory"].get<std::int64_t>();
    if (r.contains("pids")) policy.resources.pids = r["pids"].get<std::int64_t>();
    if (r.contains("cpus")) policy.resources.cpus = r["cpus"].get<double>();
  }
  if (doc.contains("users")) {
    if (!doc["users"].is_array()) return InvalidArgument("workload.users: expected an array");
    for (const json& item : doc["users"]) {
      if (!item.is_object() || !item.contains("uid") || !item.contains("gid"))
        return InvalidArgument("workload.users: each user needs uid and gid");
      for (const auto& [key, value] : item.items()) {
        if (key != "uid" && key != "gid" && key != "additionalGids")
          return InvalidArgument("workload.users: unknown key \"" + key + "\"");
      }
      policy.users.push_back({item["uid"].get<std::uint32_t>(), item["gid"].get<std::uint32_t>(),
                              item.value("additionalGids", std::vector<std::uint32_t>{})});
    }
  }
  return OkStatus();
}

}  // namespace

Result<ImageRunConfig> ParseImageRunConfig(std::string_view config_json) {
  if (config_json.empty()) return ImageRunConfig{};
  SR_ASSIGN_OR_RETURN(boot::ImageProcess image, boot::ParseImageConfig(config_json));
  return ImageRunConfig{std::move(image.entrypoint), std::move(image.cmd), std::move(image.env),
                        std::move(image.working_dir), std::move(image.user)};
}

Result<WorkloadPolicy> ParseWorkloadPolicy(std::string_view json_text) {
  json doc = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgument("workload: not valid JSON");
  WorkloadPolicy policy;
  try {
    SR_RETURN_IF_ERROR(ParsePolicy(doc, policy));
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("workload: ") + e.what());
  }
  return policy;
}

Status CheckContainerSpec(const WorkloadPolicy& policy, const ImageRunConfig& image,
                          const ::grpc::Spec& spec) {
  const ::grpc::Process& process = spec.process();
  std::vector<std::string> args = Strings(process.args());
  std::vector<std::string> image_args = image.entrypoint;
  image_args.insert(image_args.end(), image.cmd.begin(), image.cmd.end());
  if (!args.empty() && args != image_args &&
      std::find(policy.args.begin(), policy.args.end(), args) == policy.args.end()) {
    return PermissionDenied("process.args: " + Quote(args) + " is not the image's command " +
                            Quote(image_args) + " and the workload policy does not allow it");
  }
  SR_RETURN_IF_ERROR(CheckProcessFields(policy, image, process));
  SR_RETURN_IF_ERROR(CheckMounts(policy, spec));
  SR_RETURN_IF_ERROR(CheckResources(
      policy, spec.has_linux() && spec.linux().has_resources() ? &spec.linux().resources() : nullptr,
      /*creating=*/true));
  if (!spec.has_linux()) return OkStatus();
  SR_RETURN_IF_ERROR(CheckNamespaces(policy, spec.linux()));
  SR_RETURN_IF_ERROR(CheckDevices(spec.linux()));
  return CheckSeccomp(spec.linux());
}

Status CheckResourceUpdate(const WorkloadPolicy& policy, const ::grpc::LinuxResources& resources) {
  if (!resources.devices().empty()) {
    return PermissionDenied("linux.resources.devices: device rules are fixed when the container is created");
  }
  return CheckResources(policy, &resources, /*creating=*/false);
}

Status CheckExecProcess(const WorkloadPolicy& policy, const ImageRunConfig& image,
                        const ::grpc::Process& process) {
  std::vector<std::string> args = Strings(process.args());
  if (args.empty()) return InvalidArgument("process.args is empty");
  if (std::find(policy.exec.begin(), policy.exec.end(), args) == policy.exec.end()) {
    return PermissionDenied("process.args: exec of " + Quote(args) +
                            " is not a command the workload policy lists");
  }
  return CheckProcessFields(policy, image, process);
}

}  // namespace sealroot::agent
