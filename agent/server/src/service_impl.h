// The AgentService implementation (private): records, pull joining, persistence.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "agent/server/service.h"
#include "agent/server/src/container_keys.h"
#include "agent/server/src/records.h"
#include "base/thread_annotations.h"

namespace sealroot::agent {

class AgentServiceImpl final : public AgentService {
 public:
  AgentServiceImpl(const AgentConfig& config, ServiceDeps deps, AgentState state,
                   std::unique_ptr<ContainerKeyring> keyring);
  Status RemoveOrphanStores();

  void SetShutdownHandler(std::function<void()> handler) override;
  Result<::grpc::PullImageResponse> PullImage(const ::grpc::PullImageRequest& request) override;
  Result<Empty> CreateSandbox(const ::grpc::CreateSandboxRequest& request) override;
  Result<Empty> DestroySandbox(const ::grpc::DestroySandboxRequest& request) override;
  Result<Empty> CreateContainer(const ::grpc::CreateContainerRequest& request) override;
  Result<Empty> StartContainer(const ::grpc::StartContainerRequest& request) override;
  Result<Empty> RemoveContainer(const ::grpc::RemoveContainerRequest& request) override;
  Result<Empty> ExecProcess(const ::grpc::ExecProcessRequest& request) override;
  Result<Empty> SignalProcess(const ::grpc::SignalProcessRequest& request) override;
  Result<::grpc::WaitProcessResponse> WaitProcess(const ::grpc::WaitProcessRequest& request) override;
  Result<::grpc::ReadStreamResponse> ReadStdout(const ::grpc::ReadStreamRequest& request) override;
  Result<::grpc::ReadStreamResponse> ReadStderr(const ::grpc::ReadStreamRequest& request) override;
  Result<::grpc::WriteStreamResponse> WriteStdin(const ::grpc::WriteStreamRequest& request) override;
  Result<Empty> CloseStdin(const ::grpc::CloseStdinRequest& request) override;
  Result<Empty> TtyWinResize(const ::grpc::TtyWinResizeRequest& request) override;
  Result<::grpc::ListContainersResponse> ListContainers(
      const ::grpc::ListContainersRequest& request) override;
  Result<Empty> UpdateContainer(const ::grpc::UpdateContainerRequest& request) override;
  Result<::grpc::StatsContainerResponse> StatsContainer(
      const ::grpc::StatsContainerRequest& request) override;
  Result<::grpc::HealthCheckResponse> Check(const ::grpc::CheckRequest& request) override;
  Result<::grpc::VersionCheckResponse> Version(const ::grpc::CheckRequest& request) override;

 private:
  // One pull in progress; later requests for the same image wait for it.
  struct InFlightPull {
    bool done = false;
    Status status;
    std::condition_variable_any cv;
  };

  // Makes sure `image` is pulled and sealed (joining a pull in flight), then records
  // `container_id` as prepared for it. Returns the image's canonical reference.
  Result<std::string> PrepareContainerRoot(const std::string& image, const std::string& container_id,
                                           SecretBytes creds) SR_EXCLUDES(mu_);
  // The image's key: the reference pinned to the manifest it names now (puller's Resolve, which
  // checks the signature policy), or `image` itself when it already is a recorded key.
  Result<ResolvedRef> Resolve(const std::string& image, const SecretBytes& creds) SR_EXCLUDES(mu_);
  // Pulls and records the image `resolved` names (spelled `image` by the client) unless it is
  // recorded, joining a pull of the same key in flight.
  Status EnsureImage(const ResolvedRef& resolved, const std::string& image, SecretBytes creds)
      SR_EXCLUDES(mu_);
  // Runs one pull into a fresh store directory and records it. Called by the pull's leader.
  Status RunPull(const ResolvedRef& resolved, const std::string& image, SecretBytes creds) SR_EXCLUDES(mu_);
  // One of limits.max_concurrent_pulls slots, for a pull or a resolve (waits for a free one).
  void AcquirePullSlot() SR_EXCLUDES(pull_slots_mu_);
  void ReleasePullSlot() SR_EXCLUDES(pull_slots_mu_);
  // Bytes of the recorded images' sealed stores (limits.max_store_size).
  std::uint64_t RecordedStoreBytes() SR_EXCLUDES(mu_);
  Result<std::shared_ptr<Process>> FindProcess(const std::string& container_id, const std::string& exec_id)
      SR_EXCLUDES(mu_);
  Status Persist() SR_REQUIRES(mu_);
  // The owner's workload policy (may wait for the key broker: call without mu_).
  Result<std::shared_ptr<const WorkloadPolicy>> Workload() const SR_EXCLUDES(mu_);
  // The one way a change to the records is saved: persists state_, and if that fails runs
  // `roll_back` (which restores the records as they were) and returns the error with `context`.
  // Memory and the sealed state file never disagree after a failed save.
  Status SaveOrRollBack(const std::function<void()>& roll_back, std::string_view context) SR_REQUIRES(mu_);
  Status CheckRunning(const std::string& id, std::string_view method) SR_EXCLUDES(mu_);
  // Drops `container_id` from its image's users; if it was the last, takes the image's record out
  // of the records and returns it (the caller removes its store once the change is saved).
  std::optional<ImageRecord> ReleaseImage(const std::string& image, const std::string& container_id)
      SR_REQUIRES(mu_);
  std::string StorePath(const std::string& store_name) const;
  std::string UpperPath(const std::string& container_id) const;

  const AgentConfig config_;
  const ServiceDeps deps_;
  // Outlives the records (declared before them): their boots report upper commits to it.
  const std::unique_ptr<ContainerKeyring> keyring_;

  Mutex mu_;
  AgentState state_ SR_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<InFlightPull>> in_flight_ SR_GUARDED_BY(mu_);
  std::function<void()> shutdown_ SR_GUARDED_BY(mu_);
  std::string sandbox_id_ SR_GUARDED_BY(mu_);

  // Serializes a finished pull's store-size check with recording it (taken before mu_).
  Mutex store_commit_mu_;

  // Bounds concurrent pulls (config limits.max_concurrent_pulls); joiners do not count.
  Mutex pull_slots_mu_;
  std::condition_variable_any pull_slots_cv_;
  std::size_t pulls_running_ SR_GUARDED_BY(pull_slots_mu_) = 0;
};

}  // namespace sealroot::agent
