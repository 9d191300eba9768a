// RpcHandler: what a server calls for each unary request, named by service and method
// ("grpc.Image", "PullImage"), with its serialized request; it returns the serialized reply or
// a Status. The agent's dispatcher and the containerd shim's task router are handlers.
//
// Thread-safety: Call and IsBlocking may be used from many threads at once.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "base/status.h"

namespace sealroot::rpc {

struct RpcReply {
  Status status;
  std::string payload;  // the serialized response message when status is OK
};

class RpcHandler {
 public:
  virtual ~RpcHandler() = default;
  virtual RpcReply Call(std::string_view service, std::string_view method,
                        std::string_view payload) const = 0;
  // Whether service/method may wait for long (a process, a stream, a pull): such calls take a
  // slot of the server's BlockingCallLimit or are refused, so quick calls always find a thread.
  virtual bool IsBlocking(std::string_view service, std::string_view method) const = 0;
};

// "/grpc.Health/Check" -> {"grpc.Health", "Check"}; kInvalidArgument for anything else.
Result<std::pair<std::string, std::string>> SplitMethodPath(std::string_view path);

}  // namespace sealroot::rpc
