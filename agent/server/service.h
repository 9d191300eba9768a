// AgentService: the one implementation of the kata-agent-compatible API (grpc.Image,
// grpc.AgentService, grpc.Health) behind both the ttrpc and the gRPC servers. It owns the
// image and container records, joins concurrent pulls of one image, persists its state sealed
// with the agent's SEAL key, and hands started containers to a ContainerRuntime.
//
// Every method validates its request first (ids, spec) and answers a Status whose code is the
// google.rpc code the transports send: kInvalidArgument for malformed requests, kNotFound for
// unknown containers, kAlreadyExists for duplicate ids, kPermissionDenied for refused policy.
//
// Thread-safety: all methods may be called concurrently. No call holds a lock while it waits on
// another process: PullImage, WaitProcess and ReadStdout/ReadStderr wait unlocked, and
// StartContainer (the app enclave's attestation) and ExecProcess (the boot starting the exec)
// mark their container busy and release the lock for the wait; meanwhile other calls are
// answered, and the busy container refuses another start and removal.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "agent.pb.h"
#include "agent/server/config.h"
#include "agent/server/puller.h"
#include "agent/server/runtime.h"
#include "agent/server/state_sealer.h"
#include "base/env.h"
#include "base/status.h"
#include "google/protobuf/empty.pb.h"
#include "health.pb.h"
#include "image.pb.h"

namespace sealroot::agent {

// The agent API version reported by Health.Version (kata's grpc_version field).
inline constexpr char kApiVersion[] = "0.0.1";

// Where the owner's workload policy comes from: the measured configuration's "workload" section,
// or the owner's key broker (key_broker.workload_policy), fetched after attestation on first use.
using WorkloadPolicySource = std::function<Result<std::shared_ptr<const WorkloadPolicy>>()>;

// The container id PullImage records for a request without one (enclave-cc's shim derives one
// from the image): "img-" + the first 16 bytes of SHA-256(image), in hex.
std::string DerivedContainerId(std::string_view image);

struct ServiceDeps {
  std::unique_ptr<ImagePuller> puller;
  std::unique_ptr<ContainerRuntime> runtime;
  std::unique_ptr<StateSealer> sealer;
  WorkloadPolicySource workload_policy;  // empty: the configuration's "workload" section
  Env* env = &Env::Default();            // where the sealed state is written (tests inject disk faults)
};

class AgentService {
 public:
  using Empty = google::protobuf::Empty;

  // Loads the sealed state from config.state_dir (if any) and removes image stores that no
  // record references (leftovers of a pull that was interrupted, e.g. by kill -9).
  static Result<std::unique_ptr<AgentService>> Create(const AgentConfig& config, ServiceDeps deps);
  virtual ~AgentService() = default;

  // Called (once) when DestroySandbox asks the agent to exit.
  virtual void SetShutdownHandler(std::function<void()> handler) = 0;

  virtual Result<::grpc::PullImageResponse> PullImage(const ::grpc::PullImageRequest& request) = 0;

  virtual Result<Empty> CreateSandbox(const ::grpc::CreateSandboxRequest& request) = 0;
  virtual Result<Empty> DestroySandbox(const ::grpc::DestroySandboxRequest& request) = 0;
  virtual Result<Empty> CreateContainer(const ::grpc::CreateContainerRequest& request) = 0;
  virtual Result<Empty> StartContainer(const ::grpc::StartContainerRequest& request) = 0;
  virtual Result<Empty> RemoveContainer(const ::grpc::RemoveContainerRequest& request) = 0;
  virtual Result<Empty> ExecProcess(const ::grpc::ExecProcessRequest& request) = 0;
  virtual Result<Empty> SignalProcess(const ::grpc::SignalProcessRequest& request) = 0;
  virtual Result<::grpc::WaitProcessResponse> WaitProcess(const ::grpc::WaitProcessRequest& request) = 0;
  virtual Result<::grpc::ReadStreamResponse> ReadStdout(const ::grpc::ReadStreamRequest& request) = 0;
  virtual Result<::grpc::ReadStreamResponse> ReadStderr(const ::grpc::ReadStreamRequest& request) = 0;
  virtual Result<::grpc::WriteStreamResponse> WriteStdin(const ::grpc::WriteStreamRequest& request) = 0;
  virtual Result<Empty> CloseStdin(const ::grpc::CloseStdinRequest& request) = 0;
  virtual Result<Empty> TtyWinResize(const ::grpc::TtyWinResizeRequest& request) = 0;
  // sealroot extension (design/api.md): every container, sorted by id.
  virtual Result<::grpc::ListContainersResponse> ListContainers(
      const ::grpc::ListContainersRequest& request) = 0;
  // The container's cgroup (design/api.md "Stats and updates"): `runc update` of memory, cpu,
  // pids and block I/O within the workload policy's bounds, and its statistics.
  virtual Result<Empty> UpdateContainer(const ::grpc::UpdateContainerRequest& request) = 0;
  virtual Result<::grpc::StatsContainerResponse> StatsContainer(
      const ::grpc::StatsContainerRequest& request) = 0;

  virtual Result<::grpc::HealthCheckResponse> Check(const ::grpc::CheckRequest& request) = 0;
  virtual Result<::grpc::VersionCheckResponse> Version(const ::grpc::CheckRequest& request) = 0;
};

}  // namespace sealroot::agent
