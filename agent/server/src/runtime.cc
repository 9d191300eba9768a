#include "agent/server/runtime.h"

namespace sealroot::agent {
namespace {

class UnavailableRuntime final : public ContainerRuntime {
 public:
  Result<std::unique_ptr<Process>> Start(const ContainerLaunch& launch) override {
    return FailedPrecondition(
        "StartContainer " + launch.container_id +
        ": boot not available (no \"boot\" configured, or the agent runs outside an enclave)");
  }
  Result<std::unique_ptr<Process>> Exec(const std::string& container_id, const std::string&) override {
    return FailedPrecondition("ExecProcess in " + container_id + ": boot not available");
  }
};

}  // namespace

Result<boot::CgroupStats> ContainerRuntime::Stats(const std::string& container_id) {
  return FailedPrecondition("StatsContainer " + container_id + ": this runtime keeps no cgroups");
}

Status ContainerRuntime::Update(const std::string& container_id, const nlohmann::json&) {
  return FailedPrecondition("UpdateContainer " + container_id + ": this runtime keeps no cgroups");
}

std::unique_ptr<ContainerRuntime> MakeUnavailableRuntime() {
  return std::make_unique<UnavailableRuntime>();
}

}  // namespace sealroot::agent
