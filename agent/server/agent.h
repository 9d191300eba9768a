// Agent: the enclave-agent daemon as a library — the service, its dependencies, and the ttrpc
// and gRPC servers over it. enclave_agent_main.cc is a thin main over this; tests start agents
// in-process with their own ServiceDeps.
//
//   SR_ASSIGN_OR_RETURN(auto agent, Agent::Start(config));
//   agent->Wait();  // until DestroySandbox, SIGTERM (Interrupted()) or RequestStop()
//
// Thread-safety: RequestStop may be called from any thread; Wait from one.
#pragma once

#include <memory>

#include "agent/server/config.h"
#include "agent/server/service.h"
#include "base/status.h"

namespace sealroot::agent {

// The production dependencies for `config`: the image pipeline puller with config.trust, the
// runtime (BootRuntime when config.boot names a boot and the agent runs in an enclave, else
// "boot not available"), the state sealer config.state_sealing asks for.
Result<ServiceDeps> MakeDefaultDeps(const AgentConfig& config);

class Agent {
 public:
  static Result<std::unique_ptr<Agent>> Start(const AgentConfig& config, ServiceDeps deps);
  ~Agent();  // stops listening, lets handlers in flight finish, then releases the service
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Blocks until a stop is requested (DestroySandbox, RequestStop, or SIGINT/SIGTERM when
  // base/interrupt.h's handler is installed).
  void Wait();
  void RequestStop();

 private:
  struct Impl;
  explicit Agent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sealroot::agent
