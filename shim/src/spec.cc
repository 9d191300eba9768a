#include "shim/spec.h"

#include <algorithm>
#include <stdexcept>

namespace sealroot::shim {
namespace {

using nlohmann::json;

// Accessors that tolerate absent keys and nulls (Go's omitempty), refusing wrong types.
const json& Member(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

template <typename T>
T Value(const json& object, const char* key, T fallback = T{}) {
  const json& v = Member(object, key);
  return v.is_null() ? fallback : v.get<T>();
}

// An array member (absent or null: empty); any other type is malformed.
const json& Array(const json& object, const char* key) {
  static const json kEmpty = json::array();
  const json& v = Member(object, key);
  if (v.is_null()) return kEmpty;
  if (!v.is_array()) throw std::invalid_argument(std::string(key) + ": expected an array");
  return v;
}

template <typename Field>
void Strings(const json& object, const char* key, Field* out) {
  for (const json& item : Array(object, key)) out->Add(item.get<std::string>());
}

void Capabilities(const json& in, ::grpc::LinuxCapabilities* out) {
  Strings(in, "bounding", out->mutable_bounding());
  Strings(in, "effective", out->mutable_effective());
  Strings(in, "inheritable", out->mutable_inheritable());
  Strings(in, "permitted", out->mutable_permitted());
  Strings(in, "ambient", out->mutable_ambient());
}

void Resources(const json& in, ::grpc::LinuxResources* out) {
  for (const json& d : Array(in, "devices")) {
    auto* device = out->add_devices();
    device->set_allow(Value<bool>(d, "allow"));
    device->set_type(Value<std::string>(d, "type"));
    device->set_major(Value<std::int64_t>(d, "major", -1));
    device->set_minor(Value<std::int64_t>(d, "minor", -1));
    device->set_access(Value<std::string>(d, "access"));
  }
  if (const json& m = Member(in, "memory"); m.is_object()) {
    auto* memory = out->mutable_memory();
    memory->set_limit(Value<std::int64_t>(m, "limit"));
    memory->set_reservation(Value<std::int64_t>(m, "reservation"));
    memory->set_swap(Value<std::int64_t>(m, "swap"));
    memory->set_kernel(Value<std::int64_t>(m, "kernel"));
    memory->set_kerneltcp(Value<std::int64_t>(m, "kernelTCP"));
    memory->set_swappiness(Value<std::uint64_t>(m, "swappiness"));
    memory->set_disableoomkiller(Value<bool>(m, "disableOOMKiller"));
  }
  if (const json& c = Member(in, "cpu"); c.is_object()) {
    auto* cpu = out->mutable_cpu();
    cpu->set_shares(Value<std::uint64_t>(c, "shares"));
    cpu->set_quota(Value<std::int64_t>(c, "quota"));
    cpu->set_period(Value<std::uint64_t>(c, "period"));
    cpu->set_realtimeruntime(Value<std::int64_t>(c, "realtimeRuntime"));
    cpu->set_realtimeperiod(Value<std::uint64_t>(c, "realtimePeriod"));
    cpu->set_cpus(Value<std::string>(c, "cpus"));
    cpu->set_mems(Value<std::string>(c, "mems"));
  }
  if (const json& p = Member(in, "pids"); p.is_object())
    out->mutable_pids()->set_limit(Value<std::int64_t>(p, "limit"));
  if (const json& b = Member(in, "blockIO"); b.is_object()) {
    auto* io = out->mutable_blockio();
    io->set_weight(Value<std::uint32_t>(b, "weight"));
    io->set_leafweight(Value<std::uint32_t>(b, "leafWeight"));
    for (const json& w : Array(b, "weightDevice")) {
      auto* device = io->add_weightdevice();
      device->set_major(Value<std::int64_t>(w, "major"));
      device->set_minor(Value<std::int64_t>(w, "minor"));
      device->set_weight(Value<std::uint32_t>(w, "weight"));
      device->set_leafweight(Value<std::uint32_t>(w, "leafWeight"));
    }
    auto throttle = [&](const char* key, auto* field) {
      for (const json& t : Array(b, key)) {
        auto* device = field->Add();
        device->set_major(Value<std::int64_t>(t, "major"));
        device->set_minor(Value<std::int64_t>(t, "minor"));
        device->set_rate(Value<std::uint64_t>(t, "rate"));
      }
    };
    throttle("throttleReadBpsDevice", io->mutable_throttlereadbpsdevice());
    throttle("throttleWriteBpsDevice", io->mutable_throttlewritebpsdevice());
    throttle("throttleReadIOPSDevice", io->mutable_throttlereadiopsdevice());
    throttle("throttleWriteIOPSDevice", io->mutable_throttlewriteiopsdevice());
  }
}

void Seccomp(const json& in, ::grpc::LinuxSeccomp* out) {
  out->set_defaultaction(Value<std::string>(in, "defaultAction"));
  Strings(in, "architectures", out->mutable_architectures());
  Strings(in, "flags", out->mutable_flags());
  for (const json& s : Array(in, "syscalls")) {
    auto* syscall = out->add_syscalls();
    Strings(s, "names", syscall->mutable_names());
    syscall->set_action(Value<std::string>(s, "action"));
    if (const json& e = Member(s, "errnoRet"); !e.is_null()) syscall->set_errnoret(e.get<std::uint32_t>());
    for (const json& a : Array(s, "args")) {
      auto* arg = syscall->add_args();
      arg->set_index(Value<std::uint64_t>(a, "index"));
      arg->set_value(Value<std::uint64_t>(a, "value"));
      arg->set_valuetwo(Value<std::uint64_t>(a, "valueTwo"));
      arg->set_op(Value<std::string>(a, "op"));
    }
  }
}

void IdMappings(const json& in, auto* out) {
  for (const json& m : in) {
    auto* mapping = out->Add();
    mapping->set_hostid(Value<std::uint32_t>(m, "hostID"));
    mapping->set_containerid(Value<std::uint32_t>(m, "containerID"));
    mapping->set_size(Value<std::uint32_t>(m, "size"));
  }
}

void Linux(const json& in, ::grpc::Linux* out) {
  IdMappings(Array(in, "uidMappings"), out->mutable_uidmappings());
  IdMappings(Array(in, "gidMappings"), out->mutable_gidmappings());
  for (const auto& [key, value] : Member(in, "sysctl").items())
    (*out->mutable_sysctl())[key] = value.get<std::string>();
  if (const json& r = Member(in, "resources"); r.is_object()) Resources(r, out->mutable_resources());
  out->set_cgroupspath(Value<std::string>(in, "cgroupsPath"));
  for (const json& n : Array(in, "namespaces")) {
    auto* ns = out->add_namespaces();
    ns->set_type(Value<std::string>(n, "type"));
    ns->set_path(Value<std::string>(n, "path"));
  }
  for (const json& d : Array(in, "devices")) {
    auto* device = out->add_devices();
    device->set_path(Value<std::string>(d, "path"));
    device->set_type(Value<std::string>(d, "type"));
    device->set_major(Value<std::int64_t>(d, "major"));
    device->set_minor(Value<std::int64_t>(d, "minor"));
    device->set_filemode(Value<std::uint32_t>(d, "fileMode"));
    device->set_uid(Value<std::uint32_t>(d, "uid"));
    device->set_gid(Value<std::uint32_t>(d, "gid"));
  }
  if (const json& s = Member(in, "seccomp"); s.is_object()) Seccomp(s, out->mutable_seccomp());
  out->set_rootfspropagation(Value<std::string>(in, "rootfsPropagation"));
  Strings(in, "maskedPaths", out->mutable_maskedpaths());
  Strings(in, "readonlyPaths", out->mutable_readonlypaths());
}

}  // namespace

Result<::grpc::Process> ProcessFromOci(const json& in) {
  try {
    ::grpc::Process out;
    out.set_terminal(Value<bool>(in, "terminal"));
    if (const json& box = Member(in, "consoleSize"); box.is_object()) {
      out.mutable_consolesize()->set_height(Value<std::uint32_t>(box, "height"));
      out.mutable_consolesize()->set_width(Value<std::uint32_t>(box, "width"));
    }
    if (const json& user = Member(in, "user"); user.is_object()) {
      out.mutable_user()->set_uid(Value<std::uint32_t>(user, "uid"));
      out.mutable_user()->set_gid(Value<std::uint32_t>(user, "gid"));
      for (const json& g : Array(user, "additionalGids"))
        out.mutable_user()->add_additionalgids(g.get<std::uint32_t>());
      out.mutable_user()->set_username(Value<std::string>(user, "username"));
    }
    Strings(in, "args", out.mutable_args());
    Strings(in, "env", out.mutable_env());
    out.set_cwd(Value<std::string>(in, "cwd"));
    if (const json& caps = Member(in, "capabilities"); caps.is_object())
      Capabilities(caps, out.mutable_capabilities());
    for (const json& r : Array(in, "rlimits")) {
      auto* limit = out.add_rlimits();
      limit->set_type(Value<std::string>(r, "type"));
      limit->set_hard(Value<std::uint64_t>(r, "hard"));
      limit->set_soft(Value<std::uint64_t>(r, "soft"));
    }
    out.set_nonewprivileges(Value<bool>(in, "noNewPrivileges"));
    out.set_apparmorprofile(Value<std::string>(in, "apparmorProfile"));
    out.set_oomscoreadj(Value<std::int64_t>(in, "oomScoreAdj"));
    out.set_selinuxlabel(Value<std::string>(in, "selinuxLabel"));
    return out;
  } catch (const std::exception& e) {  // json's type errors and malformed arrays
    return InvalidArgument(std::string("OCI process: ") + e.what());
  }
}

Result<::grpc::LinuxResources> ResourcesFromOci(const json& resources) {
  if (!resources.is_object()) return InvalidArgument("linux.resources: not a JSON object");
  try {
    ::grpc::LinuxResources out;
    Resources(resources, &out);
    return out;
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("linux.resources: ") + e.what());
  }
}

Result<::grpc::Spec> SpecFromOci(const json& config) {
  if (!config.is_object()) return InvalidArgument("config.json: not a JSON object");
  try {
    ::grpc::Spec out;
    out.set_version(Value<std::string>(config, "ociVersion"));
    if (const json& process = Member(config, "process"); process.is_object()) {
      SR_ASSIGN_OR_RETURN(*out.mutable_process(), ProcessFromOci(process));
    }
    out.mutable_root()->set_readonly(Value<bool>(Member(config, "root"), "readonly"));
    out.set_hostname(Value<std::string>(config, "hostname"));
    for (const json& m : Array(config, "mounts")) {
      auto* mount = out.add_mounts();
      mount->set_destination(Value<std::string>(m, "destination"));
      mount->set_source(Value<std::string>(m, "source"));
      mount->set_type(Value<std::string>(m, "type"));
      Strings(m, "options", mount->mutable_options());
    }
    for (const auto& [key, value] : Annotations(config)) (*out.mutable_annotations())[key] = value;
    if (const json& linux = Member(config, "linux"); linux.is_object()) Linux(linux, out.mutable_linux());
    return out;
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("config.json: ") + e.what());
  }
}

