#include "boot/spec/cgroup_stats.h"

namespace sealroot::boot {
namespace {

using nlohmann::json;

json EncodeEntries(const std::vector<BlkioEntry>& entries) {
  json out = json::array();
  for (const BlkioEntry& e : entries) {
    out.push_back({{"major", e.major}, {"minor", e.minor}, {"op", e.op}, {"value", e.value}});
  }
  return out;
}

std::vector<BlkioEntry> DecodeEntries(const json& list) {
  std::vector<BlkioEntry> out;
  for (const json& e : list) {
    out.push_back({e.at("major").get<std::uint64_t>(), e.at("minor").get<std::uint64_t>(),
                   e.at("op").get<std::string>(), e.at("value").get<std::uint64_t>()});
  }
  return out;
}

}  // namespace

json EncodeCgroupStats(const CgroupStats& s) {
  return {
      {"memory",
       {{"usage", s.memory_usage},
        {"maxUsage", s.memory_max_usage},
        {"limit", s.memory_limit},
        {"failcnt", s.memory_failcnt},
        {"oomKills", s.oom_kills},
        {"cache", s.memory_cache},
        {"rss", s.memory_rss}}},
      {"pids", {{"current", s.pids_current}, {"limit", s.pids_limit}}},
      {"cpu",
       {{"usage", s.cpu_usage_ns},
        {"user", s.cpu_user_ns},
        {"kernel", s.cpu_kernel_ns},
        {"perCpu", s.cpu_per_cpu_ns},
        {"periods", s.cpu_periods},
        {"throttledPeriods", s.cpu_throttled_periods},
        {"throttledTime", s.cpu_throttled_ns}}},
      {"blkio",
       {{"serviceBytes", EncodeEntries(s.io_service_bytes)}, {"serviced", EncodeEntries(s.io_serviced)}}}};
}

Result<CgroupStats> DecodeCgroupStats(const json& doc) {
  CgroupStats s;
  try {
    const json& memory = doc.at("memory");
    s.memory_usage = memory.at("usage").get<std::uint64_t>();
    s.memory_max_usage = memory.at("maxUsage").get<std::uint64_t>();
    s.memory_limit = memory.at("limit").get<std::uint64_t>();
    s.memory_failcnt = memory.at("failcnt").get<std::uint64_t>();
    s.oom_kills = memory.at("oomKills").get<std::uint64_t>();
    s.memory_cache = memory.at("cache").get<std::uint64_t>();
    s.memory_rss = memory.at("rss").get<std::uint64_t>();
    s.pids_current = doc.at("pids").at("current").get<std::uint64_t>();
    s.pids_limit = doc.at("pids").at("limit").get<std::uint64_t>();
    const json& cpu = doc.at("cpu");
    s.cpu_usage_ns = cpu.at("usage").get<std::uint64_t>();
    s.cpu_user_ns = cpu.at("user").get<std::uint64_t>();
    s.cpu_kernel_ns = cpu.at("kernel").get<std::uint64_t>();
    s.cpu_per_cpu_ns = cpu.at("perCpu").get<std::vector<std::uint64_t>>();
    s.cpu_periods = cpu.at("periods").get<std::uint64_t>();
    s.cpu_throttled_periods = cpu.at("throttledPeriods").get<std::uint64_t>();
    s.cpu_throttled_ns = cpu.at("throttledTime").get<std::uint64_t>();
    s.io_service_bytes = DecodeEntries(doc.at("blkio").at("serviceBytes"));
    s.io_serviced = DecodeEntries(doc.at("blkio").at("serviced"));
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("cgroup stats: ") + e.what());
  }
  return s;
}

}  // namespace sealroot::boot
