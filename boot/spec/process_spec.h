// What sealroot-boot runs: the "boot spec" (a JSON document the agent writes for one container,
// whose SHA-256 arrives in the attested key release) and its resolution into one process, with
// the precedence of design/boot.md "Precedence" (Kubernetes/CRI semantics, as far as the
// workload policy allows). The format is in design/boot.md.
//
// Thread-safety: value types and pure functions.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/crypto.h"
#include "base/status.h"

namespace sealroot::boot {

// The part of an OCI image config ("config" object) that says how to run the image.
struct ImageProcess {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "KEY=VALUE"
  std::string working_dir;
  std::string user;  // "", "name", "uid", "name:group", "uid:gid"
};

// process.capabilities: each set as capability numbers (CAP_*), in the spec's order.
struct Capabilities {
  std::vector<int> bounding, effective, inheritable, permitted, ambient;
};

struct Rlimit {
  int resource = 0;  // RLIMIT_*
  std::uint64_t soft = 0;
  std::uint64_t hard = 0;
};

// The OCI runtime-spec "process" object as given by the shim's CreateContainer. Optional fields
// are unset when the JSON leaves them out, so that the image's value applies.
struct SpecProcess {
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd;
  struct User {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> additional_gids;
  };
  std::optional<User> user;
  std::vector<Rlimit> rlimits;
  bool no_new_privileges = false;
  bool terminal = false;
  unsigned console_height = 0, console_width = 0;
  // Unset: the process keeps every capability it has (runc's behaviour without the field).
  std::optional<Capabilities> capabilities;
  std::optional<mode_t> umask;
  std::optional<int> oom_score_adj;
};

// One entry of "mounts".
struct SpecMount {
  std::string destination;  // absolute, inside the container
  std::string type;
  std::string source;
  std::vector<std::string> options;
};

struct SpecNamespace {
  std::string type;  // pid, network, mount, ipc, uts, user, cgroup
  std::string path;  // empty: a new namespace; else join this one
};

struct IdMapping {
  std::uint32_t container_id = 0, host_id = 0, size = 0;
};

// linux.devices: a node created in the container's /dev.
struct SpecDevice {
  std::string path;
  char type = 'c';  // c, u, b or p
  std::int64_t major = 0, minor = 0;
  std::optional<std::uint32_t> file_mode;
  std::optional<std::uint32_t> uid, gid;
};

// The OCI runtime-spec "linux" object (design/boot.md lists what is applied and what refused).
struct LinuxSpec {
  // Unset: the boot's defaults (new PID, mount, UTS and IPC namespaces, as before the field).
  std::optional<std::vector<SpecNamespace>> namespaces;
  std::vector<IdMapping> uid_mappings, gid_mappings;
  std::vector<std::pair<std::string, std::string>> sysctl;
  std::string resources_json;  // the "resources" subtree as JSON text; empty when absent
  std::string seccomp_json;    // the "seccomp" subtree as JSON text; empty when absent
  std::string cgroups_path;
  std::string rootfs_propagation;  // "", private, rprivate, slave, rslave, shared, rshared, unbindable
  std::vector<std::string> masked_paths, readonly_paths;
  std::vector<SpecDevice> devices;
};

struct BootSpec {
  std::string hostname;
  std::string domainname;
  bool root_readonly = false;
  // Unset: /proc, a /dev tmpfs with devpts, shm and mqueue, and a /tmp tmpfs (the boot's
  // defaults before the field); set: exactly these mounts, as runc does.
  std::optional<std::vector<SpecMount>> mounts;
  LinuxSpec linux;
  SpecProcess process;
  ImageProcess image;
  // Policy option: args, env, cwd and user come from the signed image config only.
  bool pin_to_image = false;
};

// Who the process runs as, before the container root is mounted: names are looked up in the
// root's /etc/passwd and /etc/group (see user.h) only once the root is in place.
struct UserRef {
  std::string user;   // a name or a decimal uid; never empty
  std::string group;  // a name or a decimal gid; empty: the user's primary group
  std::vector<gid_t> additional_gids;
  // Image users also get the supplementary groups /etc/group lists them in (as Docker does);
  // a numeric OCI-spec user gets exactly the groups the spec names.
  bool add_group_memberships = false;
};

// The process to execute, after precedence.
struct ProcessSpec {
  std::vector<std::string> args;  // non-empty
  std::vector<std::string> env;   // "KEY=VALUE", unique keys
  std::string cwd;                // absolute
  UserRef user;
  std::vector<Rlimit> rlimits;
  bool no_new_privileges = false;
  std::optional<Capabilities> capabilities;
  std::optional<mode_t> umask;  // unset: 022
  std::optional<int> oom_score_adj;
  // A pty in the container's devpts instance as the process's stdio and controlling terminal,
  // its size set when both are non-zero.
  bool terminal = false;
  unsigned console_height = 0, console_width = 0;
};

// The boot spec document for `spec` (what the agent writes; ParseBootSpec reads it back).
std::string EncodeBootSpec(const BootSpec& spec);

// The RLIMIT_* resource an OCI rlimit type names ("RLIMIT_NOFILE"), or nullopt if unknown.
std::optional<int> RlimitFromName(std::string_view name);

// The capability number "CAP_NET_RAW" names, or nullopt if unknown; and back.
std::optional<int> CapabilityFromName(std::string_view name);
std::string_view CapabilityName(int cap);

// Parses a boot spec. Malformed or oversized documents, wrong types, unknown rlimit names and
// relative cwds are kInvalidArgument errors naming the offending field.
Result<BootSpec> ParseBootSpec(std::string_view json);

// Reads Entrypoint, Cmd, Env, WorkingDir and User from a whole OCI image config document (its
// "config" object; an image without one has none of them).
Result<ImageProcess> ParseImageConfig(std::string_view config_json);

// Applies the precedence: spec args (when non-empty) replace Entrypoint+Cmd; env is the image's
// with the spec's entries overriding by key; cwd and user from the spec when set; everything but
// rlimits and no_new_privileges from the image when pinned. kInvalidArgument when no command is left.
Result<ProcessSpec> ResolveProcess(const BootSpec& spec);

// The digest the key release carries for this document: SHA-256 of its exact bytes.
Sha256Digest BootSpecDigest(std::string_view json);

}  // namespace sealroot::boot
