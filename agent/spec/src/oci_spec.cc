// grpc.Spec -> OCI config.json (the boot spec the agent writes). proto3 cannot tell a zero or an
// empty value from an absent one, so zero numbers, empty strings and empty lists are left out,
// as the OCI Go types' `omitempty` does; message fields keep their presence.
#include "agent/spec/oci_spec.h"

namespace sealroot::agent {
namespace {

using nlohmann::json;

template <typename Repeated>
json Strings(const Repeated& values) {
  return json(std::vector<std::string>(values.begin(), values.end()));
}

// Sets `key` to `value` unless it is the zero value of its type.
template <typename T>
void SetIfSet(json& out, const char* key, const T& value) {
  if (value != T{}) out[key] = value;
}

template <typename Repeated>
void SetStringsIfSet(json& out, const char* key, const Repeated& values) {
  if (!values.empty()) out[key] = Strings(values);
}

json CapabilitiesToOci(const ::grpc::LinuxCapabilities& caps) {
  json out = json::object();
  SetStringsIfSet(out, "bounding", caps.bounding());
  SetStringsIfSet(out, "effective", caps.effective());
  SetStringsIfSet(out, "inheritable", caps.inheritable());
  SetStringsIfSet(out, "permitted", caps.permitted());
  SetStringsIfSet(out, "ambient", caps.ambient());
  return out;
}

json MountsToOci(const google::protobuf::RepeatedPtrField<::grpc::Mount>& mounts) {
  json out = json::array();
  for (const ::grpc::Mount& m : mounts) {
    json mount = {{"destination", m.destination()}};
    SetIfSet(mount, "type", m.type());
    SetIfSet(mount, "source", m.source());
    SetStringsIfSet(mount, "options", m.options());
    out.push_back(std::move(mount));
  }
  return out;
}

json IdMappingsToOci(const google::protobuf::RepeatedPtrField<::grpc::LinuxIDMapping>& mappings) {
  json out = json::array();
  for (const ::grpc::LinuxIDMapping& m : mappings) {
    out.push_back({{"containerID", m.containerid()}, {"hostID", m.hostid()}, {"size", m.size()}});
  }
  return out;
}

// kata sends -1 for "any" major/minor (proto3 has no null); OCI leaves the key out.
void SetDeviceNumber(json& out, const char* key, std::int64_t value) {
  if (value >= 0) out[key] = value;
}

json ThrottleToOci(const google::protobuf::RepeatedPtrField<::grpc::LinuxThrottleDevice>& devices) {
  json out = json::array();
  for (const ::grpc::LinuxThrottleDevice& d : devices) {
    out.push_back({{"major", d.major()}, {"minor", d.minor()}, {"rate", d.rate()}});
  }
  return out;
}

json BlockIoToOci(const ::grpc::LinuxBlockIO& io) {
  json out = json::object();
  SetIfSet(out, "weight", io.weight());
  SetIfSet(out, "leafWeight", io.leafweight());
  if (!io.weightdevice().empty()) {
    json devices = json::array();
    for (const ::grpc::LinuxWeightDevice& d : io.weightdevice()) {
      json device = {{"major", d.major()}, {"minor", d.minor()}};
      SetIfSet(device, "weight", d.weight());
      SetIfSet(device, "leafWeight", d.leafweight());
      devices.push_back(std::move(device));
    }
    out["weightDevice"] = std::move(devices);
  }
  const std::pair<const char*, const google::protobuf::RepeatedPtrField<::grpc::LinuxThrottleDevice>*>
      throttles[] = {{"throttleReadBpsDevice", &io.throttlereadbpsdevice()},
                     {"throttleWriteBpsDevice", &io.throttlewritebpsdevice()},
                     {"throttleReadIOPSDevice", &io.throttlereadiopsdevice()},
                     {"throttleWriteIOPSDevice", &io.throttlewriteiopsdevice()}};
  for (const auto& [key, devices] : throttles) {
    if (!devices->empty()) out[key] = ThrottleToOci(*devices);
  }
  return out;
}

}  // namespace

json ResourcesToOci(const ::grpc::LinuxResources& r) {
  json out = json::object();
  if (!r.devices().empty()) {
    json devices = json::array();
    for (const ::grpc::LinuxDeviceCgroup& d : r.devices()) {
      json device = {{"allow", d.allow()}};
      SetIfSet(device, "type", d.type());
      SetDeviceNumber(device, "major", d.major());
      SetDeviceNumber(device, "minor", d.minor());
      SetIfSet(device, "access", d.access());
      devices.push_back(std::move(device));
    }
    out["devices"] = std::move(devices);
  }
  if (r.has_memory()) {
    const ::grpc::LinuxMemory& m = r.memory();
    json memory = json::object();
    SetIfSet(memory, "limit", m.limit());
    SetIfSet(memory, "reservation", m.reservation());
    SetIfSet(memory, "swap", m.swap());
    SetIfSet(memory, "kernel", m.kernel());
    SetIfSet(memory, "kernelTCP", m.kerneltcp());
    SetIfSet(memory, "swappiness", m.swappiness());
    SetIfSet(memory, "disableOOMKiller", m.disableoomkiller());
    out["memory"] = std::move(memory);
  }
  if (r.has_cpu()) {
    const ::grpc::LinuxCPU& c = r.cpu();
    json cpu = json::object();
    SetIfSet(cpu, "shares", c.shares());
    SetIfSet(cpu, "quota", c.quota());
    SetIfSet(cpu, "period", c.period());
    SetIfSet(cpu, "realtimeRuntime", c.realtimeruntime());
    SetIfSet(cpu, "realtimePeriod", c.realtimeperiod());
    SetIfSet(cpu, "cpus", c.cpus());
    SetIfSet(cpu, "mems", c.mems());
    out["cpu"] = std::move(cpu);
  }
  if (r.has_pids()) out["pids"] = {{"limit", r.pids().limit()}};
  if (r.has_blockio()) out["blockIO"] = BlockIoToOci(r.blockio());
  return out;
}

namespace {

json SeccompToOci(const ::grpc::LinuxSeccomp& s) {
  json out = {{"defaultAction", s.defaultaction()}};
  SetStringsIfSet(out, "architectures", s.architectures());
  SetStringsIfSet(out, "flags", s.flags());
  json syscalls = json::array();
  for (const ::grpc::LinuxSyscall& call : s.syscalls()) {
    json entry = {{"names", Strings(call.names())}, {"action", call.action()}};
    if (call.has_errnoret()) entry["errnoRet"] = call.errnoret();
    if (!call.args().empty()) {
      json args = json::array();
      for (const ::grpc::LinuxSeccompArg& a : call.args()) {
        json arg = {{"index", a.index()}, {"value", a.value()}, {"op", a.op()}};
        SetIfSet(arg, "valueTwo", a.valuetwo());
        args.push_back(std::move(arg));
      }
      entry["args"] = std::move(args);
    }
    syscalls.push_back(std::move(entry));
  }
  if (!syscalls.empty()) out["syscalls"] = std::move(syscalls);
  return out;
}

json LinuxToOci(const ::grpc::Linux& l) {
  json out = json::object();
  if (!l.uidmappings().empty()) out["uidMappings"] = IdMappingsToOci(l.uidmappings());
  if (!l.gidmappings().empty()) out["gidMappings"] = IdMappingsToOci(l.gidmappings());
  if (!l.sysctl().empty()) {
    json sysctl = json::object();
    for (const auto& entry : l.sysctl()) sysctl[entry.first] = entry.second;
    out["sysctl"] = std::move(sysctl);
  }
  if (l.has_resources()) out["resources"] = ResourcesToOci(l.resources());
  SetIfSet(out, "cgroupsPath", l.cgroupspath());
  if (!l.namespaces().empty()) {
    json namespaces = json::array();
    for (const ::grpc::LinuxNamespace& ns : l.namespaces()) {
      json entry = {{"type", ns.type()}};
      SetIfSet(entry, "path", ns.path());
      namespaces.push_back(std::move(entry));
    }
    out["namespaces"] = std::move(namespaces);
  }
  if (!l.devices().empty()) {
    json devices = json::array();
    for (const ::grpc::LinuxDevice& d : l.devices()) {
      json device = {{"path", d.path()}, {"type", d.type()}, {"major", d.major()}, {"minor", d.minor()}};
      SetIfSet(device, "fileMode", d.filemode());
      device["uid"] = d.uid();
      device["gid"] = d.gid();
      devices.push_back(std::move(device));
    }
    out["devices"] = std::move(devices);
  }
  if (l.has_seccomp()) out["seccomp"] = SeccompToOci(l.seccomp());
  SetIfSet(out, "rootfsPropagation", l.rootfspropagation());
  SetStringsIfSet(out, "maskedPaths", l.maskedpaths());
  SetStringsIfSet(out, "readonlyPaths", l.readonlypaths());
  return out;
}

}  // namespace

json ProcessToOci(const ::grpc::Process& p) {
  json out = json::object();
  SetIfSet(out, "terminal", p.terminal());
  if (p.has_consolesize()) {
    out["consoleSize"] = {{"height", p.consolesize().height()}, {"width", p.consolesize().width()}};
  }
  // Present or not matters: without "user" the image's User applies (design/boot.md).
  if (p.has_user()) {
    json user = {{"uid", p.user().uid()}, {"gid", p.user().gid()}};
    const auto& gids = p.user().additionalgids();
    if (!gids.empty()) user["additionalGids"] = std::vector<std::uint32_t>(gids.begin(), gids.end());
    out["user"] = std::move(user);
  }
  SetStringsIfSet(out, "args", p.args());
  SetStringsIfSet(out, "env", p.env());
  SetIfSet(out, "cwd", p.cwd());
  // Leaving capabilities out never means "all of root's": "capabilities": {} means none.
  out["capabilities"] = p.has_capabilities() ? CapabilitiesToOci(p.capabilities()) : DefaultCapabilities();
  if (!p.rlimits().empty()) {
    json rlimits = json::array();
    for (const ::grpc::POSIXRlimit& r : p.rlimits()) {
      rlimits.push_back({{"type", r.type()}, {"hard", r.hard()}, {"soft", r.soft()}});
    }
    out["rlimits"] = std::move(rlimits);
  }
  SetIfSet(out, "noNewPrivileges", p.nonewprivileges());
  SetIfSet(out, "oomScoreAdj", p.oomscoreadj());
  SetIfSet(out, "apparmorProfile", p.apparmorprofile());
  SetIfSet(out, "selinuxLabel", p.selinuxlabel());
  return out;
}

json SpecToOciConfig(const ::grpc::Spec& spec, const SpecDefaults& defaults) {
  const bool minimal = !spec.has_linux();
  json out = {{"ociVersion", spec.version().empty() ? "1.0.2-dev" : spec.version()}};
  json process = ProcessToOci(spec.process());
  if (minimal) {
    process["noNewPrivileges"] = true;
    if (!process.contains("rlimits")) {
      process["rlimits"] = json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}});
    }
  }
  out["process"] = std::move(process);
  if (spec.has_root()) {
    json root = {{"readonly", spec.root().readonly()}};
    SetIfSet(root, "path", spec.root().path());
    out["root"] = std::move(root);
  }
  SetIfSet(out, "hostname", spec.hostname());
  if (!spec.mounts().empty()) {
    out["mounts"] = MountsToOci(spec.mounts());
  } else if (minimal) {
    out["mounts"] = DefaultMounts();
  }
  if (!spec.annotations().empty()) {
    json annotations = json::object();
    for (const auto& entry : spec.annotations()) annotations[entry.first] = entry.second;
    out["annotations"] = std::move(annotations);
  }
  out["linux"] = minimal ? DefaultLinux(defaults) : LinuxToOci(spec.linux());
  return out;
}

}  // namespace sealroot::agent
