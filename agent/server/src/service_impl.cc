// The container lifecycle half of AgentService: sandbox, create, start, processes, remove.
#include "agent/server/src/service_impl.h"

#include <csignal>

#include "agent/server/src/private_dir.h"
#include "agent/server/src/reachability.h"
#include "agent/server/src/validate.h"
#include "agent/server/src/watched_process.h"
#include "agent/spec/oci_spec.h"
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
  if (!deps.workload_policy) {
    deps.workload_policy = [policy = std::make_shared<const WorkloadPolicy>(config.workload)] {
      return Result<std::shared_ptr<const WorkloadPolicy>>(policy);
    };
  }
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

Result<std::shared_ptr<const WorkloadPolicy>> AgentServiceImpl::Workload() const {
  Result<std::shared_ptr<const WorkloadPolicy>> policy = deps_.workload_policy();
  if (!policy.ok()) return std::move(policy).status().WithContext("the owner's workload policy");
  return policy;
}

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

Status AgentServiceImpl::SaveOrRollBack(const std::function<void()>& roll_back, std::string_view context) {
  Status persisted = Persist();
  if (persisted.ok()) return OkStatus();
  roll_back();
  return std::move(persisted).WithContext(context);
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
  // Fetched before taking the lock: it may wait for the key broker.
  Result<std::shared_ptr<const WorkloadPolicy>> workload = Workload();
  if (!workload.ok()) return std::move(workload).status().WithContext("CreateContainer " + id);
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
  SR_RETURN_IF_ERROR_CTX(CheckContainerSpec(**workload, state_.images.at(record.image).run, request.oci()),
                         "CreateContainer " + id);
  SR_RETURN_IF_ERROR_CTX(CheckAgentUnreachable(request.oci(), config_), "CreateContainer " + id);
  SR_RETURN_IF_ERROR_CTX(MakePrivateDir(JoinPath(UpperPath(id), "upper")), "CreateContainer " + id);
  SR_RETURN_IF_ERROR_CTX(keyring_->Register(id), "CreateContainer " + id);
  record.spec = request.oci().SerializeAsString();
  record.state = ContainerState::kCreated;
  SR_RETURN_IF_ERROR(SaveOrRollBack(
      [&record] {
        record.spec.clear();
        record.state = ContainerState::kPulled;
      },
      "CreateContainer " + id));
  return Empty();
}

Result<AgentService::Empty> AgentServiceImpl::StartContainer(const ::grpc::StartContainerRequest& request) {
  const std::string& id = request.container_id();
  SR_RETURN_IF_ERROR(ValidateContainerId(id));
  Result<std::shared_ptr<const WorkloadPolicy>> workload = Workload();
  if (!workload.ok()) return std::move(workload).status().WithContext("StartContainer " + id);
  // The launch waits for the app enclave to attest; the service lock is not held meanwhile (the
  // record is marked starting, so no other call starts, removes or execs in it).
  SR_ASSIGN_OR_RETURN(ContainerSecrets secrets, keyring_->Secrets(id));
  SecretBytes image_key;
  std::string store, spec;
  fusefs::RootHash root_hash{};
  {
    MutexLock lock(mu_);
    auto it = state_.containers.find(id);
    if (it == state_.containers.end()) return NotFound("StartContainer: no container " + id);
    ContainerRecord& record = it->second;
    if (record.starting) return FailedPrecondition("StartContainer " + id + ": already starting");
    if (record.state != ContainerState::kCreated) {
      return FailedPrecondition("StartContainer " + id + ": container is " +
                                std::string(ContainerStateName(record.state)) + ", not created");
    }
    const ImageRecord& image = state_.images.at(record.image);
    image_key = image.key.Clone();
    store = StorePath(image.store_name);
    root_hash = image.root_hash;
    spec = record.spec;
    record.starting = true;
  }
  auto record_commit = [keyring = keyring_.get(), id](const local_attest::UpperCommit& commit) {
    return keyring->RecordUpperCommit(id, commit);
  };
  ContainerLaunch launch{id,
                         store,
                         root_hash,
                         &image_key,
                         JoinPath(UpperPath(id), "upper"),
                         spec,
                         config_.app_enclaves,
                         &secrets.upper_key,
                         &secrets.exec_key,
                         secrets.upper_root,
                         record_commit,
                         (*workload)->PinsToImage()};
  Result<std::unique_ptr<Process>> process = deps_.runtime->Start(launch);

  MutexLock lock(mu_);
  ContainerRecord& record = state_.containers.at(id);  // a starting record is never removed
  record.starting = false;
  if (!process.ok()) return std::move(process).status();
  record.init = WatchProcess(std::move(*process));
  record.state = ContainerState::kRunning;
  SR_RETURN_IF_ERROR(SaveOrRollBack(
      [&record] {
        (void)record.init->Signal(SIGKILL);
        record.init.reset();
        record.state = ContainerState::kCreated;
      },
      "StartContainer " + id));
  return Empty();
}

