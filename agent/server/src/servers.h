// The agent's transports over one RpcDispatcher: ttrpc (rpc::ServeTtrpc) and gRPC, sharing one
// Executor and one BlockingCallLimit.
#pragma once

#include <memory>
#include <vector>

#include "agent/server/config.h"
#include "agent/server/dispatcher.h"
#include "rpc/server.h"

namespace sealroot::agent {

using rpc::BlockingCallLimit;
using rpc::Executor;
using rpc::Server;

// gRPC (generic, so that unknown methods reach the dispatcher too) on unix sockets (base/socket.h's
// policy for the path; the socket is created 0600). Blocking calls count against `blocking`'s
// total (gRPC shows no connection to count them by).
Result<std::unique_ptr<Server>> ServeGrpc(const std::vector<ListenAddress>& addresses,
                                          const RpcDispatcher& dispatcher, const Limits& limits,
                                          Executor& executor, BlockingCallLimit& blocking);

}  // namespace sealroot::agent
