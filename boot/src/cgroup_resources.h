// `linux.resources` written into a new cgroup's control files, for cgroup v1 (one directory per
// controller) and v2 (one directory). Every field given is applied or refused naming the field;
// the few that are ignored are listed in design/boot.md.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/status.h"

namespace sealroot::boot {

// The container's directory for a v1 controller ("memory", "cpu"...), or nullptr when the host
// has no hierarchy for it.
using ControllerDir = std::function<const std::string*(std::string_view controller)>;

// Device rules: the spec's, then runc's defaults, then "rwm" for each of `linux_devices`.
Status ApplyResourcesV1(const ControllerDir& dir, const nlohmann::json& resources,
                        const nlohmann::json& linux_devices);
Status ApplyResourcesV2(const std::string& dir, const nlohmann::json& resources,
                        const nlohmann::json& linux_devices);

// `runc update` of a running container: memory, cpu, pids and blockIO as for a new cgroup; any
// other field (devices, hugepageLimits...) is kInvalidArgument naming it.
Status UpdateResourcesV1(const ControllerDir& dir, const nlohmann::json& resources);
Status UpdateResourcesV2(const std::string& dir, const nlohmann::json& resources);

}  // namespace sealroot::boot