Result<AgentService::Empty> AgentServiceImpl::RemoveContainer(const ::grpc::RemoveContainerRequest& request) {
  const std::string& id = request.container_id();
  SR_RETURN_IF_ERROR(ValidateContainerId(id));
  MutexLock lock(mu_);
  auto it = state_.containers.find(id);
  if (it == state_.containers.end()) return NotFound("RemoveContainer: no container " + id);
  if (it->second.busy()) {
    return FailedPrecondition("RemoveContainer " + id + ": a StartContainer or ExecProcess is in progress");
  }
  if (it->second.init) (void)it->second.init->Signal(SIGKILL);
  for (auto& [exec_id, process] : it->second.execs) (void)process->Signal(SIGKILL);
  SR_RETURN_IF_ERROR_CTX(RemoveTree(UpperPath(id)), "RemoveContainer " + id);
  const std::string image = it->second.image;
  ContainerRecord removed = std::move(it->second);
  state_.containers.erase(it);
  std::optional<ImageRecord> released = ReleaseImage(image, id);
  SR_RETURN_IF_ERROR(SaveOrRollBack(
      [&]() SR_REQUIRES(mu_) {
        if (released) state_.images.emplace(image, std::move(*released));
        if (auto image_it = state_.images.find(image); image_it != state_.images.end())
          image_it->second.users.insert(id);
        state_.containers.emplace(id, std::move(removed));
      },
      "RemoveContainer " + id));
  // Saved: the image's store, if this was its last user, is no longer recorded. A removal that
  // fails half way leaves an orphan, removed at the next start.
  if (released) {
    const std::string store = StorePath(released->store_name);
    if (Status s = RemoveTree(store); !s.ok()) {
      SR_LOG(kWarning) << "removing image store " << store << ": " << s.message();
    }
  }
  // A leftover entry is harmless: a new container with this id gets a new incarnation.
  if (Status forgot = keyring_->Forget(id); !forgot.ok()) {
    SR_LOG(kWarning) << "RemoveContainer " << id << ": " << forgot.message();
  }
  return Empty();
}

std::optional<ImageRecord> AgentServiceImpl::ReleaseImage(const std::string& image,
                                                          const std::string& container_id) {
  auto it = state_.images.find(image);
  if (it == state_.images.end()) return std::nullopt;
  it->second.users.erase(container_id);
  if (!it->second.users.empty()) return std::nullopt;
  ImageRecord released = std::move(it->second);
  state_.images.erase(it);
  return released;
}

