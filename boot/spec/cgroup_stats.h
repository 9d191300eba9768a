// A container's cgroup statistics as the boot reports them to the agent over the exec socket
// (boot/spec/exec.h, the {"cgroupStats":{}} request), and their JSON form on that wire. The
// numbers come from the host kernel's cgroup files: they are the host's to report, never a
// secret and never trusted for a security decision.
//
// Thread-safety: value types and pure functions.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/status.h"

namespace sealroot::boot {

struct BlkioEntry {
  std::uint64_t major = 0;
  std::uint64_t minor = 0;
  std::string op;  // "Read", "Write", "Sync", "Async", "Discard", "Total"
  std::uint64_t value = 0;
};

struct CgroupStats {
  std::uint64_t memory_usage = 0;      // bytes charged now
  std::uint64_t memory_max_usage = 0;  // peak bytes (0 where the kernel does not keep a peak)
  std::uint64_t memory_limit = 0;      // bytes; UINT64_MAX when unlimited
  std::uint64_t memory_failcnt = 0;    // times usage hit the limit (v2: memory.events "max"; recent
                                       // kernels leave v1's memory.failcnt at 0)
  std::uint64_t oom_kills = 0;         // processes the OOM killer killed in this cgroup
  std::uint64_t memory_cache = 0;      // page cache bytes (v1 "cache", v2 "file")
  std::uint64_t memory_rss = 0;        // anonymous bytes (v1 "rss", v2 "anon")
  std::uint64_t pids_current = 0;
  std::uint64_t pids_limit = 0;  // 0 when unlimited
  std::uint64_t cpu_usage_ns = 0;
  std::uint64_t cpu_user_ns = 0;
  std::uint64_t cpu_kernel_ns = 0;
  std::vector<std::uint64_t> cpu_per_cpu_ns;  // v1 only (v2 keeps no per-CPU usage)
  std::uint64_t cpu_periods = 0;              // CFS enforcement periods elapsed
  std::uint64_t cpu_throttled_periods = 0;
  std::uint64_t cpu_throttled_ns = 0;
  std::vector<BlkioEntry> io_service_bytes;  // bytes per device and operation
  std::vector<BlkioEntry> io_serviced;       // operations per device and operation
};

nlohmann::json EncodeCgroupStats(const CgroupStats& stats);
// kInvalidArgument for a document that is not what EncodeCgroupStats writes.
Result<CgroupStats> DecodeCgroupStats(const nlohmann::json& doc);

}  // namespace sealroot::boot
