// OCI config.json -> grpc.Spec, strictly: a key grpc.Spec has no field for is an error naming it
// (the caller asked for something the agent API cannot carry; dropping it would half-apply the
// spec).
#include <set>

#include "agent/spec/oci_spec.h"

namespace sealroot::agent {
namespace {

using nlohmann::json;
using Keys = std::set<std::string, std::less<>>;

// A JSON type error (nlohmann throws) is turned into kInvalidArgument by SpecFromOciConfig.
Status CheckKeys(const json& object, const std::string& where, const Keys& allowed) {
  if (!object.is_object()) return InvalidArgument(where + ": expected an object");
  for (const auto& [key, value] : object.items()) {
    if (!allowed.contains(key)) {
      return InvalidArgument(where + "." + key +
                             ": not carried by the agent API (grpc.Spec has no such field)");
    }
  }
  return OkStatus();
}

// The array (or object) at `key`, empty when absent; nlohmann's type_error for any other type
// (iterating a string would otherwise yield the string itself).
json ArrayOf(const json& object, const char* key) {
  if (!object.contains(key)) return json::array();
  (void)object.at(key).get_ref<const json::array_t&>();
  return object.at(key);
}

json ObjectOf(const json& object, const char* key) {
  if (!object.contains(key)) return json::object();
  (void)object.at(key).get_ref<const json::object_t&>();
  return object.at(key);
}

template <typename Repeated>
void AddStrings(const json& object, const char* key, Repeated* out) {
  for (const json& value : ArrayOf(object, key)) out->Add(value.get<std::string>());
}

Status ParseCapabilities(const json& in, ::grpc::LinuxCapabilities& out) {
  SR_RETURN_IF_ERROR(CheckKeys(in, "process.capabilities",
                               {"bounding", "effective", "inheritable", "permitted", "ambient"}));
  AddStrings(in, "bounding", out.mutable_bounding());
  AddStrings(in, "effective", out.mutable_effective());
  AddStrings(in, "inheritable", out.mutable_inheritable());
  AddStrings(in, "permitted", out.mutable_permitted());
  AddStrings(in, "ambient", out.mutable_ambient());
  return OkStatus();
}

Status ParseProcess(const json& in, ::grpc::Process& out) {
  SR_RETURN_IF_ERROR(
      CheckKeys(in, "process",
                {"terminal", "consoleSize", "user", "args", "env", "cwd", "capabilities", "rlimits",
                 "noNewPrivileges", "oomScoreAdj", "apparmorProfile", "selinuxLabel"}));
  out.set_terminal(in.value("terminal", false));
  if (in.contains("consoleSize")) {
    const json& size = in.at("consoleSize");
    SR_RETURN_IF_ERROR(CheckKeys(size, "process.consoleSize", {"height", "width"}));
    out.mutable_consolesize()->set_height(size.value<std::uint32_t>("height", 0));
    out.mutable_consolesize()->set_width(size.value<std::uint32_t>("width", 0));
  }
  if (in.contains("user")) {
    const json& user = in.at("user");
    SR_RETURN_IF_ERROR(CheckKeys(user, "process.user", {"uid", "gid", "additionalGids"}));
    out.mutable_user()->set_uid(user.value<std::uint32_t>("uid", 0));
    out.mutable_user()->set_gid(user.value<std::uint32_t>("gid", 0));
    for (const json& gid : ArrayOf(user, "additionalGids"))
      out.mutable_user()->add_additionalgids(gid.get<std::uint32_t>());
  }
  AddStrings(in, "args", out.mutable_args());
  AddStrings(in, "env", out.mutable_env());
  out.set_cwd(in.value("cwd", ""));
  if (in.contains("capabilities"))
    SR_RETURN_IF_ERROR(ParseCapabilities(in.at("capabilities"), *out.mutable_capabilities()));
  for (const json& limit : ArrayOf(in, "rlimits")) {
    SR_RETURN_IF_ERROR(CheckKeys(limit, "process.rlimits[]", {"type", "hard", "soft"}));
    ::grpc::POSIXRlimit* r = out.add_rlimits();
    r->set_type(limit.value("type", ""));
    r->set_hard(limit.value<std::uint64_t>("hard", 0));
    r->set_soft(limit.value<std::uint64_t>("soft", 0));
  }
  out.set_nonewprivileges(in.value("noNewPrivileges", false));
  out.set_oomscoreadj(in.value<std::int64_t>("oomScoreAdj", 0));
  out.set_apparmorprofile(in.value("apparmorProfile", ""));
  out.set_selinuxlabel(in.value("selinuxLabel", ""));
  return OkStatus();
}

Status ParseIdMappings(const json& in, const std::string& where,
                       google::protobuf::RepeatedPtrField<::grpc::LinuxIDMapping>* out) {
  for (const json& m : in) {
    SR_RETURN_IF_ERROR(CheckKeys(m, where + "[]", {"containerID", "hostID", "size"}));
    ::grpc::LinuxIDMapping* mapping = out->Add();
    mapping->set_containerid(m.value<std::uint32_t>("containerID", 0));
    mapping->set_hostid(m.value<std::uint32_t>("hostID", 0));
    mapping->set_size(m.value<std::uint32_t>("size", 0));
  }
  return OkStatus();
}

Status ParseThrottles(const json& in, const std::string& where,
                      google::protobuf::RepeatedPtrField<::grpc::LinuxThrottleDevice>* out) {
  for (const json& d : in) {
    SR_RETURN_IF_ERROR(CheckKeys(d, where + "[]", {"major", "minor", "rate"}));
    ::grpc::LinuxThrottleDevice* device = out->Add();
    device->set_major(d.value<std::int64_t>("major", 0));
    device->set_minor(d.value<std::int64_t>("minor", 0));
    device->set_rate(d.value<std::uint64_t>("rate", 0));
  }
  return OkStatus();
}

Status ParseBlockIo(const json& in, ::grpc::LinuxBlockIO& out) {
  const std::string where = "linux.resources.blockIO";
  SR_RETURN_IF_ERROR(
      CheckKeys(in, where,
                {"weight", "leafWeight", "weightDevice", "throttleReadBpsDevice", "throttleWriteBpsDevice",
                 "throttleReadIOPSDevice", "throttleWriteIOPSDevice"}));
  out.set_weight(in.value<std::uint32_t>("weight", 0));
  out.set_leafweight(in.value<std::uint32_t>("leafWeight", 0));
  for (const json& d : ArrayOf(in, "weightDevice")) {
    SR_RETURN_IF_ERROR(CheckKeys(d, where + ".weightDevice[]", {"major", "minor", "weight", "leafWeight"}));
    ::grpc::LinuxWeightDevice* device = out.add_weightdevice();
    device->set_major(d.value<std::int64_t>("major", 0));
    device->set_minor(d.value<std::int64_t>("minor", 0));
    device->set_weight(d.value<std::uint32_t>("weight", 0));
    device->set_leafweight(d.value<std::uint32_t>("leafWeight", 0));
  }
  SR_RETURN_IF_ERROR(ParseThrottles(ArrayOf(in, "throttleReadBpsDevice"), where + ".throttleReadBpsDevice",
                                    out.mutable_throttlereadbpsdevice()));
  SR_RETURN_IF_ERROR(ParseThrottles(ArrayOf(in, "throttleWriteBpsDevice"), where + ".throttleWriteBpsDevice",
                                    out.mutable_throttlewritebpsdevice()));
  SR_RETURN_IF_ERROR(ParseThrottles(ArrayOf(in, "throttleReadIOPSDevice"), where + ".throttleReadIOPSDevice",
                                    out.mutable_throttlereadiopsdevice()));
  SR_RETURN_IF_ERROR(ParseThrottles(ArrayOf(in, "throttleWriteIOPSDevice"),
                                    where + ".throttleWriteIOPSDevice",
                                    out.mutable_throttlewriteiopsdevice()));
  return OkStatus();
}

Status ParseResources(const json& in, ::grpc::LinuxResources& out) {
  SR_RETURN_IF_ERROR(CheckKeys(in, "linux.resources", {"devices", "memory", "cpu", "pids", "blockIO"}));
  for (const json& d : ArrayOf(in, "devices")) {
    SR_RETURN_IF_ERROR(
        CheckKeys(d, "linux.resources.devices[]", {"allow", "type", "major", "minor", "access"}));
    ::grpc::LinuxDeviceCgroup* device = out.add_devices();
    device->set_allow(d.value("allow", false));
    device->set_type(d.value("type", ""));
    device->set_major(d.value<std::int64_t>("major", -1));  // absent: any (kata's -1)
    device->set_minor(d.value<std::int64_t>("minor", -1));
    device->set_access(d.value("access", ""));
  }
  if (in.contains("memory")) {
    const json& m = in.at("memory");
    SR_RETURN_IF_ERROR(
        CheckKeys(m, "linux.resources.memory",
                  {"limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness", "disableOOMKiller"}));
    ::grpc::LinuxMemory* memory = out.mutable_memory();
    memory->set_limit(m.value<std::int64_t>("limit", 0));
    memory->set_reservation(m.value<std::int64_t>("reservation", 0));
    memory->set_swap(m.value<std::int64_t>("swap", 0));
    memory->set_kernel(m.value<std::int64_t>("kernel", 0));
    memory->set_kerneltcp(m.value<std::int64_t>("kernelTCP", 0));
    memory->set_swappiness(m.value<std::uint64_t>("swappiness", 0));
    memory->set_disableoomkiller(m.value("disableOOMKiller", false));
  }
  if (in.contains("cpu")) {
    const json& c = in.at("cpu");
    SR_RETURN_IF_ERROR(
        CheckKeys(c, "linux.resources.cpu",
                  {"shares", "quota", "period", "realtimeRuntime", "realtimePeriod", "cpus", "mems"}));
    ::grpc::LinuxCPU* cpu = out.mutable_cpu();
    cpu->set_shares(c.value<std::uint64_t>("shares", 0));
    cpu->set_quota(c.value<std::int64_t>("quota", 0));
    cpu->set_period(c.value<std::uint64_t>("period", 0));
    cpu->set_realtimeruntime(c.value<std::int64_t>("realtimeRuntime", 0));
    cpu->set_realtimeperiod(c.value<std::uint64_t>("realtimePeriod", 0));
    cpu->set_cpus(c.value("cpus", ""));
    cpu->set_mems(c.value("mems", ""));
  }
  if (in.contains("pids")) {
    SR_RETURN_IF_ERROR(CheckKeys(in.at("pids"), "linux.resources.pids", {"limit"}));
    out.mutable_pids()->set_limit(in.at("pids").value<std::int64_t>("limit", 0));
  }
  if (in.contains("blockIO")) SR_RETURN_IF_ERROR(ParseBlockIo(in.at("blockIO"), *out.mutable_blockio()));
  return OkStatus();
}

Status ParseSeccomp(const json& in, ::grpc::LinuxSeccomp& out) {
  SR_RETURN_IF_ERROR(CheckKeys(in, "linux.seccomp",
                               {"defaultAction", "defaultErrnoRet", "architectures", "flags", "syscalls"}));
  // grpc.Spec has no defaultErrnoRet; runc's errno for SCMP_ACT_ERRNO without one is EPERM (1).
  if (in.contains("defaultErrnoRet") && in.at("defaultErrnoRet").get<std::uint32_t>() != 1) {
    return InvalidArgument("linux.seccomp.defaultErrnoRet: only 1 (EPERM, the default) can be carried");
  }
  out.set_defaultaction(in.value("defaultAction", ""));
  AddStrings(in, "architectures", out.mutable_architectures());
  AddStrings(in, "flags", out.mutable_flags());
  for (const json& s : ArrayOf(in, "syscalls")) {
    SR_RETURN_IF_ERROR(CheckKeys(s, "linux.seccomp.syscalls[]", {"names", "action", "errnoRet", "args"}));
    ::grpc::LinuxSyscall* call = out.add_syscalls();
    AddStrings(s, "names", call->mutable_names());
    call->set_action(s.value("action", ""));
    if (s.contains("errnoRet")) call->set_errnoret(s.at("errnoRet").get<std::uint32_t>());
    for (const json& a : ArrayOf(s, "args")) {
      SR_RETURN_IF_ERROR(
          CheckKeys(a, "linux.seccomp.syscalls[].args[]", {"index", "value", "valueTwo", "op"}));
      ::grpc::LinuxSeccompArg* arg = call->add_args();
      arg->set_index(a.value<std::uint64_t>("index", 0));
      arg->set_value(a.value<std::uint64_t>("value", 0));
      arg->set_valuetwo(a.value<std::uint64_t>("valueTwo", 0));
      arg->set_op(a.value("op", ""));
    }
  }
  return OkStatus();
}

Status ParseLinux(const json& in, ::grpc::Linux& out) {
  SR_RETURN_IF_ERROR(
      CheckKeys(in, "linux",
                {"uidMappings", "gidMappings", "sysctl", "resources", "cgroupsPath", "namespaces", "devices",
                 "seccomp", "rootfsPropagation", "maskedPaths", "readonlyPaths"}));
  SR_RETURN_IF_ERROR(
      ParseIdMappings(ArrayOf(in, "uidMappings"), "linux.uidMappings", out.mutable_uidmappings()));
  SR_RETURN_IF_ERROR(
      ParseIdMappings(ArrayOf(in, "gidMappings"), "linux.gidMappings", out.mutable_gidmappings()));
  const json sysctl = ObjectOf(in, "sysctl");
  for (const auto& [key, value] : sysctl.items()) (*out.mutable_sysctl())[key] = value.get<std::string>();
  if (in.contains("resources"))
    SR_RETURN_IF_ERROR(ParseResources(in.at("resources"), *out.mutable_resources()));
  out.set_cgroupspath(in.value("cgroupsPath", ""));
  for (const json& ns : ArrayOf(in, "namespaces")) {
    SR_RETURN_IF_ERROR(CheckKeys(ns, "linux.namespaces[]", {"type", "path"}));
    ::grpc::LinuxNamespace* entry = out.add_namespaces();
    entry->set_type(ns.value("type", ""));
    entry->set_path(ns.value("path", ""));
  }
  for (const json& d : ArrayOf(in, "devices")) {
    SR_RETURN_IF_ERROR(
        CheckKeys(d, "linux.devices[]", {"path", "type", "major", "minor", "fileMode", "uid", "gid"}));
    ::grpc::LinuxDevice* device = out.add_devices();
    device->set_path(d.value("path", ""));
    device->set_type(d.value("type", ""));
    device->set_major(d.value<std::int64_t>("major", 0));
    device->set_minor(d.value<std::int64_t>("minor", 0));
    device->set_filemode(d.value<std::uint32_t>("fileMode", 0));
    device->set_uid(d.value<std::uint32_t>("uid", 0));
    device->set_gid(d.value<std::uint32_t>("gid", 0));
  }
  if (in.contains("seccomp")) SR_RETURN_IF_ERROR(ParseSeccomp(in.at("seccomp"), *out.mutable_seccomp()));
  out.set_rootfspropagation(in.value("rootfsPropagation", ""));
  AddStrings(in, "maskedPaths", out.mutable_maskedpaths());
  AddStrings(in, "readonlyPaths", out.mutable_readonlypaths());
  return OkStatus();
}

Status ParseConfig(const json& in, ::grpc::Spec& out) {
  SR_RETURN_IF_ERROR(
      CheckKeys(in, "spec", {"ociVersion", "process", "root", "hostname", "mounts", "annotations", "linux"}));
  out.set_version(in.value("ociVersion", ""));
  if (in.contains("process")) SR_RETURN_IF_ERROR(ParseProcess(in.at("process"), *out.mutable_process()));
  if (in.contains("root")) {
    SR_RETURN_IF_ERROR(CheckKeys(in.at("root"), "root", {"path", "readonly"}));
    out.mutable_root()->set_path(in.at("root").value("path", ""));
    out.mutable_root()->set_readonly(in.at("root").value("readonly", false));
  }
  out.set_hostname(in.value("hostname", ""));
  for (const json& m : ArrayOf(in, "mounts")) {
    SR_RETURN_IF_ERROR(CheckKeys(m, "mounts[]", {"destination", "type", "source", "options"}));
    ::grpc::Mount* mount = out.add_mounts();
    mount->set_destination(m.value("destination", ""));
    mount->set_type(m.value("type", ""));
    mount->set_source(m.value("source", ""));
    AddStrings(m, "options", mount->mutable_options());
  }
  const json annotations = ObjectOf(in, "annotations");
  for (const auto& [key, value] : annotations.items()) {
    (*out.mutable_annotations())[key] = value.get<std::string>();
  }
  if (in.contains("linux")) SR_RETURN_IF_ERROR(ParseLinux(in.at("linux"), *out.mutable_linux()));
  return OkStatus();
}

}  // namespace

Result<::grpc::Spec> SpecFromOciConfig(const json& config) {
  ::grpc::Spec spec;
  try {
    SR_RETURN_IF_ERROR(ParseConfig(config, spec));
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("OCI spec: wrong JSON type: ") + e.what());
  }
  return spec;
}

}  // namespace sealroot::agent
