// The OCI runtime-spec parts of the boot spec beyond the process's identity: capabilities,
// mounts, the "linux" object, and the fields sealroot refuses (design/boot.md).
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "base/status.h"
#include "boot/spec/process_spec.h"

namespace sealroot::boot {

Result<Capabilities> ParseCapabilities(const nlohmann::json& capabilities);
Result<std::vector<SpecMount>> ParseMounts(const nlohmann::json& mounts);
Result<LinuxSpec> ParseLinux(const nlohmann::json& linux);
// AppArmor and SELinux labels, hooks and the other fields a process-based enclave runtime
// cannot honour: kInvalidArgument naming the field when the document sets one.
Status RefuseUnsupported(const nlohmann::json& doc);

}  // namespace sealroot::boot
