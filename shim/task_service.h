// TaskService: containerd's shim v2 task service (containerd.task.v2.Task) for one pod, over
// the pod's stub enclave. The sandbox container runs a pause process on the host (no enclave);
// each app container is pulled, created and started by the pod's agent, its image named by an
// annotation; execs, signals and waits go to the agent; events go to containerd. design/shim.md
// describes the mapping method by method.
//
// Thread-safety: every method may be called from any thread (the ttrpc server runs handlers
// concurrently; Wait blocks until the process exits).
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "base/thread_annotations.h"
#include "containerd_task.pb.h"
#include "google/protobuf/empty.pb.h"
#include "rpc/handler.h"
#include "shim/config.h"
#include "shim/events.h"
#include "shim/pod.h"
#include "shim/stdio.h"

namespace sealroot::shim {

namespace task = ::containerd::task::v2;
using Empty = google::protobuf::Empty;

class TaskService {
 public:
  struct Options {
    ShimConfig config;
    std::string ns;               // containerd namespace
    std::string self_executable;  // for the pause process
  };
  // `on_shutdown` is called (once) when containerd's Shutdown finds no container left.
  TaskService(Options options, EventPublisher& events, std::function<void()> on_shutdown);
  ~TaskService();  // Terminate(), then waits for the process watchers

  // The shim is told to exit with containers left (SIGTERM): stops the pod's stub enclave and
  // kills the pause process, so that every process is over and blocked Waits return.
  void Terminate() SR_EXCLUDES(pod_mu_, mu_);

  Result<task::CreateTaskResponse> Create(const task::CreateTaskRequest& request) SR_EXCLUDES(pod_mu_, mu_);
  Result<task::StartResponse> Start(const task::StartRequest& request) SR_EXCLUDES(mu_);
  Result<task::DeleteResponse> Delete(const task::DeleteRequest& request) SR_EXCLUDES(pod_mu_, mu_);
  Result<Empty> Exec(const task::ExecProcessRequest& request) SR_EXCLUDES(mu_);
  Result<task::StateResponse> State(const task::StateRequest& request) SR_EXCLUDES(mu_);
  Result<task::PidsResponse> Pids(const task::PidsRequest& request) SR_EXCLUDES(mu_);
  Result<Empty> Kill(const task::KillRequest& request) SR_EXCLUDES(mu_);
  Result<Empty> CloseIO(const task::CloseIORequest& request) SR_EXCLUDES(mu_);
  Result<task::WaitResponse> Wait(const task::WaitRequest& request) SR_EXCLUDES(mu_);
  Result<Empty> ResizePty(const task::ResizePtyRequest& request) SR_EXCLUDES(mu_);
  Result<task::StatsResponse> Stats(const task::StatsRequest& request) SR_EXCLUDES(mu_);
  Result<Empty> Update(const task::UpdateTaskRequest& request) SR_EXCLUDES(mu_);
  Result<task::ConnectResponse> Connect(const task::ConnectRequest& request) SR_EXCLUDES(mu_);
  Result<Empty> Shutdown(const task::ShutdownRequest& request) SR_EXCLUDES(pod_mu_, mu_);
  Result<Empty> Pause(const task::PauseRequest& request);
  Result<Empty> Resume(const task::ResumeRequest& request);
  Result<Empty> Checkpoint(const task::CheckpointTaskRequest& request);

 private:
  enum class ProcState { kCreated, kRunning, kStopped };
  struct Proc {
    std::string exec_id;  // empty: the container's init
    StdioPaths stdio;
    ::grpc::Process spec;  // an exec's process
    ProcState state = ProcState::kCreated;
    std::uint32_t exit_status = 0;
    google::protobuf::Timestamp exited_at;
    std::unique_ptr<ProcessIo> io;
    std::thread waiter;
  };
  struct Container {
    std::string id;
    std::string bundle;
    bool sandbox = false;         // the pod's pause container
    bool image_defaults = false;  // built by ctr without the image: containerd's defaults dropped
    pid_t pid = 0;                // the pause process, or the pod's stub enclave
    std::vector<PodNamespace> pod_namespaces;  // the sandbox's: what its pause process holds
    Proc init;
    std::map<std::string, std::unique_ptr<Proc>> execs;
  };

  Result<std::string> EnsurePod(const std::string& pod_id, const std::string& hostname) SR_REQUIRES(pod_mu_);
  void StopPodIfUnused() SR_EXCLUDES(mu_, pod_mu_);
  // The process `exec_id` of `id` (the init when empty); NotFound otherwise.
  Result<std::pair<Container*, Proc*>> Find(const std::string& id, const std::string& exec_id)
      SR_REQUIRES(mu_);
  // Starts the thread that waits for the process, drains its output and reports its exit.
  void Watch(Container& container, Proc& proc) SR_REQUIRES(mu_);
  void Exited(const std::string& id, const std::string& exec_id, std::uint32_t status) SR_EXCLUDES(mu_);
  Status CreateApp(const task::CreateTaskRequest& request, const nlohmann::json& config,
                   const std::map<std::string, std::string>& annotations) SR_REQUIRES(pod_mu_);

  const Options options_;
  EventPublisher& events_;
  std::function<void()> on_shutdown_;

  Mutex pod_mu_;  // held while the pod is launched or stopped, and across an app's Create
  std::unique_ptr<Pod> pod_ SR_GUARDED_BY(pod_mu_);
  std::string pod_id_ SR_GUARDED_BY(pod_mu_);

  Mutex mu_;  // the containers; never held across a call to the agent
  std::condition_variable_any exited_;
  std::map<std::string, std::unique_ptr<Container>> containers_ SR_GUARDED_BY(mu_);
  std::optional<AgentClient> agent_ SR_GUARDED_BY(mu_);  // the pod's, while it runs
};

// The ttrpc face of a TaskService: routes containerd.task.v2.Task/<Method> to it.
class TaskRouter final : public rpc::RpcHandler {
 public:
  explicit TaskRouter(TaskService& service) : service_(service) {}
  rpc::RpcReply Call(std::string_view service, std::string_view method,
                     std::string_view payload) const override;
  // containerd holds one Wait per process for the process's life: they are not limited.
  bool IsBlocking(std::string_view, std::string_view) const override { return false; }

 private:
  TaskService& service_;
};

}  // namespace sealroot::shim
