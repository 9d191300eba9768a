// The container lifecycle half of AgentService: sandbox, create, start, processes, remove.
#include "agent/server/src/service_impl.h"

#include <csignal>

#include "agent/server/src/private_dir.h"
#include "agent/server/src/reachability.h"
#include "agent/server/src/validate.h"
#include "agent/server/src/watched_process.h"
#include "base/file.h"
#include "base/log.h"

namespace sealroot::agent {
namespace {

constexpr std::size_t kDefaultReadSize = 64u << 10;
constexpr std::size_t kMaxReadSize = 1u << 20;

}  // namespace

Result<std::unique_ptr<AgentService>> AgentService::Create(const AgentConfig& config, ServiceDeps deps) {
  if (!deps.puller || !deps.runtime || !deps.sealer || !deps.env)
    return InvalidArgument("agent service: missing dependency");
  SR_RETURN_IF_ERROR_CTX(MakePrivateDir(config.state_dir), "creating agent state directory");
  SR_RETURN_IF_ERROR_CTX(MakePrivateDir(JoinPath(config.store_dir, "images")),
                         "creating image store directory");
  SR_ASSIGN_OR_RETURN(AgentState state, LoadState(*deps.sealer, config.state_dir));
  SR_LOG(kInfo) << "agent state: " << state.images.size() << " images, " << state.containers.size()
                << " containers";
  SR_ASSIGN_OR_RETURN(std::unique_ptr<ContainerKeyring> keyring,
                      ContainerKeyring::Load(*deps.sealer, config.state_dir, *deps.env));
  auto service =
      std::make_unique<AgentServiceImpl>(config, std::move(deps), std::move(state), std::move(keyring));
  SR_RETURN_IF_ERROR(service->RemoveOrphanStores());
  return std::unique_ptr<AgentService>(std::move(service));
}

AgentServiceImpl::AgentServiceImpl(const AgentConfig& config, ServiceDeps deps, AgentState state,
                                   std::unique_ptr<ContainerKeyring> keyring)
    : config_(config), deps_(std::move(deps)), keyring_(std::move(keyring)), state_(std::move(state)) {}

void AgentServiceImpl::SetShutdownHandler(std::function<void()> handler) {
  MutexLock lock(mu_);
  shutdown_ = std::move(handler);
}

std::string AgentServiceImpl::StorePath(const std::string& store_name) const {
  return JoinPath(JoinPath(config_.store_dir, "images"), store_name);
}

std::string AgentServiceImpl::UpperPath(const std::string& container_id) const {
  return JoinPath(JoinPath(config_.state_dir, "containers"), container_id);
}

Status AgentServiceImpl::Persist() {
  return SaveState(state_, *deps_.sealer, config_.state_dir, *deps_.env);
}

Result<AgentService::Empty> AgentServiceImpl::CreateSandbox(const ::grpc::CreateSandboxRequest& request) {
  MutexLock lock(mu_);
  if (!sandbox_id_.empty() && sandbox_id_ != request.sandbox_id()) {
    return AlreadyExists("this agent already serves sandbox " + sandbox_id_);
  }
  sandbox_id_ = request.sandbox_id().empty() ? "default" : request.sandbox_id();
  return Empty();
}

Result<AgentService::Empty> AgentServiceImpl::DestroySandbox(const ::grpc::DestroySandboxRequest&) {
  std::function<void()> shutdown;
  {
    MutexLock lock(mu_);
    for (auto& [id, c] : state_.containers) {
      if (c.init) (void)c.init->Signal(SIGKILL);
    }
    shutdown = std::exchange(shutdown_, nullptr);
  }
  SR_LOG(kInfo) << "DestroySandbox: the agent exits; its sealed store stays for the next agent";
  if (shutdown) shutdown();
  return Empty();
}

Result<AgentService::Empty> AgentServiceImpl::CreateContainer(const ::grpc::CreateContainerRequest& request) {
  const std::string& id = request.container_id();
  SR_RETURN_IF_ERROR(ValidateContainerId(id));
  if (!request.has_oci()) return InvalidArgument("CreateContainer " + id + ": malformed OCI spec: no spec");
  SR_RETURN_IF_ERROR_CTX(ValidateSpec(request.oci()), "CreateContainer " + id);
  SR_ASSIGN_OR_RETURN(std::string guest_image, GuestPullImage(request));
  if (!guest_image.empty()) {
    SR_RETURN_IF_ERROR(ValidateImageRef(guest_image, config_.limits.max_image_ref_size));
    // kata 3.x: the pull happens inside CreateContainer (credentials come from the policy/KBS).
    Result<std::string> prepared = PrepareContainerRoot(guest_image, id, SecretBytes());
    if (!prepared.ok()) return std::move(prepared).status().WithContext("CreateContainer " + id);
  }
  MutexLock lock(mu_);
  auto it = state_.containers.find(id);
  if (it == state_.containers.end()) {
    return FailedPrecondition("CreateContainer " + id +
                              ": no image was pulled for this container (PullImage with "
                              "container_id=" +
                              id + ", or an image_guest_pull storage)");
  }
  ContainerRecord& record = it->second;
  if (record.state != ContainerState::kPulled) return AlreadyExists("container " + id + " already exists");
  SR_RETURN_IF_ERROR_CTX(
      CheckContainerSpec(config_.workload, state_.images.at(record.image).run, request.oci()),
      "CreateContainer " + id);
  SR_RETURN_IF_ERROR_CTX(CheckAgentUnreachable(request.oci(), config_), "CreateContainer " + id);
  SR_RETURN_IF_ERROR_CTX(MakePrivateDir(JoinPath(UpperPath(id), "upper")), "CreateContainer " + id);
  SR_RETURN_IF_ERROR_CTX(keyring_->Register(id), "CreateContainer " + id);
  record.spec = request.oci().SerializeAsString();
  record.state = ContainerState::kCreated;
  Status persisted = Persist();
  if (!persisted.ok()) {
    record.state = ContainerState::kPulled;
    return persisted.WithContext("CreateContainer " + id);
  }
  return Empty();
}

Result<AgentService::Empty> AgentServiceImpl::StartContainer(const ::grpc::StartContainerRequest& request) {
  const std::string& id = request.container_id();
  SR_RETURN_IF_ERROR(ValidateContainerId(id));
  MutexLock lock(mu_);
  auto it = state_.containers.find(id);
  if (it == state_.containers.end()) return NotFound("StartContainer: no container " + id);
  ContainerRecord& record = it->second;
  if (record.state != ContainerState::kCreated) {
    return FailedPrecondition("StartContainer " + id + ": container is " +
                              std::string(ContainerStateName(record.state)) + ", not created");
  }
  const ImageRecord& image = state_.images.at(record.image);
  SR_ASSIGN_OR_RETURN(ContainerSecrets secrets, keyring_->Secrets(id));
  auto record_commit = [keyring = keyring_.get(), id](const local_attest::UpperCommit& commit) {
    return keyring->RecordUpperCommit(id, commit);
  };
  ContainerLaunch launch{id,
                         StorePath(image.store_name),
                         image.root_hash_hex,
                         &image.key,
                         JoinPath(UpperPath(id), "upper"),
                         record.spec,
                         config_.app_enclaves,
                         &secrets.upper_key,
                         &secrets.exec_key,
                         secrets.upper_root,
                         record_commit,
                         config_.workload.PinsToImage()};
  SR_ASSIGN_OR_RETURN(std::unique_ptr<Process> process, deps_.runtime->Start(launch));
  record.init = WatchProcess(std::move(process));
  record.state = ContainerState::kRunning;
  SR_RETURN_IF_ERROR_CTX(Persist(), "StartContainer " + id);
  return Empty();
}

Result<AgentService::Empty> AgentServiceImpl::RemoveContainer(const ::grpc::RemoveContainerRequest& request) {
  const std::string& id = request.container_id();
  SR_RETURN_IF_ERROR(ValidateContainerId(id));
  MutexLock lock(mu_);
  auto it = state_.containers.find(id);
  if (it == state_.containers.end()) return NotFound("RemoveContainer: no container " + id);
  if (it->second.init) (void)it->second.init->Signal(SIGKILL);
  for (auto& [exec_id, process] : it->second.execs) (void)process->Signal(SIGKILL);
  SR_RETURN_IF_ERROR_CTX(RemoveTree(UpperPath(id)), "RemoveContainer " + id);
  std::string image = it->second.image;
  state_.containers.erase(it);
  ReleaseImage(image, id);
  SR_RETURN_IF_ERROR_CTX(Persist(), "RemoveContainer " + id);
  // A leftover entry is harmless: a new container with this id gets a new incarnation.
  if (Status forgot = keyring_->Forget(id); !forgot.ok()) {
    SR_LOG(kWarning) << "RemoveContainer " << id << ": " << forgot.message();
  }
  return Empty();
}

void AgentServiceImpl::ReleaseImage(const std::string& image, const std::string& container_id) {
  auto it = state_.images.find(image);
  if (it == state_.images.end()) return;
  it->second.users.erase(container_id);
  if (!it->second.users.empty()) return;
  // Forget the record first: a store without a record is an orphan, removed at the next start
  // if this removal fails half way.
  std::string store = StorePath(it->second.store_name);
  state_.images.erase(it);
  Status removed = RemoveTree(store);
  if (!removed.ok()) {
    SR_LOG(kWarning) << "removing image store " << store << ": " << removed.message();
  }
}

Result<AgentService::Empty> AgentServiceImpl::ExecProcess(const ::grpc::ExecProcessRequest& request) {
  SR_RETURN_IF_ERROR(ValidateContainerId(request.container_id()));
  if (config_.workload.exec.empty()) {
    return PermissionDenied("ExecProcess in " + request.container_id() +
                            ": process.args: the workload policy lists no command exec may run");
  }
  if (request.exec_id().empty() || request.exec_id() == request.container_id()) {
    return InvalidArgument("ExecProcess: exec_id must be set and differ from the container id");
  }
  MutexLock lock(mu_);
  auto it = state_.containers.find(request.container_id());
  if (it == state_.containers.end()) return NotFound("ExecProcess: no container " + request.container_id());
  if (it->second.state != ContainerState::kRunning) {
    return FailedPrecondition("ExecProcess: container " + request.container_id() + " is not running");
  }
  SR_RETURN_IF_ERROR_CTX(
      CheckExecProcess(config_.workload, state_.images.at(it->second.image).run, request.process()),
      "ExecProcess in " + request.container_id());
  if (it->second.execs.contains(request.exec_id()))
    return AlreadyExists("exec " + request.exec_id() + " exists");
  SR_ASSIGN_OR_RETURN(std::unique_ptr<Process> process,
                      deps_.runtime->Exec(request.container_id(), request.process().SerializeAsString()));
  it->second.execs.emplace(request.exec_id(), WatchProcess(std::move(process)));
  return Empty();
}

Result<std::shared_ptr<Process>> AgentServiceImpl::FindProcess(const std::string& container_id,
                                                               const std::string& exec_id) {
  SR_RETURN_IF_ERROR(ValidateContainerId(container_id));
  MutexLock lock(mu_);
  auto it = state_.containers.find(container_id);
  if (it == state_.containers.end()) return NotFound("no container " + container_id);
  if (exec_id.empty() || exec_id == container_id) {
    if (!it->second.init) return FailedPrecondition("container " + container_id + " has not been started");
    return it->second.init;
  }
  auto exec = it->second.execs.find(exec_id);
  if (exec == it->second.execs.end())
    return NotFound("no process " + exec_id + " in container " + container_id);
  return exec->second;
}

Result<AgentService::Empty> AgentServiceImpl::SignalProcess(const ::grpc::SignalProcessRequest& request) {
  if (request.signal() == 0 || request.signal() >= 65)
    return InvalidArgument("SignalProcess: bad signal number");
  SR_ASSIGN_OR_RETURN(std::shared_ptr<Process> process,
                      FindProcess(request.container_id(), request.exec_id()));
  SR_RETURN_IF_ERROR(process->Signal(static_cast<int>(request.signal())));
  return Empty();
}

Result<::grpc::WaitProcessResponse> AgentServiceImpl::WaitProcess(const ::grpc::WaitProcessRequest& request) {
  SR_ASSIGN_OR_RETURN(std::shared_ptr<Process> process,
                      FindProcess(request.container_id(), request.exec_id()));
  SR_ASSIGN_OR_RETURN(std::int32_t status, process->Wait());
  if (request.exec_id().empty() || request.exec_id() == request.container_id()) {
    MutexLock lock(mu_);
    auto it = state_.containers.find(request.container_id());
    if (it != state_.containers.end() && it->second.state == ContainerState::kRunning) {
      it->second.state = ContainerState::kStopped;
      (void)Persist();
    }
  }
  ::grpc::WaitProcessResponse response;
  response.set_status(status);
  return response;
}

Result<::grpc::ReadStreamResponse> AgentServiceImpl::ReadStdout(const ::grpc::ReadStreamRequest& request) {
  SR_ASSIGN_OR_RETURN(std::shared_ptr<Process> process,
                      FindProcess(request.container_id(), request.exec_id()));
  std::size_t len =
      request.len() == 0 ? kDefaultReadSize : std::min<std::size_t>(request.len(), kMaxReadSize);
  SR_ASSIGN_OR_RETURN(std::string data, process->ReadStdout(len));
  ::grpc::ReadStreamResponse response;
  response.set_data(std::move(data));
  return response;
}

Result<::grpc::ReadStreamResponse> AgentServiceImpl::ReadStderr(const ::grpc::ReadStreamRequest& request) {
  SR_ASSIGN_OR_RETURN(std::shared_ptr<Process> process,
                      FindProcess(request.container_id(), request.exec_id()));
  std::size_t len =
      request.len() == 0 ? kDefaultReadSize : std::min<std::size_t>(request.len(), kMaxReadSize);
  SR_ASSIGN_OR_RETURN(std::string data, process->ReadStderr(len));
  ::grpc::ReadStreamResponse response;
  response.set_data(std::move(data));
  return response;
}

Result<::grpc::WriteStreamResponse> AgentServiceImpl::WriteStdin(const ::grpc::WriteStreamRequest& request) {
  SR_ASSIGN_OR_RETURN(std::shared_ptr<Process> process,
                      FindProcess(request.container_id(), request.exec_id()));
  SR_ASSIGN_OR_RETURN(std::size_t written, process->WriteStdin(request.data()));
  ::grpc::WriteStreamResponse response;
  response.set_len(static_cast<std::uint32_t>(written));
  return response;
}

Result<AgentService::Empty> AgentServiceImpl::CloseStdin(const ::grpc::CloseStdinRequest& request) {
  SR_ASSIGN_OR_RETURN(std::shared_ptr<Process> process,
                      FindProcess(request.container_id(), request.exec_id()));
  SR_RETURN_IF_ERROR(process->CloseStdin());
  return Empty();
}

Result<AgentService::Empty> AgentServiceImpl::TtyWinResize(const ::grpc::TtyWinResizeRequest& request) {
  if (request.row() > 0xffff || request.column() > 0xffff)
    return InvalidArgument("TtyWinResize: row and column must be at most 65535");
  SR_ASSIGN_OR_RETURN(std::shared_ptr<Process> process,
                      FindProcess(request.container_id(), request.exec_id()));
  SR_RETURN_IF_ERROR(process->ResizeTerminal(request.row(), request.column()));
  return Empty();
}

Result<::grpc::HealthCheckResponse> AgentServiceImpl::Check(const ::grpc::CheckRequest&) {
  ::grpc::HealthCheckResponse response;
  response.set_status(::grpc::HealthCheckResponse::SERVING);
  return response;
}

Result<::grpc::VersionCheckResponse> AgentServiceImpl::Version(const ::grpc::CheckRequest&) {
  ::grpc::VersionCheckResponse response;
  response.set_grpc_version(kApiVersion);
  response.set_agent_version(SEALROOT_VERSION);
  return response;
}

}  // namespace sealroot::agent
