// RpcDispatcher: the agent's rpc::RpcHandler. Routes one unary call, named by service and
// method ("grpc.Image", "PullImage"), with its serialized request, to the AgentService, and
// returns the serialized reply. Both transports (ttrpc, gRPC) call it, so both answer exactly
// the same way: malformed payloads are kInvalidArgument, kata methods the agent does not serve
// and unknown methods kUnimplemented with a message naming the method.
//
// Thread-safety: Call may be used from many threads at once.
#pragma once

#include <string_view>

#include "agent/server/service.h"
#include "rpc/handler.h"

namespace sealroot::agent {

using rpc::RpcReply;

class RpcDispatcher final : public rpc::RpcHandler {
 public:
  explicit RpcDispatcher(AgentService& service) : service_(service) {}
  RpcReply Call(std::string_view service, std::string_view method, std::string_view payload) const override;
  // WaitProcess, ReadStdout/ReadStderr, WriteStdin, PullImage, Create/StartContainer and
  // ExecProcess: they wait for a process, a stream, a pull or an app enclave's attestation.
  bool IsBlocking(std::string_view service, std::string_view method) const override;

 private:
  AgentService& service_;
};

}  // namespace sealroot::agent
