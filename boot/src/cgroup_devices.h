// The devices controller: the container's device rules (the spec's, runc's defaults, and the
// nodes `linux.devices` creates), applied as cgroup v1 allow/deny lists or as the eBPF program
// cgroup v2 uses instead.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/status.h"

namespace sealroot::boot {

struct DeviceRule {
  static constexpr std::int64_t kAny = -1;
  bool allow = false;
  char type = 'a';  // 'a' (every device: resets the list), 'b' or 'c'
  std::int64_t major = kAny;
  std::int64_t minor = kAny;
  std::string access = "rwm";
};

// The rules in the order they apply (the last matching rule decides, starting from "nothing
// allowed"): `resources.devices`, then runc's defaults, then "rwm" for each `linux.devices` node.
Result<std::vector<DeviceRule>> DeviceRules(const nlohmann::json& resources,
                                            const nlohmann::json& linux_devices);

// v1: `devices.deny a`, then each rule written to devices.allow or devices.deny.
Status ApplyDeviceRulesV1(const std::string& dir, const std::vector<DeviceRule>& rules);
// v2: a BPF_PROG_TYPE_CGROUP_DEVICE program with the same meaning attached to the cgroup
// directory `dir` (BPF_F_ALLOW_MULTI: the parents' programs still apply).
Status AttachDeviceFilter(const std::string& dir, const std::vector<DeviceRule>& rules);

}  // namespace sealroot::boot
