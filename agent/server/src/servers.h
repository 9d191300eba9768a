// The two transports over one RpcDispatcher. Each server owns its listening socket(s) and
// threads; Stop() closes the listeners and connections and returns once no transport thread
// touches the dispatcher any more (handlers already queued on the Executor still finish there).
#pragma once

#include <memory>
#include <vector>

#include "agent/server/config.h"
#include "agent/server/dispatcher.h"
#include "agent/server/src/blocking_calls.h"
#include "agent/server/src/executor.h"
#include "base/fd.h"

namespace sealroot::agent {

class Server {
 public:
  virtual ~Server() = default;
  virtual void Stop() = 0;
};

// ttrpc on one unix socket (created mode 0600, replacing a stale socket file) or loopback TCP.
// Blocking calls take a slot of `blocking` (per connection and in total) or are refused.
Result<std::unique_ptr<Server>> ServeTtrpc(const ListenAddress& address, const RpcHandler& dispatcher,
                                           const Limits& limits, Executor& executor,
                                           BlockingCallLimit& blocking);
// gRPC (generic, so that unknown methods reach the dispatcher too) on unix sockets. Blocking
// calls count against `blocking`'s total (gRPC shows no connection to count them by).
Result<std::unique_ptr<Server>> ServeGrpc(const std::vector<ListenAddress>& addresses,
                                          const RpcDispatcher& dispatcher, const Limits& limits,
                                          Executor& executor, BlockingCallLimit& blocking);

inline constexpr char kTooManyBlockingCalls[] =
    "too many blocking calls (WaitProcess, ReadStdout, PullImage...) in flight, on this connection or in "
    "total";

// A listening socket for `address` (unix: parent created 0700, socket 0600).
Result<UniqueFd> ListenOn(const ListenAddress& address);
// Creates the socket's parent directory (0700) and removes a stale socket file at `path`.
Status PrepareSocketPath(const std::string& path);

}  // namespace sealroot::agent
