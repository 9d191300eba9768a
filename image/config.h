// The image configuration (application/vnd.oci.image.config.v1+json and Docker's equivalent)
// and the OCI runtime config.json that `umoci unpack` derives from it. The agent and the boot
// reuse RuntimeSpecFromImageConfig for the container's process spec.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "image/digest.h"

namespace sealroot::image {

struct ImageConfig {
  std::string os;
  std::string architecture;
  std::string variant;
  std::string author;
  std::string created;
  // config.*
  std::string user;  // "name|uid[:group|gid]", resolved against the rootfs
  std::vector<std::string> env;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::string stop_signal;
  std::vector<std::string> exposed_ports;  // sorted keys of ExposedPorts
  std::map<std::string, std::string> labels;
  // rootfs.diff_ids, bottom layer first
  std::vector<Digest> diff_ids;
};

// Strict: rootfs.type must be "layers", every diff_id a valid digest, fields of the right types.
Result<ImageConfig> ParseImageConfig(std::string_view json);

struct RuntimeSpecOptions {
  // Directory fd of the unpacked root, used to resolve `User` through /etc/passwd and /etc/group
  // (read inside the root, never following links out of it). -1: numeric users only.
  int rootfs_fd = -1;
  std::string rootfs_path = "rootfs";  // root.path in config.json
  bool rootless = false;               // umoci --rootless: user namespace, no cgroup/devices
  std::uint32_t host_uid = 0;          // rootless id mappings (the caller's euid/egid)
  std::uint32_t host_gid = 0;
};

// The process user as the OCI runtime spec has it.
struct ProcessUser {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::vector<std::uint32_t> additional_gids;
  std::string home;  // from /etc/passwd; empty when the user has no entry
};

// Resolves "name|uid[:group|gid]" like runc's user.GetExecUser (as umoci uses it): a name must
// exist in the root's /etc/passwd, a numeric uid need not; supplementary groups only when no
// group was given. An empty user is uid 0 (and still gets HOME from /etc/passwd).
Result<ProcessUser> ResolveUser(std::string_view user, int rootfs_fd);

// config.json as `umoci unpack` writes it: runtime-tools' default Linux spec, then
// args = Entrypoint + Cmd, env = defaults overridden by Env (+ HOME from passwd), cwd =
// WorkingDir or "/", user resolved, annotations from labels and org.opencontainers.image.*.
Result<nlohmann::json> RuntimeSpecFromImageConfig(const ImageConfig& config,
                                                  const RuntimeSpecOptions& options);

}  // namespace sealroot::image
