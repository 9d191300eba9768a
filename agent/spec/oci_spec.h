// The OCI runtime spec in its two forms in the agent: grpc.Spec (what the kata protocol's
// CreateContainer and ExecProcess carry) and the OCI config.json the boot runs (the boot spec,
// design/boot.md). The agent writes the boot spec with SpecToOciConfig, filling in runc's
// `runc spec` defaults for what a spec leaves out (the rules are in design/api.md "The boot
// spec"); `sealroot ctl create --spec` reads a config.json with SpecFromOciConfig.
//
// Thread-safety: pure functions over value types.
#pragma once

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "oci.pb.h"

namespace sealroot::agent {

// What the defaults depend on beyond the spec itself.
struct SpecDefaults {
  nlohmann::json seccomp;         // linux.seccomp of a minimal spec (the default profile); null: none
  bool cgroup_namespace = false;  // runc adds one where the host has the unified (v2) hierarchy
};

// The defaults for this host: `seccomp` and whether /sys/fs/cgroup is cgroup v2.
SpecDefaults HostSpecDefaults(nlohmann::json seccomp);

// `spec` as an OCI config.json (OCI JSON field names; fields proto3 reads as unset are left out).
// A spec without "linux" is minimal: it gets runc's defaults for linux, mounts, rlimits and
// noNewPrivileges. A process without "capabilities" gets the default set in every spec.
nlohmann::json SpecToOciConfig(const ::grpc::Spec& spec, const SpecDefaults& defaults);

// One process (an exec): as in SpecToOciConfig's "process", capabilities defaulted when absent.
nlohmann::json ProcessToOci(const ::grpc::Process& process);

// linux.resources as OCI JSON (what the boot applies at creation and on UpdateContainer).
nlohmann::json ResourcesToOci(const ::grpc::LinuxResources& resources);

// runc's `runc spec` defaults (runc 1.1), as OCI JSON.
nlohmann::json DefaultCapabilities();
nlohmann::json DefaultMounts();
nlohmann::json DefaultLinux(const SpecDefaults& defaults);

// An OCI config.json as grpc.Spec. Every key must be one grpc.Spec carries; anything else (hooks,
// domainname, process.user.umask, linux.intelRdt...) is kInvalidArgument naming it, so nothing
// is dropped silently.
Result<::grpc::Spec> SpecFromOciConfig(const nlohmann::json& config);

}  // namespace sealroot::agent
