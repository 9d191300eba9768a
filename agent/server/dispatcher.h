// RpcDispatcher: routes one unary call, named by service and method ("grpc.Image", "PullImage"),
// with its serialized request, to the AgentService, and returns the serialized reply. Both
// transports (ttrpc, gRPC) call it, so both answer exactly the same way: malformed payloads are
// kInvalidArgument, kata methods the agent does not serve and unknown methods kUnimplemented
// with a message naming the method.
//
// Thread-safety: Call may be used from many threads at once.
#pragma once

#include <string>
#include <string_view>

#include "agent/server/service.h"
#include "base/status.h"

namespace sealroot::agent {

struct RpcReply {
  Status status;
  std::string payload;  // the serialized response message when status is OK
};

// What a server calls for each request: the agent's dispatcher, or another daemon's (the
// containerd shim serves its own ttrpc service on the same server).
class RpcHandler {
 public:
  virtual ~RpcHandler() = default;
  virtual RpcReply Call(std::string_view service, std::string_view method,
                        std::string_view payload) const = 0;
};

class RpcDispatcher final : public RpcHandler {
 public:
  explicit RpcDispatcher(AgentService& service) : service_(service) {}
  RpcReply Call(std::string_view service, std::string_view method, std::string_view payload) const override;

 private:
  AgentService& service_;
};

// "/grpc.Health/Check" -> {"grpc.Health", "Check"}; kInvalidArgument for anything else.
Result<std::pair<std::string, std::string>> SplitMethodPath(std::string_view path);

}  // namespace sealroot::agent
