#include "agent/server/agent.h"

#include <condition_variable>

#include "agent/server/dispatcher.h"
#include "agent/server/src/boot_runtime.h"
#include "agent/server/src/key_broker.h"
#include "agent/server/src/servers.h"
#include "base/interrupt.h"
#include "base/log.h"
#include "base/thread_annotations.h"

namespace sealroot::agent {

struct Agent::Impl {
  explicit Impl(const AgentConfig& c)
      : config(c),
        executor(c.limits.max_requests_in_flight, c.limits.max_requests_in_flight),
        blocking(c.limits.max_blocking_calls, c.limits.max_blocking_calls_per_connection) {}

  AgentConfig config;
  // Destruction order matters: ~Agent drains the executor and stops the servers before the
  // dispatcher and the service go.
  std::unique_ptr<AgentService> service;
  std::unique_ptr<RpcDispatcher> dispatcher;
  Executor executor;
  BlockingCallLimit blocking;  // below the executor's threads: quick calls always find one
  std::vector<std::unique_ptr<Server>> servers;

  Mutex mu;
  std::condition_variable_any cv;
  bool stop_requested SR_GUARDED_BY(mu) = false;
};

namespace {

// The boot needs the agent's own TEE (it serves each container's key release over local
// attestation): without a configured boot, or outside an enclave, StartContainer says
// "boot not available". A configured boot that cannot be set up (its SIGSTRUCT unreadable) is
// a configuration error.
Result<std::unique_ptr<ContainerRuntime>> MakeRuntime(const AgentConfig& config) {
  if (config.boot.executable.empty()) return MakeUnavailableRuntime();
  Result<std::unique_ptr<local_attest::sgx::Tee>> tee = local_attest::sgx::OpenTee();
  if (!tee.ok()) {
    SR_LOG(kWarning) << "boot configured but " << tee.status().message() << ": containers cannot be started";
    return MakeUnavailableRuntime();
  }
  Result<std::unique_ptr<ContainerRuntime>> runtime = MakeBootRuntime(config, std::move(*tee));
  if (!runtime.ok()) return std::move(runtime).status().WithContext("boot " + config.boot.executable);
  return runtime;
}

}  // namespace

Result<ServiceDeps> MakeDefaultDeps(const AgentConfig& config) {
  ServiceDeps deps;
  // One attested session with the owner's key broker serves the pulls and the workload policy.
  std::shared_ptr<KeyBrokerSession> key_broker;
  if (!config.key_broker.url.empty()) key_broker = std::make_shared<KeyBrokerSession>(config.key_broker);
  SR_ASSIGN_OR_RETURN(deps.puller, MakePipelinePuller(config, key_broker));
  if (!config.key_broker.workload_policy.empty()) {
    deps.workload_policy = BrokerWorkloadPolicy(key_broker, config.key_broker.workload_policy);
  }
  SR_ASSIGN_OR_RETURN(deps.runtime, MakeRuntime(config));
  SR_ASSIGN_OR_RETURN(deps.sealer,
                      MakeStateSealer(config.sealing, config.manifest_digest.value_or(Sha256Digest{})));
  return deps;
}

Result<std::unique_ptr<Agent>> Agent::Start(const AgentConfig& config, ServiceDeps deps) {
  auto impl = std::make_unique<Impl>(config);
  SR_ASSIGN_OR_RETURN(impl->service, AgentService::Create(impl->config, std::move(deps)));
  impl->dispatcher = std::make_unique<RpcDispatcher>(*impl->service);
  Impl* raw = impl.get();
  impl->service->SetShutdownHandler([raw] {
    {
      MutexLock lock(raw->mu);
      raw->stop_requested = true;
    }
    raw->cv.notify_all();
  });
  for (const ListenAddress& address : impl->config.ttrpc) {
    Result<std::unique_ptr<Server>> server =
        rpc::ServeTtrpc(address, *impl->dispatcher, impl->config.limits, impl->executor, impl->blocking);
    if (!server.ok()) return std::move(server).status().WithContext("ttrpc on " + address.ToString());
    impl->servers.push_back(std::move(*server));
  }
  if (!impl->config.grpc.empty()) {
    SR_ASSIGN_OR_RETURN(
        std::unique_ptr<Server> server,
        ServeGrpc(impl->config.grpc, *impl->dispatcher, impl->config.limits, impl->executor, impl->blocking));
    impl->servers.push_back(std::move(server));
  }
  return std::unique_ptr<Agent>(new Agent(std::move(impl)));
}

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Agent::~Agent() {
  // Handlers first, so that replies in flight (DestroySandbox's own) still reach their clients;
  // requests arriving meanwhile are refused. Long pulls unwind on SIGTERM (Interrupted()).
  impl_->executor.Shutdown();
  for (auto& server : impl_->servers) server->Stop();
  impl_->servers.clear();
}

void Agent::Wait() {
  MutexLock lock(impl_->mu);
  while (!impl_->stop_requested && !Interrupted()) {
    // Interrupted() is a flag set by a signal handler, which cannot notify: poll it.
    impl_->cv.wait_for(impl_->mu, std::chrono::milliseconds(200));
  }
}

void Agent::RequestStop() {
  {
    MutexLock lock(impl_->mu);
    impl_->stop_requested = true;
  }
  impl_->cv.notify_all();
}

}  // namespace sealroot::agent
