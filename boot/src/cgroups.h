// The container's cgroup, as runc makes it: created under `linux.cgroupsPath` (or a default per
// container) on the hierarchy the host has — every mounted cgroup v1 hierarchy, or the cgroup v2
// tree when /sys/fs/cgroup is cgroup2 — with `linux.resources` applied before any process joins,
// stats for the agent, and on destruction every process left killed and every directory this
// object created removed. What is applied, refused and ignored: design/boot.md.
//
// Thread-safety: one Cgroup is used by one thread at a time; distinct containers' Cgroups are
// independent.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.h"
#include "base/status.h"
#include "boot/spec/cgroup_stats.h"

namespace sealroot::boot {

class Cgroup {
  struct Key {
    explicit Key() = default;
  };

 public:
  explicit Cgroup(Key) {}  // Create() makes them
  // `cgroups_path`: runc's semantics. An absolute path is relative to each hierarchy's root; a
  // relative one to the boot's own cgroup (v1) or its parent (v2, whose own cgroup holds
  // processes and so cannot delegate controllers). Empty: "sealroot/<container_id>", relative.
  // The systemd form "slice:prefix:name" is refused (no systemd driver). ".." is refused. A
  // container never shares a cgroup with another: an existing last directory is taken over only
  // when no live Cgroup holds it (each holds a lock on its directories) and no process is in it
  // (what a boot killed with SIGKILL leaves); otherwise kAlreadyExists.
  // `resources`: `linux.resources` (null: nothing but runc's default device rules).
  // `linux_devices`: `linux.devices`; each listed device is allowed "rwm", as runc does.
  static Result<std::unique_ptr<Cgroup>> Create(std::string_view cgroups_path,
                                                const nlohmann::json& resources,
                                                std::string_view container_id,
                                                const nlohmann::json& linux_devices = nullptr);
  // Kills every process left in the cgroup (and in cgroups the container made below it), then
  // removes every directory Create made, leaves first.
  ~Cgroup();
  Cgroup(const Cgroup&) = delete;
  Cgroup& operator=(const Cgroup&) = delete;

  // Moves `pid` (the container's init, before it forks anything) into the cgroup on every
  // hierarchy.
  Status AddProcess(pid_t pid);
  // Memory, CPU, block I/O and pids; what the host lacks (a controller, blkio on v2 without io)
  // stays 0 or empty.
  Result<CgroupStats> Stats() const;
  // `runc update`: `resources` (linux.resources JSON) rewrites the memory, cpu, pids and blockIO
  // settings of the running container; any other field is kInvalidArgument naming it (devices
  // and the rest are fixed at creation).
  Status Update(const nlohmann::json& resources);

  bool unified() const { return unified_; }
  // The cgroup's directories: one per v1 hierarchy (and the hybrid v2 one), or the one v2
  // directory.
  std::vector<std::string> directories() const;

 private:
  struct Hierarchy {
    std::vector<std::string> controllers;  // v1: "memory", "cpu", "name=systemd"...; v2: none
    std::string leaf;                      // the container's directory
    std::vector<std::string> created;      // directories Create made, outermost first
    UniqueFd lock;                         // the leaf, flock()ed while this Cgroup lives
  };
  const Hierarchy* Find(std::string_view controller) const;
  Status CpuStats(CgroupStats& stats) const;
  Status IoStats(CgroupStats& stats) const;
  void KillAll();
  void RemoveDirectories();

  bool unified_ = false;
  std::vector<Hierarchy> hierarchies_;
};

}  // namespace sealroot::boot
