#include "shim/task_service.h"

#include <google/protobuf/util/time_util.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/file.h"
#include "base/log.h"
#include "cgroups_v1_metrics.pb.h"
#include "containerd_events.pb.h"
#include "shim/spec.h"

namespace sealroot::shim {
namespace {

using google::protobuf::util::TimeUtil;
using nlohmann::json;
namespace events = ::containerd::events;
namespace types = ::containerd::v1::types;

constexpr char kContainerType[] = "io.kubernetes.cri.container-type";
constexpr char kSandboxId[] = "io.kubernetes.cri.sandbox-id";

Result<json> ReadBundleConfig(const std::string& bundle) {
  SR_ASSIGN_OR_RETURN(std::string text, ReadFile(JoinPath(bundle, "config.json"), 4u << 20));
  json config = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) return InvalidArgument(bundle + "/config.json: not JSON");
  return config;
}

// Exit status as containerd reports it: 128+N for a signal.
std::uint32_t WaitStatusCode(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

TaskService::TaskService(Options options, EventPublisher& events, std::function<void()> on_shutdown)
    : options_(std::move(options)), events_(events), on_shutdown_(std::move(on_shutdown)) {}

void TaskService::Terminate() {
  {
    MutexLock lock(pod_mu_);
    pod_.reset();  // the agent and its app enclaves stop: the waits on them return
  }
  MutexLock lock(mu_);
  for (auto& [id, container] : containers_) {
    if (container->sandbox && container->init.state != ProcState::kStopped) kill(container->pid, SIGKILL);
  }
}

TaskService::~TaskService() {
  Terminate();
  std::map<std::string, std::unique_ptr<Container>> containers;
  {
    MutexLock lock(mu_);
    containers.swap(containers_);
  }
  for (auto& [id, container] : containers) {
    for (auto& [exec_id, proc] : container->execs) {
      if (proc->waiter.joinable()) proc->waiter.join();
    }
    if (container->init.waiter.joinable()) container->init.waiter.join();
  }
}

Result<std::string> TaskService::EnsurePod(const std::string& pod_id, const std::string& hostname) {
  if (pod_) {
    if (pod_id != pod_id_) return FailedPrecondition("this shim serves pod " + pod_id_ + ", not " + pod_id);
    return pod_id_;
  }
  SR_ASSIGN_OR_RETURN(pod_, Pod::Launch(options_.config, options_.ns, pod_id));
  pod_id_ = pod_id;
  Status created = pod_->agent().CreateSandbox(pod_id, hostname);
  if (!created.ok()) {
    pod_.reset();
    return created;
  }
  MutexLock lock(mu_);
  agent_.emplace(pod_->agent());
  return pod_id_;
}

void TaskService::StopPodIfUnused() {
  MutexLock pod_lock(pod_mu_);
  {
    MutexLock lock(mu_);
    if (!containers_.empty() || !pod_) return;
    agent_.reset();
  }
  SR_LOG(kInfo) << "pod " << pod_id_ << ": last container gone, stopping its stub enclave";
  Status stopped = pod_->Stop();
  if (!stopped.ok()) {
    SR_LOG(kWarning) << "stopping pod " << pod_id_ << ": " << stopped.message();
  }
  pod_.reset();
}

Status TaskService::CreateApp(const task::CreateTaskRequest& request, const json& config,
                              const std::map<std::string, std::string>& annotations) {
  auto image = annotations.find(options_.config.image_annotation);
  if (image == annotations.end() || image->second.empty()) {
    return InvalidArgument("no image: a confidential container names its image in the annotation " +
                           options_.config.image_annotation + " (the host's rootfs is not used)");
  }
  SR_ASSIGN_OR_RETURN(::grpc::Spec spec, SpecFromOci(config));
  {
    MutexLock lock(mu_);
    pid_t pause = 0;
    std::vector<PodNamespace> held;
    for (const auto& [id, container] : containers_) {
      if (!container->sandbox) continue;
      pause = container->pid;
      held = container->pod_namespaces;
    }
    JoinPodNamespaces(spec, pause, held);
  }
  if (!annotations.contains(kContainerType)) LeaveImageDefaults(spec);
  DropRunTmpfs(spec);
  PrivateDevShm(spec);
  SR_RETURN_IF_ERROR(SealVolumes(spec, annotations));
  const AgentClient& agent = pod_->agent();
  SR_ASSIGN_OR_RETURN(std::string pinned, agent.PullImage(image->second, request.id()));
  SR_LOG(kInfo) << request.id() << ": pulled " << pinned;
  ::grpc::CreateContainerRequest create;
  create.set_container_id(request.id());
  *create.mutable_oci() = std::move(spec);
  return agent.CreateContainer(create);
}

Result<task::CreateTaskResponse> TaskService::Create(const task::CreateTaskRequest& request) {
  if (!request.checkpoint().empty()) return Unimplemented("checkpoint/restore is not supported by sealroot");
  SR_ASSIGN_OR_RETURN(json config, ReadBundleConfig(request.bundle()));
  const std::map<std::string, std::string> annotations = Annotations(config);
  auto type = annotations.find(kContainerType);
  const bool sandbox = type != annotations.end() && type->second == "sandbox";
  std::string pod_id = request.id();
  if (type != annotations.end() && type->second == "container") {
    auto sandbox_id = annotations.find(kSandboxId);
    if (sandbox_id == annotations.end())
      return InvalidArgument("container without " + std::string(kSandboxId));
    pod_id = sandbox_id->second;
  }
  auto container = std::make_unique<Container>();
  container->id = request.id();
  container->bundle = request.bundle();
  container->sandbox = sandbox;
  container->image_defaults = type == annotations.end();
  container->init.stdio = {request.stdin(), request.stdout(), request.stderr(), request.terminal()};
  Status created = [&]() -> Status {
    MutexLock pod_lock(pod_mu_);
    {
      MutexLock lock(mu_);
      if (containers_.contains(request.id())) return AlreadyExists("container " + request.id() + " exists");
    }
    SR_RETURN_IF_ERROR(EnsurePod(pod_id, config.value("hostname", "")).status());
    if (sandbox) {
      SR_ASSIGN_OR_RETURN(container->pod_namespaces, SandboxNamespaces(config));
      SR_ASSIGN_OR_RETURN(container->pid, SpawnPause(options_.self_executable, container->pod_namespaces,
                                                     config.value("hostname", "")));
    } else {
      SR_RETURN_IF_ERROR(CreateApp(request, config, annotations));
      container->pid = pod_->pid();
    }
    SR_ASSIGN_OR_RETURN(container->init.io, ProcessIo::Open(container->init.stdio));
    MutexLock lock(mu_);
    Container& c = *container;
    containers_[request.id()] = std::move(container);
    // The pause process runs from now on; its exit is watched at once.
    if (sandbox) Watch(c, c.init);
    return OkStatus();
  }();
  if (!created.ok()) {
    if (container && sandbox && container->pid > 0) {
      kill(container->pid, SIGKILL);
      waitpid(container->pid, nullptr, 0);
    }
    StopPodIfUnused();
    return created.WithContext("creating " + request.id());
  }
  events::TaskCreate event;
  event.set_container_id(request.id());
  event.set_bundle(request.bundle());
  for (const auto& mount : request.rootfs()) *event.add_rootfs() = mount;
  event.mutable_io()->set_stdin(request.stdin());
  event.mutable_io()->set_stdout(request.stdout());
  event.mutable_io()->set_stderr(request.stderr());
  event.mutable_io()->set_terminal(request.terminal());
  task::CreateTaskResponse response;
  {
    MutexLock lock(mu_);
    response.set_pid(static_cast<std::uint32_t>(containers_.at(request.id())->pid));
  }
  event.set_pid(response.pid());
  events_.Publish("/tasks/create", event);
  return response;
}

Result<std::pair<TaskService::Container*, TaskService::Proc*>> TaskService::Find(const std::string& id,
                                                                                 const std::string& exec_id) {
  auto it = containers_.find(id);
  if (it == containers_.end()) return NotFound("container " + id + " not found");
  if (exec_id.empty()) return std::make_pair(it->second.get(), &it->second->init);
  auto exec = it->second->execs.find(exec_id);
  if (exec == it->second->execs.end()) return NotFound("process " + exec_id + " of " + id + " not found");
  return std::make_pair(it->second.get(), exec->second.get());
}

void TaskService::Watch(Container& container, Proc& proc) {
  proc.state = ProcState::kRunning;
  const std::string id = container.id;
  const std::string exec_id = proc.exec_id;
  if (container.sandbox) {
    proc.waiter = std::thread([this, id, pid = container.pid] {
      int status = 0;
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      Exited(id, "", WaitStatusCode(status));
    });
    return;
  }
  ProcessIo* io = proc.io.get();
  proc.waiter = std::thread([this, id, exec_id, io, agent = *agent_] {
    Result<std::int32_t> status = agent.WaitProcess(id, exec_id);
    if (!status.ok()) {
      SR_LOG(kWarning) << id << " " << exec_id << ": WaitProcess: " << status.status().message();
    }
    // Everything the process wrote reaches containerd's FIFOs before its exit is reported.
    io->WaitOutput();
    Exited(id, exec_id, status.ok() ? static_cast<std::uint32_t>(*status) : 255);
  });
}

void TaskService::Exited(const std::string& id, const std::string& exec_id, std::uint32_t status) {
  events::TaskExit event;
  {
    MutexLock lock(mu_);
    Result<std::pair<Container*, Proc*>> found = Find(id, exec_id);
    if (!found.ok()) return;
    auto [container, proc] = *found;
    if (proc->state == ProcState::kStopped) return;
    proc->state = ProcState::kStopped;
    proc->exit_status = status;
    proc->exited_at = TimeUtil::GetCurrentTime();
    event.set_container_id(id);
    event.set_id(exec_id.empty() ? id : exec_id);
    event.set_pid(static_cast<std::uint32_t>(container->pid));
    event.set_exit_status(status);
    *event.mutable_exited_at() = proc->exited_at;
  }
  exited_.notify_all();
  SR_LOG(kInfo) << id << (exec_id.empty() ? "" : " exec " + exec_id) << ": exited with " << status;
  events_.Publish("/tasks/exit", event);
}

Result<task::StartResponse> TaskService::Start(const task::StartRequest& request) {
  std::optional<AgentClient> agent;
  ::grpc::ExecProcessRequest exec;
  bool sandbox = false;
  std::uint32_t pid = 0;
  {
    MutexLock lock(mu_);
    SR_ASSIGN_OR_RETURN(auto found, Find(request.id(), request.exec_id()));
    auto [container, proc] = found;
    sandbox = container->sandbox;
    pid = static_cast<std::uint32_t>(container->pid);
    if (!sandbox && (proc->state != ProcState::kCreated || !proc->io)) {
      return FailedPrecondition(request.id() + ": already started (or its start failed)");
    }
    agent = agent_;
    exec.set_container_id(request.id());
    exec.set_exec_id(request.exec_id());
    *exec.mutable_process() = proc->spec;
  }
  if (!sandbox) {
    if (!agent) return FailedPrecondition("the pod's agent is not running");
    // The agent answers once the app enclave attested and received its key; a refusal (the
    // owner's policy, an impostor boot) fails Start with the agent's reason.
    Status started =
        request.exec_id().empty() ? agent->StartContainer(request.id()) : agent->ExecProcess(exec);
    MutexLock lock(mu_);
    if (!started.ok()) {
      // containerd's client waits for the output FIFOs to close after a failed start.
      if (auto found = Find(request.id(), request.exec_id()); found.ok()) found->second->io.reset();
      return started;
    }
    SR_ASSIGN_OR_RETURN(auto found, Find(request.id(), request.exec_id()));
    auto [container, proc] = found;
    proc->io->Start(*agent, request.id(), request.exec_id());
    Watch(*container, *proc);
  }
  if (request.exec_id().empty()) {
    events::TaskStart event;
    event.set_container_id(request.id());
    event.set_pid(pid);
    events_.Publish("/tasks/start", event);
  } else {
    events::TaskExecStarted event;
    event.set_container_id(request.id());
    event.set_exec_id(request.exec_id());
    event.set_pid(pid);
    events_.Publish("/tasks/exec-started", event);
  }
  task::StartResponse response;
  response.set_pid(pid);
  return response;
}

Result<task::DeleteResponse> TaskService::Delete(const task::DeleteRequest& request) {
  task::DeleteResponse response;
  if (!request.exec_id().empty()) {
    std::unique_ptr<Proc> proc;
    {
      MutexLock lock(mu_);
      SR_ASSIGN_OR_RETURN(auto found, Find(request.id(), request.exec_id()));
      if (found.second->state == ProcState::kRunning) {
        return FailedPrecondition("exec " + request.exec_id() + " is running");
      }
      response.set_pid(static_cast<std::uint32_t>(found.first->pid));
      auto node = found.first->execs.extract(request.exec_id());
      proc = std::move(node.mapped());
    }
    exited_.notify_all();  // a Wait on a process never started ends with NotFound
    if (proc->waiter.joinable()) proc->waiter.join();
    response.set_exit_status(proc->exit_status);
    *response.mutable_exited_at() = proc->exited_at;
    return response;
  }
  std::unique_ptr<Container> container;
  std::optional<AgentClient> agent;
  {
    MutexLock lock(mu_);
    SR_ASSIGN_OR_RETURN(auto found, Find(request.id(), ""));
    if (found.second->state == ProcState::kRunning) {
      return FailedPrecondition("container " + request.id() + " is running");
    }
    for (const auto& [exec_id, proc] : found.first->execs) {
      if (proc->state == ProcState::kRunning) return FailedPrecondition("exec " + exec_id + " is running");
    }
    auto node = containers_.extract(request.id());
    container = std::move(node.mapped());
    agent = agent_;
  }
  exited_.notify_all();
  if (!container->sandbox && agent) {
    // Removes the container's sealed upper and, when no other container uses it, its image.
    Status removed = agent->RemoveContainer(request.id());
    if (!removed.ok() && removed.code() != Code::kNotFound) {
      SR_LOG(kWarning) << request.id() << ": RemoveContainer: " << removed.message();
    }
  }
  for (auto& [exec_id, proc] : container->execs) {
    if (proc->waiter.joinable()) proc->waiter.join();
  }
  if (container->init.waiter.joinable()) container->init.waiter.join();
  container->init.io.reset();
  response.set_pid(static_cast<std::uint32_t>(container->pid));
  response.set_exit_status(container->init.exit_status);
  *response.mutable_exited_at() = container->init.exited_at;
  events::TaskDelete event;
  event.set_container_id(request.id());
  event.set_id(request.id());
  event.set_pid(response.pid());
  event.set_exit_status(response.exit_status());
  *event.mutable_exited_at() = response.exited_at();
  events_.Publish("/tasks/delete", event);
  StopPodIfUnused();
  return response;
}

Result<Empty> TaskService::Exec(const task::ExecProcessRequest& request) {
  if (request.exec_id().empty()) return InvalidArgument("exec without an exec id");
  json process = json::parse(request.spec().value(), nullptr, /*allow_exceptions=*/false);
  if (process.is_discarded() || !process.is_object())
    return InvalidArgument("exec: the process spec is not JSON");
  auto proc = std::make_unique<Proc>();
  proc->exec_id = request.exec_id();
  SR_ASSIGN_OR_RETURN(proc->spec, ProcessFromOci(process));
  proc->spec.set_terminal(request.terminal());
  proc->stdio = {request.stdin(), request.stdout(), request.stderr(), request.terminal()};
  SR_ASSIGN_OR_RETURN(proc->io, ProcessIo::Open(proc->stdio));
  {
    MutexLock lock(mu_);
    SR_ASSIGN_OR_RETURN(auto found, Find(request.id(), ""));
    if (found.first->sandbox) return FailedPrecondition("exec in the pod sandbox: it runs no workload");
    if (found.second->state != ProcState::kRunning)
      return FailedPrecondition(request.id() + " is not running");
    if (found.first->execs.contains(request.exec_id())) {
      return AlreadyExists("exec " + request.exec_id() + " exists");
    }
    if (found.first->image_defaults) LeaveImageDefaults(proc->spec);
    found.first->execs[request.exec_id()] = std::move(proc);
  }
  events::TaskExecAdded event;
  event.set_container_id(request.id());
  event.set_exec_id(request.exec_id());
  events_.Publish("/tasks/exec-added", event);
  return Empty();
}

Result<task::StateResponse> TaskService::State(const task::StateRequest& request) {
  MutexLock lock(mu_);
  SR_ASSIGN_OR_RETURN(auto found, Find(request.id(), request.exec_id()));
  auto [container, proc] = found;
  task::StateResponse response;
  response.set_id(request.id());
  response.set_exec_id(request.exec_id());
  response.set_bundle(container->bundle);
  response.set_pid(static_cast<std::uint32_t>(container->pid));
  response.set_status(proc->state == ProcState::kCreated   ? types::CREATED
                      : proc->state == ProcState::kRunning ? types::RUNNING
                                                           : types::STOPPED);
  response.set_stdin(proc->stdio.stdin);
  response.set_stdout(proc->stdio.stdout);
  response.set_stderr(proc->stdio.stderr);
  response.set_terminal(proc->stdio.terminal);
  response.set_exit_status(proc->exit_status);
  *response.mutable_exited_at() = proc->exited_at;
  return response;
}

Result<task::PidsResponse> TaskService::Pids(const task::PidsRequest& request) {
  MutexLock lock(mu_);
  SR_ASSIGN_OR_RETURN(auto found, Find(request.id(), ""));
  // The processes run inside the pod's enclaves; the host sees the stub enclave (or pause).
  task::PidsResponse response;
  response.add_processes()->set_pid(static_cast<std::uint32_t>(found.first->pid));
  return response;
}

Result<Empty> TaskService::Kill(const task::KillRequest& request) {
  std::optional<AgentClient> agent;
  bool sandbox = false;
  pid_t pid = 0;
  std::vector<std::string> targets;  // exec ids; "" is the init
  bool never_started = false;
  {
    MutexLock lock(mu_);
    SR_ASSIGN_OR_RETURN(auto found, Find(request.id(), request.exec_id()));
    auto [container, proc] = found;
    sandbox = container->sandbox;
    pid = container->pid;
    agent = agent_;
    if (proc->state == ProcState::kStopped) return NotFound("process already finished");
    never_started = proc->state == ProcState::kCreated && !sandbox;
    targets.push_back(request.exec_id());
    if (request.all() && request.exec_id().empty()) {
      for (const auto& [exec_id, exec] : container->execs) {
        if (exec->state == ProcState::kRunning) targets.push_back(exec_id);
      }
    }
  }
  if (never_started) {
    // Nothing runs yet: the process is simply over.
    Exited(request.id(), request.exec_id(), 128 + request.signal());
    return Empty();
  }
  if (sandbox) {
    if (kill(pid, static_cast<int>(request.signal())) != 0)
      return ErrnoStatus("signalling the pause process", errno);
    return Empty();
  }
  if (!agent) return FailedPrecondition("the pod's agent is not running");
  for (const std::string& exec_id : targets) {
    Status signalled = agent->SignalProcess(request.id(), exec_id, request.signal());
    if (!signalled.ok() && exec_id == request.exec_id()) return signalled;
  }
  return Empty();
}

Result<Empty> TaskService::CloseIO(const task::CloseIORequest& request) {
  MutexLock lock(mu_);
  SR_ASSIGN_OR_RETURN(auto found, Find(request.id(), request.exec_id()));
  if (request.stdin() && found.second->io) found.second->io->CloseStdin();
  return Empty();
}

Result<task::WaitResponse> TaskService::Wait(const task::WaitRequest& request) {
  MutexLock lock(mu_);
  while (true) {
    SR_ASSIGN_OR_RETURN(auto found, Find(request.id(), request.exec_id()));
    Proc* proc = found.second;
    if (proc->state == ProcState::kStopped) {
      task::WaitResponse response;
      response.set_exit_status(proc->exit_status);
      *response.mutable_exited_at() = proc->exited_at;
      return response;
    }
    exited_.wait(mu_);
  }
}

Result<Empty> TaskService::ResizePty(const task::ResizePtyRequest& request) {
  MutexLock lock(mu_);
  SR_ASSIGN_OR_RETURN(auto found, Find(request.id(), request.exec_id()));
  // As runc: a process without a terminal has nothing to resize.
  if (!found.second->stdio.terminal) return Empty();
  return Unimplemented("resizing a terminal inside an enclave: the agent API has no TtyWinResize");
}

namespace {

// The agent's kata CgroupStats as containerd's cgroup v1 metrics.
io::containerd::cgroups::v1::Metrics MetricsFromAgent(const ::grpc::CgroupStats& in) {
  io::containerd::cgroups::v1::Metrics out;
  const ::grpc::CpuStats& cpu = in.cpu_stats();
  auto* usage = out.mutable_cpu()->mutable_usage();
  usage->set_total(cpu.cpu_usage().total_usage());
  usage->set_kernel(cpu.cpu_usage().usage_in_kernelmode());
  usage->set_user(cpu.cpu_usage().usage_in_usermode());
  for (std::uint64_t ns : cpu.cpu_usage().percpu_usage()) usage->add_per_cpu(ns);
  auto* throttling = out.mutable_cpu()->mutable_throttling();
  throttling->set_periods(cpu.throttling_data().periods());
  throttling->set_throttled_periods(cpu.throttling_data().throttled_periods());
  throttling->set_throttled_time(cpu.throttling_data().throttled_time());
  const ::grpc::MemoryStats& memory = in.memory_stats();
  out.mutable_memory()->set_cache(memory.cache());
  if (auto rss = memory.stats().find("rss"); rss != memory.stats().end())
    out.mutable_memory()->set_rss(rss->second);
  auto* entry = out.mutable_memory()->mutable_usage();
  entry->set_limit(memory.usage().limit());
  entry->set_usage(memory.usage().usage());
  entry->set_max(memory.usage().max_usage());
  entry->set_failcnt(memory.usage().failcnt());
  if (auto kills = memory.stats().find("oom_kill"); kills != memory.stats().end())
    out.mutable_memory_oom_control()->set_oom_kill(kills->second);
  out.mutable_pids()->set_current(in.pids_stats().current());
  out.mutable_pids()->set_limit(in.pids_stats().limit());
  for (const auto& [from, to] : {std::pair{&in.blkio_stats().io_service_bytes_recursive(),
                                           out.mutable_blkio()->mutable_io_service_bytes_recursive()},
                                 std::pair{&in.blkio_stats().io_serviced_recursive(),
                                           out.mutable_blkio()->mutable_io_serviced_recursive()}}) {
    for (const ::grpc::BlkioStatsEntry& e : *from) {
      auto* item = to->Add();
      item->set_op(e.op());
      item->set_major(e.major());
      item->set_minor(e.minor());
      item->set_value(e.value());
    }
  }
  return out;
}

}  // namespace

Result<task::StatsResponse> TaskService::Stats(const task::StatsRequest& request) {
  std::optional<AgentClient> agent;
  bool sandbox = false;
  {
    MutexLock lock(mu_);
    SR_ASSIGN_OR_RETURN(auto found, Find(request.id(), ""));
    sandbox = found.first->sandbox;
    agent = agent_;
  }
  io::containerd::cgroups::v1::Metrics metrics;
  // The pause process is the shim's child, in no cgroup of its own: it reports nothing.
  if (!sandbox) {
    if (!agent) return FailedPrecondition("stats of " + request.id() + ": the pod's agent is not running");
    SR_ASSIGN_OR_RETURN(::grpc::StatsContainerResponse stats, agent->StatsContainer(request.id()));
    metrics = MetricsFromAgent(stats.cgroup_stats());
  }
  task::StatsResponse response;
  response.mutable_stats()->set_type_url("io.containerd.cgroups.v1.Metrics");
  response.mutable_stats()->set_value(metrics.SerializeAsString());
  return response;
}

Result<Empty> TaskService::Update(const task::UpdateTaskRequest& request) {
  std::optional<AgentClient> agent;
  bool sandbox = false;
  {
    MutexLock lock(mu_);
    SR_ASSIGN_OR_RETURN(auto found, Find(request.id(), ""));
    sandbox = found.first->sandbox;
    agent = agent_;
  }
  if (!request.has_resources() || request.resources().value().empty()) return Empty();
  if (sandbox) return Empty();  // the pause process has no cgroup to update (as kata's sandbox)
  const json resources = json::parse(request.resources().value(), nullptr, /*allow_exceptions=*/false);
  if (!resources.is_object())
    return InvalidArgument("update of " + request.id() + ": resources are not OCI JSON");
  ::grpc::UpdateContainerRequest update;
  update.set_container_id(request.id());
  SR_ASSIGN_OR_RETURN(*update.mutable_resources(), ResourcesFromOci(resources));
  if (!agent) return FailedPrecondition("update of " + request.id() + ": the pod's agent is not running");
  SR_RETURN_IF_ERROR_CTX(agent->UpdateContainer(update), "update of " + request.id());
  return Empty();
}

Result<task::ConnectResponse> TaskService::Connect(const task::ConnectRequest& request) {
  MutexLock lock(mu_);
  task::ConnectResponse response;
  response.set_shim_pid(static_cast<std::uint32_t>(getpid()));
  response.set_version(SEALROOT_VERSION);
  if (auto it = containers_.find(request.id()); it != containers_.end()) {
    response.set_task_pid(static_cast<std::uint32_t>(it->second->pid));
  }
  return response;
}

Result<Empty> TaskService::Shutdown(const task::ShutdownRequest&) {
  {
    MutexLock pod_lock(pod_mu_);
    MutexLock lock(mu_);
    // One shim serves the whole pod: it stays while any container of it does.
    if (!containers_.empty() || pod_) return Empty();
  }
  on_shutdown_();
  return Empty();
}

Result<Empty> TaskService::Pause(const task::PauseRequest&) {
  return Unimplemented("pausing a confidential container is not supported by sealroot");
}

Result<Empty> TaskService::Resume(const task::ResumeRequest&) {
  return Unimplemented("resuming a confidential container is not supported by sealroot");
}

Result<Empty> TaskService::Checkpoint(const task::CheckpointTaskRequest&) {
  return Unimplemented(
      "checkpointing a confidential container is not supported by sealroot (its memory is the "
      "enclave's)");
}

namespace {

using Handler = std::function<rpc::RpcReply(TaskService&, std::string_view)>;

template <typename Request, typename Response>
Handler Unary(Result<Response> (TaskService::*method)(const Request&)) {
  return [method](TaskService& service, std::string_view payload) -> rpc::RpcReply {
    Request request;
    if (!request.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
      return {InvalidArgument("malformed request (not a " + std::string(Request::descriptor()->full_name()) +
                              ")"),
              {}};
    }
    Result<Response> response = (service.*method)(request);
    if (!response.ok()) {
      SR_LOG(kDebug) << Request::descriptor()->name() << ": " << response.status().ToString();
      return {std::move(response).status(), {}};
    }
    return {OkStatus(), response->SerializeAsString()};
  };
}

const std::map<std::string, Handler, std::less<>>& Routes() {
  using S = TaskService;
  static const std::map<std::string, Handler, std::less<>> routes = {
      {"State", Unary(&S::State)},         {"Create", Unary(&S::Create)},
      {"Start", Unary(&S::Start)},         {"Delete", Unary(&S::Delete)},
      {"Pids", Unary(&S::Pids)},           {"Pause", Unary(&S::Pause)},
      {"Resume", Unary(&S::Resume)},       {"Checkpoint", Unary(&S::Checkpoint)},
      {"Kill", Unary(&S::Kill)},           {"Exec", Unary(&S::Exec)},
      {"ResizePty", Unary(&S::ResizePty)}, {"CloseIO", Unary(&S::CloseIO)},
      {"Update", Unary(&S::Update)},       {"Wait", Unary(&S::Wait)},
      {"Stats", Unary(&S::Stats)},         {"Connect", Unary(&S::Connect)},
      {"Shutdown", Unary(&S::Shutdown)},
  };
  return routes;
}

}  // namespace

rpc::RpcReply TaskRouter::Call(std::string_view service, std::string_view method,
                               std::string_view payload) const {
  if (service == "containerd.task.v2.Task") {
    auto it = Routes().find(method);
    if (it != Routes().end()) return it->second(service_, payload);
  }
  return {Unimplemented("unknown method " + std::string(service).substr(0, 100) + "/" +
                        std::string(method).substr(0, 100)),
          {}};
}

}  // namespace sealroot::shim