Result<AgentService::Empty> AgentServiceImpl::ExecProcess(const ::grpc::ExecProcessRequest& request) {
  SR_RETURN_IF_ERROR(ValidateContainerId(request.container_id()));
  Result<std::shared_ptr<const WorkloadPolicy>> workload = Workload();
  if (!workload.ok())
    return std::move(workload).status().WithContext("ExecProcess in " + request.container_id());
  if ((*workload)->exec.empty()) {
    return PermissionDenied("ExecProcess in " + request.container_id() +
                            ": process.args: the workload policy lists no command exec may run");
  }
  if (request.exec_id().empty() || request.exec_id() == request.container_id()) {
    return InvalidArgument("ExecProcess: exec_id must be set and differ from the container id");
  }
  const std::string& id = request.container_id();
  {
    MutexLock lock(mu_);
    auto it = state_.containers.find(id);
    if (it == state_.containers.end()) return NotFound("ExecProcess: no container " + id);
    if (it->second.state != ContainerState::kRunning) {
      return FailedPrecondition("ExecProcess: container " + id + " is not running");
    }
    SR_RETURN_IF_ERROR_CTX(
        CheckExecProcess(**workload, state_.images.at(it->second.image).run, request.process()),
        "ExecProcess in " + id);
    if (it->second.execs.contains(request.exec_id()) || it->second.execs_starting.contains(request.exec_id()))
      return AlreadyExists("exec " + request.exec_id() + " exists");
    it->second.execs_starting.insert(request.exec_id());
  }
  // The boot starts the exec and answers; no service lock while it does.
  Result<std::unique_ptr<Process>> process = deps_.runtime->Exec(id, request.process().SerializeAsString());
  MutexLock lock(mu_);
  ContainerRecord& record = state_.containers.at(id);  // a busy record is never removed
  record.execs_starting.erase(request.exec_id());
  if (!process.ok()) return std::move(process).status();
  record.execs.emplace(request.exec_id(), WatchProcess(std::move(*process)));
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
      // Nothing to roll back: a saved "running" loads as "stopped" anyway.
      if (Status saved = Persist(); !saved.ok()) {
        SR_LOG(kWarning) << "WaitProcess " << request.container_id() << ": " << saved.message();
      }
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

// The container must be running: its cgroup lives as long as its app enclave's boot.
Status AgentServiceImpl::CheckRunning(const std::string& id, std::string_view method) {
  SR_RETURN_IF_ERROR(ValidateContainerId(id));
  MutexLock lock(mu_);
  auto it = state_.containers.find(id);
  if (it == state_.containers.end()) return NotFound(std::string(method) + ": no container " + id);
  if (it->second.state != ContainerState::kRunning) {
    return FailedPrecondition(std::string(method) + ": container " + id + " is " +
                              std::string(ContainerStateName(it->second.state)) + ", not running");
  }
  return OkStatus();
}

Result<AgentService::Empty> AgentServiceImpl::UpdateContainer(const ::grpc::UpdateContainerRequest& request) {
  const std::string& id = request.container_id();
  SR_RETURN_IF_ERROR(CheckRunning(id, "UpdateContainer"));
  if (!request.has_resources()) return Empty();
  Result<std::shared_ptr<const WorkloadPolicy>> workload = Workload();
  if (!workload.ok()) return std::move(workload).status().WithContext("UpdateContainer " + id);
  SR_RETURN_IF_ERROR_CTX(CheckResourceUpdate(**workload, request.resources()), "UpdateContainer " + id);
  SR_RETURN_IF_ERROR(deps_.runtime->Update(id, ResourcesToOci(request.resources())));
  return Empty();
}

Result<::grpc::StatsContainerResponse> AgentServiceImpl::StatsContainer(
    const ::grpc::StatsContainerRequest& request) {
  const std::string& id = request.container_id();
  SR_RETURN_IF_ERROR(CheckRunning(id, "StatsContainer"));
  SR_ASSIGN_OR_RETURN(boot::CgroupStats stats, deps_.runtime->Stats(id));
  ::grpc::StatsContainerResponse response;
  ::grpc::CgroupStats* cgroup = response.mutable_cgroup_stats();
  ::grpc::CpuStats* cpu = cgroup->mutable_cpu_stats();
  cpu->mutable_cpu_usage()->set_total_usage(stats.cpu_usage_ns);
  for (std::uint64_t ns : stats.cpu_per_cpu_ns) cpu->mutable_cpu_usage()->add_percpu_usage(ns);
  cpu->mutable_cpu_usage()->set_usage_in_kernelmode(stats.cpu_kernel_ns);
  cpu->mutable_cpu_usage()->set_usage_in_usermode(stats.cpu_user_ns);
  cpu->mutable_throttling_data()->set_periods(stats.cpu_periods);
  cpu->mutable_throttling_data()->set_throttled_periods(stats.cpu_throttled_periods);
  cpu->mutable_throttling_data()->set_throttled_time(stats.cpu_throttled_ns);
  ::grpc::MemoryStats* memory = cgroup->mutable_memory_stats();
  memory->set_cache(stats.memory_cache);
  memory->mutable_usage()->set_usage(stats.memory_usage);
  memory->mutable_usage()->set_max_usage(stats.memory_max_usage);
  memory->mutable_usage()->set_failcnt(stats.memory_failcnt);
  memory->mutable_usage()->set_limit(stats.memory_limit);
  memory->set_use_hierarchy(true);
  (*memory->mutable_stats())["cache"] = stats.memory_cache;
  (*memory->mutable_stats())["rss"] = stats.memory_rss;
  (*memory->mutable_stats())["oom_kill"] = stats.oom_kills;
  cgroup->mutable_pids_stats()->set_current(stats.pids_current);
  cgroup->mutable_pids_stats()->set_limit(stats.pids_limit);
  ::grpc::BlkioStats* blkio = cgroup->mutable_blkio_stats();
  for (const auto& [entries, out] :
       {std::pair{&stats.io_service_bytes, blkio->mutable_io_service_bytes_recursive()},
        std::pair{&stats.io_serviced, blkio->mutable_io_serviced_recursive()}}) {
    for (const boot::BlkioEntry& e : *entries) {
      ::grpc::BlkioStatsEntry* entry = out->Add();
      entry->set_major(e.major);
      entry->set_minor(e.minor);
      entry->set_op(e.op);
      entry->set_value(e.value);
    }
  }
  return response;
}

Result<::grpc::HealthCheckResponse> AgentServiceImpl::Check(const ::grpc::CheckRequest&) {
  ::grpc::HealthCheckResponse response;
  response.set_status(::grpc::HealthCheckResponse::SERVING);
  return response;
}

Result<::grpc::ListContainersResponse> AgentServiceImpl::ListContainers(
    const ::grpc::ListContainersRequest&) {
  ::grpc::ListContainersResponse response;
  MutexLock lock(mu_);
  for (const auto& [id, record] : state_.containers) {
    ::grpc::ContainerStatus* c = response.add_containers();
    c->set_container_id(id);
    auto image = state_.images.find(record.image);
    c->set_image(image != state_.images.end() ? image->second.image_ref : record.image);
    ContainerState state = record.state;
    if (std::optional<std::int32_t> status = record.init ? record.init->ExitStatus() : std::nullopt) {
      state = ContainerState::kStopped;  // exited, whether or not anyone waited for it
      c->set_exited(true);
      c->set_exit_status(*status);
    }
    c->set_state(std::string(ContainerStateName(state)));
    c->set_execs(static_cast<std::uint32_t>(record.execs.size()));
  }
  return response;
}

Result<::grpc::VersionCheckResponse> AgentServiceImpl::Version(const ::grpc::CheckRequest&) {
  ::grpc::VersionCheckResponse response;
  response.set_grpc_version(kApiVersion);
  response.set_agent_version(SEALROOT_VERSION);
  return response;
}

}  // namespace sealroot::agent
