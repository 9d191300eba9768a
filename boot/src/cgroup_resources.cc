#include "boot/src/cgroup_resources.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "boot/src/cgroup_devices.h"
#include "boot/src/cgroup_files.h"

namespace sealroot::boot {
namespace {

using Json = nlohmann::json;

Status FieldError(const std::string& field, const std::string& what) {
  return InvalidArgument("linux.resources." + field + ": " + what);
}

const Json* Member(const Json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

// Optional typed members; a present member of the wrong type is an error naming it.
Result<std::optional<std::int64_t>> Int(const Json& object, const char* key, const std::string& field) {
  const Json* value = Member(object, key);
  if (!value) return std::optional<std::int64_t>();
  if (!value->is_number_integer()) return FieldError(field + "." + key, "must be an integer");
  return std::optional<std::int64_t>(value->get<std::int64_t>());
}

Result<std::optional<std::uint64_t>> Uint(const Json& object, const char* key, const std::string& field) {
  SR_ASSIGN_OR_RETURN(std::optional<std::int64_t> value, Int(object, key, field));
  if (value && *value < 0 && !Member(object, key)->is_number_unsigned()) {
    return FieldError(field + "." + key, "must not be negative");
  }
  if (!value) return std::optional<std::uint64_t>();
  return std::optional<std::uint64_t>(Member(object, key)->get<std::uint64_t>());
}

Result<std::optional<std::string>> Str(const Json& object, const char* key, const std::string& field) {
  const Json* value = Member(object, key);
  if (!value) return std::optional<std::string>();
  if (!value->is_string()) return FieldError(field + "." + key, "must be a string");
  return std::optional<std::string>(value->get<std::string>());
}

Result<bool> Bool(const Json& object, const char* key, const std::string& field) {
  const Json* value = Member(object, key);
  if (!value) return false;
  if (!value->is_boolean()) return FieldError(field + "." + key, "must be a boolean");
  return value->get<bool>();
}

Result<const Json*> Section(const Json& resources, const char* key, Json::value_t type) {
  const Json* value = Member(resources, key);
  if (value && value->type() != type) {
    return FieldError(key, type == Json::value_t::object ? "must be an object" : "must be an array");
  }
  return value;
}

// Writes `value` to `file` in `dir` (nullptr: the host lacks the controller) for `field`.
Status Put(const std::string* dir, std::string_view controller, const std::string& file,
           const std::string& value, const std::string& field) {
  if (!dir) return FieldError(field, "the host has no " + std::string(controller) + " cgroup controller");
  if (!CgroupFileExists(*dir, file)) return FieldError(field, "this kernel's cgroup has no " + file);
  SR_RETURN_IF_ERROR_CTX(WriteCgroupFile(*dir, file, value), "linux.resources." + field);
  return OkStatus();
}

// ---- v1 ------------------------------------------------------------------------------------

Status MemoryV1(const std::string* dir, const Json& resources) {
  SR_ASSIGN_OR_RETURN(const Json* memory, Section(resources, "memory", Json::value_t::object));
  if (!memory) return OkStatus();
  // kernel, kernelTCP (gone from current kernels), useHierarchy (always on) and
  // checkBeforeUpdate (updates only) are ignored, as design/boot.md says.
  SR_ASSIGN_OR_RETURN(std::optional<std::int64_t> limit, Int(*memory, "limit", "memory"));
  SR_ASSIGN_OR_RETURN(std::optional<std::int64_t> reservation, Int(*memory, "reservation", "memory"));
  SR_ASSIGN_OR_RETURN(std::optional<std::int64_t> swap, Int(*memory, "swap", "memory"));
  SR_ASSIGN_OR_RETURN(std::optional<std::uint64_t> swappiness, Uint(*memory, "swappiness", "memory"));
  SR_ASSIGN_OR_RETURN(bool no_oom_killer, Bool(*memory, "disableOOMKiller", "memory"));
  // As runc: an unlimited memory limit without a swap limit means unlimited swap too.
  if (limit == -1 && !swap) swap = -1;
  // Unlimited swap needs no swap accounting; a swap limit does.
  bool swap_accounting = dir && CgroupFileExists(*dir, "memory.memsw.limit_in_bytes");
  bool write_swap = swap && (*swap != -1 || swap_accounting);
  // The kernel keeps memory.limit <= memory.memsw.limit at every step: an update that raises
  // both writes the swap limit first (as runc does).
  bool swap_first = false;
  if (write_swap && limit && swap_accounting) {
    Result<std::string> current = ReadCgroupFile(*dir, "memory.memsw.limit_in_bytes");
    std::uint64_t memsw = 0;
    if (current.ok()) std::from_chars(current->data(), current->data() + current->size(), memsw);
    swap_first = *swap == -1 || (current.ok() && *limit > 0 && memsw < static_cast<std::uint64_t>(*limit));
  }
  if (write_swap && swap_first) {
    SR_RETURN_IF_ERROR(
        Put(dir, "memory", "memory.memsw.limit_in_bytes", std::to_string(*swap), "memory.swap"));
  }
  if (limit)
    SR_RETURN_IF_ERROR(Put(dir, "memory", "memory.limit_in_bytes", std::to_string(*limit), "memory.limit"));
  if (write_swap && !swap_first) {
    SR_RETURN_IF_ERROR(
        Put(dir, "memory", "memory.memsw.limit_in_bytes", std::to_string(*swap), "memory.swap"));
  }
  if (reservation) {
    SR_RETURN_IF_ERROR(
        Put(dir, "memory", "memory.soft_limit_in_bytes", std::to_string(*reservation), "memory.reservation"));
  }
  if (swappiness) {
    if (*swappiness > 100) return FieldError("memory.swappiness", "must be 0 to 100");
    SR_RETURN_IF_ERROR(
        Put(dir, "memory", "memory.swappiness", std::to_string(*swappiness), "memory.swappiness"));
  }
  if (no_oom_killer)
    SR_RETURN_IF_ERROR(Put(dir, "memory", "memory.oom_control", "1", "memory.disableOOMKiller"));
  return OkStatus();
}

Status CpuV1(const ControllerDir& dir, const Json& resources) {
  SR_ASSIGN_OR_RETURN(const Json* cpu, Section(resources, "cpu", Json::value_t::object));
  if (!cpu) return OkStatus();
  struct Setting {
    const char* key;
    const char* controller;
    const char* file;
  };
  // The period before the quota: the kernel checks the quota against the current period.
  static constexpr Setting kNumbers[] = {
      {"shares", "cpu", "cpu.shares"},
      {"period", "cpu", "cpu.cfs_period_us"},
      {"quota", "cpu", "cpu.cfs_quota_us"},
      {"burst", "cpu", "cpu.cfs_burst_us"},
      {"realtimePeriod", "cpu", "cpu.rt_period_us"},
      {"realtimeRuntime", "cpu", "cpu.rt_runtime_us"},
      {"idle", "cpu", "cpu.idle"},
  };
  for (const Setting& s : kNumbers) {
    SR_ASSIGN_OR_RETURN(std::optional<std::int64_t> value, Int(*cpu, s.key, "cpu"));
    if (value)
      SR_RETURN_IF_ERROR(
          Put(dir(s.controller), s.controller, s.file, std::to_string(*value), std::string("cpu.") + s.key));
  }
  for (const char* key : {"cpus", "mems"}) {
    SR_ASSIGN_OR_RETURN(std::optional<std::string> value, Str(*cpu, key, "cpu"));
    if (value && !value->empty()) {
      SR_RETURN_IF_ERROR(
          Put(dir("cpuset"), "cpuset", std::string("cpuset.") + key, *value, std::string("cpu.") + key));
    }
  }
  return OkStatus();
}

Result<std::optional<std::string>> PidsMax(const Json& resources) {
  SR_ASSIGN_OR_RETURN(const Json* pids, Section(resources, "pids", Json::value_t::object));
  if (!pids) return std::optional<std::string>();
  SR_ASSIGN_OR_RETURN(std::optional<std::int64_t> limit, Int(*pids, "limit", "pids"));
  if (!limit || *limit == 0) return std::optional<std::string>();  // 0: not set, as runc reads it
  return std::optional<std::string>(*limit < 0 ? "max" : std::to_string(*limit));
}

struct Throttle {
  const char* key;
  const char* v1_file;
  const char* v2_key;
};
constexpr Throttle kThrottles[] = {
    {"throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps"},
    {"throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps"},
    {"throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops"},
    {"throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops"},
};

struct DeviceValue {
  std::string device;  // "major:minor"
  std::optional<std::uint64_t> value;
  std::optional<std::uint64_t> leaf;
};

Result<std::vector<DeviceValue>> DeviceValues(const Json& block_io, const char* key, const char* value_key) {
  std::vector<DeviceValue> out;
  const Json* list = Member(block_io, key);
  if (!list) return out;
  std::string field = std::string("blockIO.") + key;
  if (!list->is_array()) return FieldError(field, "must be an array");
  for (std::size_t i = 0; i < list->size(); ++i) {
    std::string item = field + "[" + std::to_string(i) + "]";
    const Json& entry = (*list)[i];
    if (!entry.is_object()) return FieldError(item, "must be an object");
    SR_ASSIGN_OR_RETURN(std::optional<std::uint64_t> major, Uint(entry, "major", item));
    SR_ASSIGN_OR_RETURN(std::optional<std::uint64_t> minor, Uint(entry, "minor", item));
    if (!major || !minor) return FieldError(item, "needs major and minor");
    SR_ASSIGN_OR_RETURN(std::optional<std::uint64_t> value, Uint(entry, value_key, item));
    SR_ASSIGN_OR_RETURN(std::optional<std::uint64_t> leaf, Uint(entry, "leafWeight", item));
    out.push_back({std::to_string(*major) + ":" + std::to_string(*minor), value, leaf});
  }
  return out;
}

Status BlockIoV1(const std::string* dir, const Json& resources) {
  SR_ASSIGN_OR_RETURN(const Json* block_io, Section(resources, "blockIO", Json::value_t::object));
  if (!block_io) return OkStatus();
  // CFQ's files, or BFQ's where that is the scheduler.
  auto weight_file = [&](const char* cfq, const char* bfq) {
    return dir && !CgroupFileExists(*dir, cfq) && CgroupFileExists(*dir, bfq) ? bfq : cfq;
  };
  SR_ASSIGN_OR_RETURN(std::optional<std::uint64_t> weight, Uint(*block_io, "weight", "blockIO"));
  if (weight) {
    SR_RETURN_IF_ERROR(Put(dir, "blkio", weight_file("blkio.weight", "blkio.bfq.weight"),
                           std::to_string(*weight), "blockIO.weight"));
  }
  SR_ASSIGN_OR_RETURN(std::optional<std::uint64_t> leaf, Uint(*block_io, "leafWeight", "blockIO"));
  if (leaf)
    SR_RETURN_IF_ERROR(Put(dir, "blkio", "blkio.leaf_weight", std::to_string(*leaf), "blockIO.leafWeight"));
  SR_ASSIGN_OR_RETURN(std::vector<DeviceValue> weights, DeviceValues(*block_io, "weightDevice", "weight"));
  for (const DeviceValue& w : weights) {
    const char* file = weight_file("blkio.weight_device", "blkio.bfq.weight_device");
    if (w.value)
      SR_RETURN_IF_ERROR(
          Put(dir, "blkio", file, w.device + " " + std::to_string(*w.value), "blockIO.weightDevice"));
    if (w.leaf) {
      SR_RETURN_IF_ERROR(Put(dir, "blkio", "blkio.leaf_weight_device",
                             w.device + " " + std::to_string(*w.leaf), "blockIO.weightDevice"));
    }
  }
  for (const Throttle& t : kThrottles) {
    SR_ASSIGN_OR_RETURN(std::vector<DeviceValue> rates, DeviceValues(*block_io, t.key, "rate"));
    for (const DeviceValue& r : rates) {
      SR_RETURN_IF_ERROR(Put(dir, "blkio", t.v1_file, r.device + " " + std::to_string(r.value.value_or(0)),
                             std::string("blockIO.") + t.key));
    }
  }
  return OkStatus();
}

// hugepageLimits[{pageSize: "2MB", limit}] -> hugetlb.2MB.<suffix>.
Status HugePages(const std::string* dir, const Json& resources, const char* suffix) {
  SR_ASSIGN_OR_RETURN(const Json* limits, Section(resources, "hugepageLimits", Json::value_t::array));
  for (std::size_t i = 0; limits && i < limits->size(); ++i) {
    std::string field = "hugepageLimits[" + std::to_string(i) + "]";
    const Json& entry = (*limits)[i];
    if (!entry.is_object()) return FieldError(field, "must be an object");
    SR_ASSIGN_OR_RETURN(std::optional<std::string> size, Str(entry, "pageSize", field));
    SR_ASSIGN_OR_RETURN(std::optional<std::uint64_t> limit, Uint(entry, "limit", field));
    if (!size || !limit || size->empty() || size->find('/') != std::string::npos) {
      return FieldError(field, "needs pageSize and limit");
    }
    SR_RETURN_IF_ERROR(Put(dir, "hugetlb", "hugetlb." + *size + "." + suffix, std::to_string(*limit), field));
  }
  return OkStatus();
}

Status NetworkV1(const ControllerDir& dir, const Json& resources) {
  SR_ASSIGN_OR_RETURN(const Json* network, Section(resources, "network", Json::value_t::object));
  if (!network) return OkStatus();
  SR_ASSIGN_OR_RETURN(std::optional<std::uint64_t> class_id, Uint(*network, "classID", "network"));
  if (class_id) {
    SR_RETURN_IF_ERROR(
        Put(dir("net_cls"), "net_cls", "net_cls.classid", std::to_string(*class_id), "network.classID"));
  }
  const Json* priorities = Member(*network, "priorities");
  if (priorities && !priorities->is_array()) return FieldError("network.priorities", "must be an array");
  for (std::size_t i = 0; priorities && i < priorities->size(); ++i) {
    std::string field = "network.priorities[" + std::to_string(i) + "]";
    const Json& entry = (*priorities)[i];
    if (!entry.is_object()) return FieldError(field, "must be an object");
    SR_ASSIGN_OR_RETURN(std::optional<std::string> name, Str(entry, "name", field));
    SR_ASSIGN_OR_RETURN(std::optional<std::uint64_t> priority, Uint(entry, "priority", field));
    if (!name || !priority) return FieldError(field, "needs name and priority");
    SR_RETURN_IF_ERROR(Put(dir("net_prio"), "net_prio", "net_prio.ifpriomap",
                           *name + " " + std::to_string(*priority), field));
  }
  return OkStatus();
}

bool NonEmpty(const Json& resources, const char* key) {
  const Json* value = Member(resources, key);
  return value && !value->empty();
}

// ---- v2 ------------------------------------------------------------------------------------

// runc's conversion: v1 swap is memory+swap, v2's swap.max is swap alone.
Result<std::string> SwapMaxV2(std::optional<std::int64_t> limit, std::int64_t swap) {
  if (swap == -1) return std::string("max");
  if (!limit || *limit <= 0) return FieldError("memory.swap", "a swap limit needs a memory limit");
  if (swap < *limit)
    return FieldError("memory.swap", "must be at least memory.limit (it counts memory plus swap)");
  return std::to_string(swap - *limit);
}

Status MemoryV2(const std::string& dir, const Json& resources) {
  SR_ASSIGN_OR_RETURN(const Json* memory, Section(resources, "memory", Json::value_t::object));
  if (!memory) return OkStatus();
  SR_ASSIGN_OR_RETURN(std::optional<std::int64_t> limit, Int(*memory, "limit", "memory"));
  SR_ASSIGN_OR_RETURN(std::optional<std::int64_t> reservation, Int(*memory, "reservation", "memory"));
  SR_ASSIGN_OR_RETURN(std::optional<std::int64_t> swap, Int(*memory, "swap", "memory"));
  if (Member(*memory, "swappiness")) return FieldError("memory.swappiness", "cgroup v2 has no swappiness");
  SR_ASSIGN_OR_RETURN(bool no_oom_killer, Bool(*memory, "disableOOMKiller", "memory"));
  if (no_oom_killer) return FieldError("memory.disableOOMKiller", "cgroup v2 cannot disable the OOM killer");
  if (limit == -1 && !swap) swap = -1;
  auto bytes = [](std::int64_t v) { return v < 0 ? std::string("max") : std::to_string(v); };
  if (swap && *swap != 0 && (*swap != -1 || CgroupFileExists(dir, "memory.swap.max"))) {
    SR_ASSIGN_OR_RETURN(std::string swap_max, SwapMaxV2(limit, *swap));
    SR_RETURN_IF_ERROR(Put(&dir, "memory", "memory.swap.max", swap_max, "memory.swap"));
  }
  if (limit) SR_RETURN_IF_ERROR(Put(&dir, "memory", "memory.max", bytes(*limit), "memory.limit"));
  if (reservation)
    SR_RETURN_IF_ERROR(Put(&dir, "memory", "memory.low", bytes(*reservation), "memory.reservation"));
  return OkStatus();
}

Status CpuV2(const std::string& dir, const Json& resources) {
  SR_ASSIGN_OR_RETURN(const Json* cpu, Section(resources, "cpu", Json::value_t::object));
  if (!cpu) return OkStatus();
  if (Member(*cpu, "realtimePeriod") || Member(*cpu, "realtimeRuntime")) {
    return FieldError("cpu.realtimeRuntime", "cgroup v2 has no real-time CPU budget");
  }
  SR_ASSIGN_OR_RETURN(std::optional<std::uint64_t> shares, Uint(*cpu, "shares", "cpu"));
  if (shares && *shares != 0) {
    // runc's mapping of shares [2, 262144] onto weight [1, 10000].
    std::uint64_t clamped = std::clamp<std::uint64_t>(*shares, 2, 262144);
    SR_RETURN_IF_ERROR(
        Put(&dir, "cpu", "cpu.weight", std::to_string(1 + ((clamped - 2) * 9999) / 262142), "cpu.shares"));
  }
  SR_ASSIGN_OR_RETURN(std::optional<std::int64_t> quota, Int(*cpu, "quota", "cpu"));
  SR_ASSIGN_OR_RETURN(std::optional<std::uint64_t> period, Uint(*cpu, "period", "cpu"));
  if (quota || period) {
    std::string max = quota && *quota > 0 ? std::to_string(*quota) : "max";
    SR_RETURN_IF_ERROR(Put(&dir, "cpu", "cpu.max",
                           max + " " + std::to_string(period && *period ? *period : 100000), "cpu.quota"));
  }
  SR_ASSIGN_OR_RETURN(std::optional<std::uint64_t> burst, Uint(*cpu, "burst", "cpu"));
  if (burst) SR_RETURN_IF_ERROR(Put(&dir, "cpu", "cpu.max.burst", std::to_string(*burst), "cpu.burst"));
  SR_ASSIGN_OR_RETURN(std::optional<std::int64_t> idle, Int(*cpu, "idle", "cpu"));
  if (idle) SR_RETURN_IF_ERROR(Put(&dir, "cpu", "cpu.idle", std::to_string(*idle), "cpu.idle"));
  for (const char* key : {"cpus", "mems"}) {
    SR_ASSIGN_OR_RETURN(std::optional<std::string> value, Str(*cpu, key, "cpu"));
    if (value && !value->empty()) {
      SR_RETURN_IF_ERROR(
          Put(&dir, "cpuset", std::string("cpuset.") + key, *value, std::string("cpu.") + key));
    }
  }
  return OkStatus();
}

Status BlockIoV2(const std::string& dir, const Json& resources) {
  SR_ASSIGN_OR_RETURN(const Json* block_io, Section(resources, "blockIO", Json::value_t::object));
  if (!block_io) return OkStatus();
  if (Member(*block_io, "leafWeight"))
    return FieldError("blockIO.leafWeight", "cgroup v2 has no leaf weight");
  bool bfq = CgroupFileExists(dir, "io.bfq.weight");
  SR_ASSIGN_OR_RETURN(std::optional<std::uint64_t> weight, Uint(*block_io, "weight", "blockIO"));
  if (weight && bfq) {
    SR_RETURN_IF_ERROR(Put(&dir, "io", "io.bfq.weight", std::to_string(*weight), "blockIO.weight"));
  } else if (weight) {
    // runc's mapping of blkio weight [10, 1000] onto io.weight [1, 10000].
    std::uint64_t clamped = std::clamp<std::uint64_t>(*weight, 10, 1000);
    SR_RETURN_IF_ERROR(Put(&dir, "io", "io.weight",
                           "default " + std::to_string(1 + (clamped - 10) * 9999 / 990), "blockIO.weight"));
  }
  SR_ASSIGN_OR_RETURN(std::vector<DeviceValue> weights, DeviceValues(*block_io, "weightDevice", "weight"));
  for (const DeviceValue& w : weights) {
    if (w.leaf) return FieldError("blockIO.weightDevice", "cgroup v2 has no leaf weight");
    if (!bfq)
      return FieldError("blockIO.weightDevice", "per-device weights need the BFQ scheduler (io.bfq.weight)");
    if (w.value)
      SR_RETURN_IF_ERROR(Put(&dir, "io", "io.bfq.weight", w.device + " " + std::to_string(*w.value),
                             "blockIO.weightDevice"));
  }
  for (const Throttle& t : kThrottles) {
    SR_ASSIGN_OR_RETURN(std::vector<DeviceValue> rates, DeviceValues(*block_io, t.key, "rate"));
    for (const DeviceValue& r : rates) {
      std::string rate = r.value && *r.value ? std::to_string(*r.value) : "max";
      SR_RETURN_IF_ERROR(
          Put(&dir, "io", "io.max", r.device + " " + t.v2_key + "=" + rate, std::string("blockIO.") + t.key));
    }
  }
  return OkStatus();
}

// linux.resources.unified: v2 control files written as given.
Status UnifiedV2(const std::string& dir, const Json& resources) {
  SR_ASSIGN_OR_RETURN(const Json* unified, Section(resources, "unified", Json::value_t::object));
  for (auto it = unified ? unified->begin() : Json::const_iterator(); unified && it != unified->end(); ++it) {
    std::string field = "unified." + it.key();
    if (it.key().empty() || it.key().find('/') != std::string::npos || it.key()[0] == '.') {
      return FieldError(field, "not a control file name");
    }
    if (!it->is_string()) return FieldError(field, "must be a string");
    SR_RETURN_IF_ERROR(
        Put(&dir, it.key().substr(0, it.key().find('.')), it.key(), it->get<std::string>(), field));
  }
  return OkStatus();
}

// The fields `runc update` changes on a running container; any other is refused by name.
Status CheckUpdatable(const Json& resources) {
  if (!resources.is_object()) return InvalidArgument("linux.resources: must be an object");
  for (const auto& [key, value] : resources.items()) {
    if (value.is_null()) continue;
    if (key != "memory" && key != "cpu" && key != "pids" && key != "blockIO") {
      return FieldError(key, "cannot change while the container runs (only memory, cpu, pids and blockIO)");
    }
  }
  return OkStatus();
}

}  // namespace

Status UpdateResourcesV1(const ControllerDir& dir, const Json& resources) {
  SR_RETURN_IF_ERROR(CheckUpdatable(resources));
  SR_RETURN_IF_ERROR(MemoryV1(dir("memory"), resources));
  SR_RETURN_IF_ERROR(CpuV1(dir, resources));
  SR_ASSIGN_OR_RETURN(std::optional<std::string> pids_max, PidsMax(resources));
  if (pids_max) SR_RETURN_IF_ERROR(Put(dir("pids"), "pids", "pids.max", *pids_max, "pids.limit"));
  return BlockIoV1(dir("blkio"), resources);
}

Status UpdateResourcesV2(const std::string& dir, const Json& resources) {
  SR_RETURN_IF_ERROR(CheckUpdatable(resources));
  SR_RETURN_IF_ERROR(MemoryV2(dir, resources));
  SR_RETURN_IF_ERROR(CpuV2(dir, resources));
  SR_ASSIGN_OR_RETURN(std::optional<std::string> pids_max, PidsMax(resources));
  if (pids_max) SR_RETURN_IF_ERROR(Put(&dir, "pids", "pids.max", *pids_max, "pids.limit"));
  return BlockIoV2(dir, resources);
}

Status ApplyResourcesV1(const ControllerDir& dir, const Json& resources, const Json& linux_devices) {
  static const Json kNone = Json::object();
  const Json& r = resources.is_null() ? kNone : resources;
  if (!r.is_object()) return InvalidArgument("linux.resources: must be an object");
  if (NonEmpty(r, "unified")) return FieldError("unified", "cgroup v2 files, and this host uses cgroup v1");
  if (NonEmpty(r, "rdma")) return FieldError("rdma", "not supported by sealroot-boot");
  SR_ASSIGN_OR_RETURN(std::vector<DeviceRule> device_rules, DeviceRules(r, linux_devices));
  if (!dir("devices")) return FieldError("devices", "the host has no devices cgroup controller");
  SR_RETURN_IF_ERROR(ApplyDeviceRulesV1(*dir("devices"), device_rules));
  SR_RETURN_IF_ERROR(MemoryV1(dir("memory"), r));
  SR_RETURN_IF_ERROR(CpuV1(dir, r));
  SR_ASSIGN_OR_RETURN(std::optional<std::string> pids_max, PidsMax(r));
  if (pids_max) SR_RETURN_IF_ERROR(Put(dir("pids"), "pids", "pids.max", *pids_max, "pids.limit"));
  SR_RETURN_IF_ERROR(BlockIoV1(dir("blkio"), r));
  SR_RETURN_IF_ERROR(HugePages(dir("hugetlb"), r, "limit_in_bytes"));
  return NetworkV1(dir, r);
}

Status ApplyResourcesV2(const std::string& dir, const Json& resources, const Json& linux_devices) {
  static const Json kNone = Json::object();
  const Json& r = resources.is_null() ? kNone : resources;
  if (!r.is_object()) return InvalidArgument("linux.resources: must be an object");
  SR_ASSIGN_OR_RETURN(std::vector<DeviceRule> device_rules, DeviceRules(r, linux_devices));
  SR_RETURN_IF_ERROR_CTX(AttachDeviceFilter(dir, device_rules), "linux.resources.devices");
  if (NonEmpty(r, "network")) return FieldError("network", "cgroup v2 has no net_cls/net_prio controllers");
  if (NonEmpty(r, "rdma")) return FieldError("rdma", "not supported by sealroot-boot");
  SR_RETURN_IF_ERROR(MemoryV2(dir, r));
  SR_RETURN_IF_ERROR(CpuV2(dir, r));
  SR_ASSIGN_OR_RETURN(std::optional<std::string> pids_max, PidsMax(r));
  if (pids_max) SR_RETURN_IF_ERROR(Put(&dir, "pids", "pids.max", *pids_max, "pids.limit"));
  SR_RETURN_IF_ERROR(BlockIoV2(dir, r));
  SR_RETURN_IF_ERROR(HugePages(&dir, r, "max"));
  return UnifiedV2(dir, r);
}

}  // namespace sealroot::boot
