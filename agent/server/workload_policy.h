// The workload policy: what a container may run beyond its signed image, decided by the image
// owner in the agent's measured configuration, never by the host that sends the requests
// (design/threat-model.md "Workload policy"). By default a container runs exactly the image
// config (Entrypoint+Cmd, Env, WorkingDir, User) with the runtime's standard isolation; every
// other request field is refused with PERMISSION_DENIED naming the field. Exec runs only the
// commands the policy lists.
//
// Config spelling (design/api.md), every key optional:
//   "workload": {"args": [["sh", "-c", "echo hi"]],   extra argv allowed for CreateContainer
//                "env": ["MODE=fast", "DEBUG=*"],      extra env entries (NAME=* any value)
//                "cwd": ["/srv"], "users": [{"uid": 1000, "gid": 1000, "additionalGids": []}],
//                "volumes": ["/data"],                 bind/volume mount destinations allowed
//                "capabilities": ["CAP_NET_ADMIN"],    beyond the default 14
//                "exec": [["cat", "/proc/loadavg"]],   the only commands ExecProcess may run
//                "namespaces": {"network": ["/proc/1/ns/net"]},  namespace paths a container may
//                                                      join beyond its pod's (see CheckContainerSpec)
//                "resources": {"memory": 536870912,    upper bounds of the cgroup limits a
//                              "pids": 256,            container is created or updated with;
//                              "cpus": 2}}             absent: the host's to choose, as with runc
//
// Thread-safety: value types and functions without state (namespace paths are stat'ed).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent.pb.h"
#include "base/status.h"

namespace sealroot::agent {

// What the signed image config says about running the image (stored with the image record at
// pull time, in the sealed agent state).
struct ImageRunConfig {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "NAME=VALUE"
  std::string working_dir;
  std::string user;  // "", "name", "uid", "name:group", "uid:gid"
};

// Reads Entrypoint, Cmd, Env, WorkingDir and User from an OCI image config document; an empty
// document is an image with none of them.
Result<ImageRunConfig> ParseImageRunConfig(std::string_view config_json);

struct PolicyUser {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::vector<std::uint32_t> additional_gids;
};

// Upper bounds on a container's cgroup limits. A bound set means the limit must be given (at
// creation) and never exceed it; an unlimited value (-1) is refused.
struct ResourceBounds {
  std::optional<std::int64_t> memory;  // bytes: linux.resources.memory.limit
  std::optional<std::int64_t> pids;    // linux.resources.pids.limit
  std::optional<double> cpus;          // linux.resources.cpu.quota / period
  bool any() const { return memory || pids || cpus; }
};

struct WorkloadPolicy {
  std::vector<std::vector<std::string>> args;
  std::vector<std::string> env;  // "NAME=VALUE" exactly, or "NAME=*"
  std::vector<std::string> cwd;
  std::vector<PolicyUser> users;
  std::vector<std::string> volumes;  // absolute mount destinations
  std::vector<std::string> capabilities;
  std::vector<std::vector<std::string>> exec;
  std::map<std::string, std::vector<std::string>> namespaces;  // type -> paths allowed to join
  ResourceBounds resources;

  // True when nothing beyond the image's own process is allowed: the agent then also pins the
  // boot to the image (boot spec "pinToImage").
  bool PinsToImage() const { return args.empty() && env.empty() && cwd.empty() && users.empty(); }
};

// Parses the "workload" section (its JSON text). Unknown keys, relative paths, empty argv and
// unknown capability names are kInvalidArgument.
Result<WorkloadPolicy> ParseWorkloadPolicy(std::string_view json_text);

// CreateContainer: the host's spec against the image config and the policy. kPermissionDenied
// naming the first field that is neither the image's nor allowed (process.args, process.env
// NAME, process.cwd, process.user, process.capabilities, linux.namespaces, linux.devices,
// linux.resources.devices, linux.resources (beyond the bounds), linux.seccomp, mounts[i]).
// Namespace paths: a container may join its pod's network, ipc and uts namespaces — a path
// /proc/<pid>/ns/{net,ipc,uts} (pid not 1) or, for network, /run/netns/<name> or
// /var/run/netns/<name>, naming a namespace that is neither PID 1's nor the agent's own (both
// the host's) — and any path the policy lists for that type; pid only as the policy lists;
// mount never.
Status CheckContainerSpec(const WorkloadPolicy& policy, const ImageRunConfig& image,
                          const ::grpc::Spec& spec);

// UpdateContainer: the new resources against the policy's bounds (a limit not given keeps its
// current, already checked value); device rules never change (kPermissionDenied).
Status CheckResourceUpdate(const WorkloadPolicy& policy, const ::grpc::LinuxResources& resources);

// ExecProcess: argv must be one the policy lists; env, cwd, user and capabilities as for
// CreateContainer.
Status CheckExecProcess(const WorkloadPolicy& policy, const ImageRunConfig& image,
                        const ::grpc::Process& process);

}  // namespace sealroot::agent
