// A unary client of the enclave-agent API for `sealroot ctl`, over either of the agent's
// transports: ttrpc (what shims use; the default) or gRPC (a generic stub: the agent serves no
// generated service, and neither does this client need one). The payloads are the serialized
// request and response messages of agent/proto.
//
// Thread-safety: one call at a time per client; streams that run at once (exec's stdout,
// stderr and stdin) each open their own.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace sealroot::tool {

class AgentClient {
 public:
  virtual ~AgentClient() = default;
  // Sends `payload` to service/method; returns the response payload or the agent's status
  // (google.rpc codes, the same over both transports).
  virtual Result<std::string> Call(std::string_view service, std::string_view method,
                                   std::string_view payload) = 0;
};

// Where ctl reaches the agent: a ttrpc address (unix:///PATH or tcp://127.0.0.1:PORT) or, with
// `grpc`, a gRPC one (unix:///PATH).
struct AgentEndpoint {
  std::string address;
  bool grpc = false;
};

Result<std::unique_ptr<AgentClient>> ConnectAgent(const AgentEndpoint& endpoint);

}  // namespace sealroot::tool