void LeaveImageDefaults(::grpc::Process& process) {
  const ::grpc::User& user = process.user();
  if (user.uid() == 0 && user.gid() == 0 && user.additionalgids_size() == 0 && user.username().empty()) {
    process.clear_user();
  }
  if (process.cwd() == "/") process.clear_cwd();
}

void LeaveImageDefaults(::grpc::Spec& spec) {
  LeaveImageDefaults(*spec.mutable_process());
}

void DropRunTmpfs(::grpc::Spec& spec) {
  auto* mounts = spec.mutable_mounts();
  mounts->erase(
      std::remove_if(mounts->begin(), mounts->end(),
                     [](const ::grpc::Mount& m) { return m.destination() == "/run" && m.type() == "tmpfs"; }),
      mounts->end());
}

void PrivateDevShm(::grpc::Spec& spec) {
  for (::grpc::Mount& mount : *spec.mutable_mounts()) {
    const bool bind = mount.type() == "bind" ||
                      std::any_of(mount.options().begin(), mount.options().end(),
                                  [](const std::string& o) { return o == "rbind" || o == "bind"; });
    if (mount.destination() != "/dev/shm" || !bind) continue;
    mount.set_type("tmpfs");
    mount.set_source("shm");
    mount.clear_options();
    for (const char* option : {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"})
      mount.add_options(option);
  }
}

namespace {

// kubelet's directory of an emptyDir volume: <kubelet>/pods/<uid>/volumes/kubernetes.io~empty-dir/<name>.
bool EmptyDirSource(std::string_view source) {
  constexpr std::string_view kDir = "/volumes/kubernetes.io~empty-dir/";
  const std::size_t at = source.find(kDir);
  if (at == std::string_view::npos) return false;
  const std::string_view name = source.substr(at + kDir.size());
  return !name.empty() && name.find('/') == std::string_view::npos && name != "." && name != "..";
}

void MakeSealedVolume(::grpc::Mount& mount, const std::string& destination) {
  mount.Clear();
  mount.set_destination(destination);
  mount.set_type(kSealedVolumeType);
  mount.set_source("sealroot");
}

}  // namespace

Status SealVolumes(::grpc::Spec& spec, const std::map<std::string, std::string>& annotations) {
  std::vector<std::string> listed;
  if (auto it = annotations.find(kSealedVolumesAnnotation); it != annotations.end()) {
    std::string_view rest = it->second;
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      std::string destination(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      if (destination.empty()) continue;
      if (!destination.starts_with('/') || destination == "/" ||
          destination.find("/..") != std::string::npos) {
        return InvalidArgument(std::string(kSealedVolumesAnnotation) + ": \"" + destination +
                               "\" is not an absolute destination below /");
      }
      while (destination.size() > 1 && destination.ends_with('/')) destination.pop_back();
      listed.push_back(std::move(destination));
    }
  }
  for (::grpc::Mount& mount : *spec.mutable_mounts()) {
    std::string destination = mount.destination();
    auto it = std::find(listed.begin(), listed.end(), destination);
    if (it != listed.end()) {
      listed.erase(it);
    } else if (!EmptyDirSource(mount.source())) {
      continue;
    }
    MakeSealedVolume(mount, destination);
  }
  for (const std::string& destination : listed) MakeSealedVolume(*spec.add_mounts(), destination);
  return OkStatus();
}

Result<std::vector<PodNamespace>> SandboxNamespaces(const json& config) {
  std::vector<PodNamespace> out;
  try {
    for (const json& n : Array(Member(config, "linux"), "namespaces")) {
      std::string type = Value<std::string>(n, "type");
      if (type == "network" || type == "ipc" || type == "uts") {
        out.push_back({std::move(type), Value<std::string>(n, "path")});
      }
    }
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("config.json: linux.namespaces: ") + e.what());
  }
  return out;
}

void JoinPodNamespaces(::grpc::Spec& spec, pid_t pause, std::span<const PodNamespace> held) {
  static constexpr std::pair<std::string_view, std::string_view> kProcNames[] = {
      {"network", "net"}, {"ipc", "ipc"}, {"uts", "uts"}};
  const std::string pause_dir = "/proc/" + std::to_string(pause) + "/ns/";
  auto* namespaces = spec.mutable_linux()->mutable_namespaces();
  for (auto it = namespaces->begin(); it != namespaces->end();) {
    if (!it->path().starts_with("/proc/")) {
      ++it;
      continue;
    }
    bool pod_type = false, names_pause = false;
    for (const auto& [type, proc] : kProcNames) {
      if (it->type() != type) continue;
      pod_type = true;
      names_pause = pause > 0 && it->path() == pause_dir + std::string(proc);
    }
    const bool holds =
        std::any_of(held.begin(), held.end(), [&](const PodNamespace& ns) { return ns.type == it->type(); });
    if (pod_type && names_pause && holds) {
      ++it;
    } else if (pod_type && names_pause) {
      it = namespaces->erase(it);
    } else {
      it->clear_path();
      ++it;
    }
  }
}

std::map<std::string, std::string> Annotations(const json& config) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : Member(config, "annotations").items()) {
    if (value.is_string()) out[key] = value.get<std::string>();
  }
  return out;
}

}  // namespace sealroot::shim
